"""Parallel experiments logging the same data version to one `mlflow server`."""

from __future__ import annotations

import threading

import mlflow
import pytest
from mlflow.entities import DatasetInput, InputTag

from vertiflow.lifecycle import tracking
from vertiflow.lifecycle.stack import Stack

pytestmark = pytest.mark.stack


@pytest.fixture
def server(tmp_path):
    """The team stack's `mlflow server` alone (no artifact is written here, so no S3)."""
    stack = Stack(tmp_path / "stack")
    stack.start_mlflow()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(stack.mlflow_url)
    yield stack.mlflow_url
    mlflow.set_tracking_uri(previous)
    stack.stop()


def log_at_once(runs: list[str], inputs: list, failures: list[str]) -> None:
    """Each run logs `inputs` from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(runs))

    def log(run_id: str) -> None:
        barrier.wait()
        try:
            tracking.log_inputs(run_id, inputs)
        except mlflow.exceptions.MlflowException as exc:
            failures.append(str(exc)[:200])

    threads = [threading.Thread(target=log, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_runs_logging_one_new_dataset_at_once_all_get_it(server, tmp_path):
    """8 runs log the same new dataset at the same moment, 6 times over. The server
    looks the dataset up, then inserts it, so without retrying, losers of that race
    failed (`UNIQUE constraint failed: datasets.experiment_id, ...`: 19 of 80 here,
    and one queued sweep task in CI)."""
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("inputs")
    failures: list[str] = []
    for trial in range(6):
        data = tracking.dataset(tmp_path / "train.parquet", digest=f"md5-{trial}")
        inputs = [DatasetInput(data._to_mlflow_entity(), [InputTag("mlflow.data.context", "t")])]
        runs = [client.create_run(experiment).info.run_id for _ in range(8)]
        log_at_once(runs, inputs, failures)
        assert failures == [], f"{len(failures)} of 8 failed: {failures[0]}"
        for run_id in runs:
            logged = client.get_run(run_id).inputs.dataset_inputs
            assert [d.dataset.digest for d in logged] == [f"md5-{trial}"]
