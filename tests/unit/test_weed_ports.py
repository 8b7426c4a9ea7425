"""SeaweedFS' ports: none may be another component's gRPC port (its port + 10000)."""

from __future__ import annotations

from vertiflow.lifecycle import stack


def test_a_port_that_is_another_components_grpc_port_is_skipped(monkeypatch):
    # CI once drew S3 port 55849 beside master 45849: weed refused to start.
    offered = iter([55849, 35849, 60000, 40001, 40002])
    monkeypatch.setattr(stack, "free_port", lambda host="127.0.0.1": next(offered))
    monkeypatch.setattr(stack, "_bindable", lambda host, port: True)
    # 55849 is 45849's gRPC port, 35849 has it as its own; 60000's would pass 65535
    assert stack.weed_ports("127.0.0.1", 2, taken=(45849,)) == [40001, 40002]


def test_real_ports_keep_clear_of_each_others_grpc_ports():
    ports = stack.weed_ports("127.0.0.1", 6)
    assert len(set(ports)) == 6
    for a in ports:
        assert a + stack.GRPC_OFFSET <= 65535
        assert all(abs(a - b) != stack.GRPC_OFFSET for b in ports)
