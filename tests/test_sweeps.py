"""Parameter sweeps: a queued `dvc exp run` grid on 2 parallel workers, against the local
SQLite store and against the team stack's `mlflow server`, loses no MLflow run, doubles
none, and compares in one table of pipeline runs (one row per experiment)."""

from __future__ import annotations

import itertools
import json
import shlex
import shutil
from contextlib import ExitStack

import mlflow
import pytest

from vertiflow.lifecycle.stack import Stack
from vertiflow.testing import REPO, run, start_queue, stop_queue, wait_for_queue

pytestmark = pytest.mark.pipeline
# What a classifier param re-runs.
RERUN = {"train_classifier", "optimise_cortex", "evaluate", "summarise"}
GRID = {"max_iter": (30, 60), "learning_rate": (0.1, 0.2)}  # the README's 2x2
# The server's case is the two workers creating its experiments at the same moment: two
# experiments show it, and CI's 25 minutes have no room for four more stage runs.
GRIDS = {"sqlite": GRID, "server": {"max_iter": (30, 60), "learning_rate": (0.1,)}}
SWEPT = [f"train_classifier.hyperparams.{k}" for k in GRID]
# Every model's headline metric and its gap to the limit, on each pipeline run.
HEADLINE = [
    *("oracle_r2", "oracle_mae", "oracle_rmse", "oracle_r2_gap"),
    *("classifier_accuracy", "classifier_f1_macro", "classifier_roc_auc_ovr"),
    *("classifier_accuracy_gap", "cortex_max_regret", "cortex_basil_cost_per_kg"),
    *("cortex_basil_converged", "yolo_mAP50", "yolo_mAP50-95"),
]


def experiments(repo) -> dict[str, dict]:
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                metrics = rev["data"]["metrics"]
                found[rev["name"]] = {
                    "accuracy": metrics["metrics/classifier.json"]["data"]["accuracy"],
                    "r2": metrics["metrics/oracle.json"]["data"]["r2"],
                    "params": rev["data"]["params"]["params.yaml"]["data"],
                }
    return found


# One worker per store: a module fixture is made once per xdist worker that needs it, and
# a sweep costs minutes; the group keeps each store's tests together.
STORES = [
    pytest.param(s, marks=pytest.mark.xdist_group(f"sweep-{s}")) for s in ("sqlite", "server")
]


@pytest.fixture(scope="module", params=STORES)
def sweep(request, small_repo, tmp_path_factory):
    """A 2x2 grid queued on 2 workers (OMP_NUM_THREADS=1, as the README runs it).

    sqlite: the checkout's own store, which already holds the baseline's `dvc repro`.
    server: a fresh team stack (mlflow server, artifacts on S3): the workers create its
    experiments at the same moment, with no file lock to order them.
    """
    repo = tmp_path_factory.mktemp(f"sweep-{request.param}") / "repo"
    shutil.copytree(small_repo, repo, symlinks=True)
    extra = {"OMP_NUM_THREADS": "1"}
    uri = f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}"
    with ExitStack() as stack:
        if request.param == "server":
            team = stack.enter_context(Stack(tmp_path_factory.mktemp("stack")))
            extra |= team.env()
            uri = team.mlflow_url
        values = GRIDS[request.param]
        grid = [
            f"-S++{k}={','.join(map(str, v))}" for k, v in zip(SWEPT, values.values(), strict=True)
        ]
        points = set(itertools.product(*values.values()))
        run(["dvc", "exp", "run", "--queue", *grid], repo)
        start_queue(repo, 2, extra)
        try:
            status = wait_for_queue(repo, expected=len(points))
        finally:
            stop_queue(repo)
        if "Failed" in status and request.param == "server":  # the server's side of it
            for log in sorted(team.data_dir.glob("*.log")):
                status += f"\n--- {log.name} (end) ---\n{log.read_text(errors='replace')[-4000:]}"
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
        yield {
            "repo": repo,
            "status": status,
            "runs": runs,
            "store": request.param,
            "points": points,
        }


def test_queued_grid_records_every_stage_once(sweep):
    repo, status, runs = sweep["repo"], sweep["status"], sweep["runs"]
    points = sweep["points"]
    assert status.count("Success") == len(points) and "Failed" not in status, status
    found = experiments(repo)
    assert len(found) == len(points)
    swept = [e["params"]["train_classifier"]["hyperparams"] for e in found.values()]
    assert {tuple(p[k] for k in GRID) for p in swept} == points
    assert all(0 < e["accuracy"] <= 1 for e in found.values())
    for name in found:
        mine = [
            r
            for r in runs
            if r.data.tags.get("dvc_exp_name") == name and "run_kind" not in r.data.tags
        ]
        stages = sorted(r.data.tags["stage"] for r in mine)
        assert stages == sorted(RERUN), f"{name}: {stages}"  # none missing, none doubled
        assert all(r.info.status == "FINISHED" for r in mine)
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))


def test_the_sweep_compares_in_one_table_of_pipeline_runs(sweep, small_repo):
    """`vertiflow-models` holds one pipeline run per experiment (plus the baseline's own
    repro in the checkout's store), each with the swept params and every model's headline
    metric: also those of stages DVC restored from its cache (the Oracle's, here)."""
    found = experiments(sweep["repo"])
    table = mlflow.search_runs(
        experiment_names=["vertiflow-models"],
        filter_string="tags.run_kind = 'pipeline'",
        output_format="list",
    )
    names = sorted(r.info.run_name for r in table)
    baseline = [n for n in names if n.startswith("repro@")]
    assert sorted(set(names) - set(baseline)) == sorted(found) and len(names) == len(set(names))
    assert len(baseline) == (1 if sweep["store"] == "sqlite" else 0)
    baseline_r2 = json.loads((small_repo / "metrics" / "oracle.json").read_text())["r2"]
    stage_runs = {
        (r.data.tags.get("dvc_exp_name"), r.data.tags["stage"]): r
        for r in sweep["runs"]
        if "stage" in r.data.tags
    }
    for pipeline in table:
        assert pipeline.info.status == "FINISHED"
        assert set(HEADLINE) <= set(pipeline.data.metrics), sorted(pipeline.data.metrics)
        name = pipeline.info.run_name
        if name in baseline:
            continue
        hyper = found[name]["params"]["train_classifier"]["hyperparams"]
        assert {k: pipeline.data.params[k] for k in SWEPT} == {
            k: str(hyper[k.rsplit(".", 1)[1]]) for k in SWEPT
        }
        assert set(SWEPT) <= set(pipeline.data.tags["changed_params"].split(", "))
        assert pipeline.data.metrics["classifier_accuracy"] == found[name]["accuracy"]
        assert pipeline.data.metrics["oracle_r2"] == found[name]["r2"] == baseline_r2
        training = stage_runs[(name, "train_classifier")]
        assert training.data.tags["pipeline_mlflow_run_id"] == pipeline.info.run_id
        assert training.info.run_name == name  # its experiment's table tells them apart
        assert training.data.metrics["accuracy"] == found[name]["accuracy"]


def readme_command(prefix: str) -> list[str]:
    """The README's command that starts with `prefix`, as a reader would paste it."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    command = [lines[start]]
    while command[-1].rstrip().endswith("\\"):
        command.append(lines[start + len(command)])
    joined = " ".join(line.rstrip().removesuffix("\\") for line in command)
    return shlex.split(joined, comments=True)


def test_the_readme_exp_show_fits_a_160_column_terminal(sweep):
    """With every figure Cortex and the registry report, `--only-changed` alone printed
    about 700 columns; the README's filter keeps the swept params and headline metrics."""
    command = readme_command("dvc exp show")
    shown = run(command, sweep["repo"], env_extra={"COLUMNS": "400"}).stdout
    width = max(len(line) for line in shown.splitlines())
    assert width <= 160, f"{shlex.join(command)} printed {width} columns:\n{shown}"
    header = "\n".join(shown.splitlines()[:3])
    for column in ("Experiment", "r2", "accuracy", "max_regret", "max_iter", "learning_rate"):
        assert column in header, f"{column} missing from {header!r}"
    assert all(name in shown for name in experiments(sweep["repo"]))


def test_the_readmes_sweep_queues_on_the_default_params(tmp_path):
    """The README's `dvc exp run --queue` line, pasted into a clone with the default
    params.yaml (whose `hyperparams` is empty), queues its four experiments. With plain
    `-S` it was refused: "Could not override ... Key 'max_iter' is not in struct"."""
    from vertiflow.testing import clone_checkout

    repo = clone_checkout(tmp_path / "repo")
    command = readme_command("dvc exp run --queue")
    queued = run(command, repo)
    assert queued.stdout.count("Queued experiment") == 4, queued.stdout + queued.stderr
    shown = run(["dvc", "queue", "status"], repo).stdout
    assert shown.count("Queued") == 4
    run(["dvc", "queue", "remove", "--queued"], repo)
