"""Screenshot of the MLflow runs table of `vertiflow-models`, for the docs: docs/mlflow_runs.png.

Starts `mlflow server` on a free 127.0.0.1 port against the checkout's store (or
--tracking-uri), saves an MLflow view of the pipeline runs (one row per `dvc repro` or
experiment, sorted by the Oracle's R2, with the swept params and every model's headline
metric as columns: the experiment tag `mlflow.sharedViewState.vertiflow-sweep`, listed
under "Views" in the UI), opens it in headless Chromium driven over the DevTools protocol
(`--remote-debugging-pipe`: no extra package), checks that the table shows every pipeline
run and each column, prints that table's text, and saves the picture.

The README's picture is the README's 2x2 classifier sweep on the default pipeline, in a
checkout whose outputs are all committed (so only the swept stages run):

    dvc exp run --queue -S train_classifier.estimator=hist_gradient_boosting \\
                        -S '++train_classifier.hyperparams.max_iter=100,200' \\
                        -S '++train_classifier.hyperparams.learning_rate=0.1,0.15'
    OMP_NUM_THREADS=1 dvc queue start -j 2      # then wait for `dvc queue status`
    python tools/screenshot_mlflow.py --sort classifier_accuracy \\
        --params train_classifier.hyperparams.max_iter \\
        --params train_classifier.hyperparams.learning_rate

Needs Chromium (`apt-get install -y chromium`) and the project's virtual environment.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from chromium import OFFLINE_FLAGS, throwaway_profile

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "vertiflow-models"
VIEW = "vertiflow-sweep"
METRICS = ["oracle_r2", "oracle_r2_gap", "classifier_accuracy", "cortex_max_regret", "yolo_mAP50"]
FLAGS = [*OFFLINE_FLAGS, "--remote-debugging-pipe"]
# Closes MLflow's assistant side panel if it is open (it would cover the table).
CLOSE_ASSISTANT = """(() => {
  for (const b of document.querySelectorAll('button[aria-label="Close"]')) {
    for (let p = b.parentElement, i = 0; p && i < 8; p = p.parentElement, i++) {
      if ((p.innerText || '').includes('MLflow Assistant')) { b.click(); return true; }
    }
  }
  return false;
})()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_view(uri: str, params: list[str], metrics: list[str], sort: str) -> tuple[str, list[str]]:
    """Store the runs-table view as an MLflow saved view; returns (experiment id, run names)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        sys.exit(f"no experiment {EXPERIMENT!r} at {uri}: run `dvc repro` first")
    runs = client.search_runs([experiment.experiment_id], "tags.run_kind = 'pipeline'")
    if not runs:
        sys.exit(f"no pipeline runs in {EXPERIMENT!r} at {uri}")
    columns = [f"params.`{p}`" for p in params] + [f"metrics.`{m}`" for m in metrics]
    state = {
        "searchFilter": "tags.run_kind = 'pipeline'",
        "orderByKey": f"metrics.`{sort}`",
        "orderByAsc": False,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs",
        "datasetsFilter": [],
        "selectedColumns": columns,
    }
    now = int(time.time() * 1000)
    envelope = {"name": "Sweep: params and headline metrics", "createdAt": now, "state": ""}
    envelope |= {"updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(
        experiment.experiment_id, f"mlflow.sharedViewState.{VIEW}", json.dumps(envelope)
    )
    return experiment.experiment_id, [r.info.run_name for r in runs]


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe (fds 3 and 4 of the child)."""

    def __init__(self, binary: str, window: str):
        self._cleanup = contextlib.ExitStack()
        profile = self._cleanup.enter_context(throwaway_profile())
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def fds() -> None:  # the pipe ends become fds 3 and 4, whatever numbers they had
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target, inheritable=True)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--window-size={window}", f"--user-data-dir={profile}"],
            preexec_fn=fds,
            close_fds=False,
            start_new_session=True,  # its helpers too, so close() can end them all
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, method: str, **params) -> dict:
        return self.call(method, self.session, **params)

    def text(self, expression: str = "document.body.innerText") -> str:
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        return str(result["result"].get("value", ""))

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self._cleanup.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose store to show")
    parser.add_argument("--tracking-uri", help="default: the checkout's .mlflow/mlflow.db")
    parser.add_argument("--params", action="append", default=[], help="param column (repeat)")
    parser.add_argument("--metrics", action="append", help=f"default: {', '.join(METRICS)}")
    parser.add_argument("--sort", default="oracle_r2", help="metric to sort by, best first")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "mlflow_runs.png")
    parser.add_argument("--window", default="1600,700")
    parser.add_argument("--timeout", type=float, default=90)
    args = parser.parse_args()
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        sys.exit("chromium not found: apt-get install -y chromium")
    uri = args.tracking_uri or f"sqlite:///{args.repo.resolve() / '.mlflow' / 'mlflow.db'}"
    metrics = args.metrics or METRICS
    experiment_id, names = save_view(uri, args.params, metrics, args.sort)

    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    browser = None
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                if urllib.request.urlopen(f"{base}/health", timeout=2).status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit(f"mlflow server did not start on {base}")
                time.sleep(1)
        browser = Browser(binary, args.window)
        browser.page("Page.enable")
        url = f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW}"
        url += "&workflowType=machine_learning"  # the sidebar's "Model training" side
        browser.page("Page.navigate", url=url)
        wanted = [*names, *args.params, *metrics]
        while True:
            browser.text(CLOSE_ASSISTANT)
            text = browser.text()
            missing = [w for w in wanted if w not in text]
            if not missing:
                break
            if time.monotonic() > deadline:
                sys.exit(f"the runs table at {url} does not show: {', '.join(missing)}")
            time.sleep(1)
        time.sleep(1)  # let the table settle after the panel closed
        table = browser.text(
            "[...document.querySelectorAll('[role=row]')].map(r => r.innerText"
            ".replace(/\\s*\\n\\s*/g, ' | ')).join('\\n')"
        )
        print(table)
        shot = browser.page("Page.captureScreenshot", format="png")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(base64.b64decode(shot["data"]))
        print(f"wrote {args.out} ({len(names)} pipeline runs)")
        return 0
    finally:
        if browser:
            browser.close()
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
