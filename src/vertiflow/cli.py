"""`vertiflow` command: ask the trained models questions without re-running the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vertiflow import runtime
from vertiflow.errors import exit_cleanly

app = typer.Typer(
    add_completion=False,
    help="VertiFlow tools on top of the pipeline's outputs.",
    rich_markup_mode="markdown",  # docstrings reflow: their line breaks are not kept
)


@app.callback()
def main() -> None:
    """VertiFlow tools on top of the pipeline's outputs."""
    runtime.configure()


@app.command()
@exit_cleanly
def cortex(
    crop: str | None = typer.Option(None, help="Crop to plan (default: the data's only crop)."),
    peak_price: float | None = typer.Option(None, help="MAD/kWh, peak hours (default: params)."),
    offpeak_price: float | None = typer.Option(None, help="MAD/kWh, off-peak (default: params)."),
    premium_price: float | None = typer.Option(None, help="MAD/kg for PREMIUM (default: params)."),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    models: Path = typer.Option(Path("models")),
    prepared: Path = typer.Option(Path("data/prepared")),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Best recipe for a crop under the given prices, from the trained Oracle and Classifier."""
    import math

    import mlflow.sklearn
    import polars as pl

    from vertiflow import cortex as cx
    from vertiflow import params
    from vertiflow.errors import VertiflowError

    # as params.yaml's schema checks them: -1 planned a negative energy cost, and nan or
    # inf printed NaN and Infinity (not JSON) with exit code 0
    for option, price in (
        ("--peak-price", peak_price),
        ("--offpeak-price", offpeak_price),
        ("--premium-price", premium_price),
    ):
        if price is not None and not (math.isfinite(price) and price >= 0):
            raise VertiflowError(f"{option} {price:g}: expected a finite price, 0 or more.")
    _require_outputs(
        [
            prepared / "train.parquet",
            prepared / "crops.json",
            models / "oracle",
            models / "classifier",
        ],
        "--prepared and --models",
    )
    section = params.section(params.load(params_file), "optimise_cortex")
    train = pl.read_parquet(prepared / "train.parquet")
    # the crops as prepare saw them (cycle length, optimum from params), as the stage uses
    contexts = cx.crop_contexts(train, json.loads((prepared / "crops.json").read_text()))
    if crop is None:  # the farm's one crop, trial crops aside
        optimised, _ = cx.crops_to_optimise({**section, "crops": "all"}, train, sorted(contexts))
        crop = optimised[0] if len(optimised) == 1 else None
    if crop and crop not in contexts:  # `Pak Choi` for the data's `pak choi`, as params do
        crop = next((c for c in contexts if c.casefold() == crop.casefold()), crop)
    if crop not in contexts:
        raise VertiflowError(
            f"--crop {crop}: the training data has no batches of it; its crops are "
            f"{', '.join(sorted(contexts))}."
            if crop
            else f"--crop: name one of the data's crops: {', '.join(sorted(contexts))}."
        )
    cx.crops_to_optimise({**section, "crops": [crop]}, train, sorted(contexts))  # not a trial
    if peak_price is not None:
        section["energy"]["peak_price"] = peak_price
    if offpeak_price is not None:
        section["energy"]["offpeak_price"] = offpeak_price
    if premium_price is not None:  # a crop priced by `default` gets its own entry
        cx.Economics.from_params(section).grade_prices(crop)  # the clear error if neither
        prices = section["prices_mad_per_kg"]
        prices[crop] = {**prices.get(crop, prices.get(cx.DEFAULT)), "PREMIUM": premium_price}
    recipe, _, _ = cx.recommend(
        crop,
        section,
        train,
        mlflow.sklearn.load_model(str(models / "oracle")),
        mlflow.sklearn.load_model(str(models / "classifier")),
        cx.Economics.from_params(section),
        contexts[crop],
    )
    for notice in cx.attach_notices(section, {crop: recipe}):  # as the stage says them
        typer.echo(f"cortex: {notice}.", err=True)
    if as_json:
        typer.echo(json.dumps(recipe, indent=2))
        return
    table = Table(title=f"Cortex recipe for {crop}")
    table.add_column("setting")
    table.add_column("value", justify="right")
    for key in [*cx.RECIPE, "ph", "dli"]:
        table.add_row(key, f"{recipe[key]:g}")
    for key, value in recipe["predicted"].items():
        shown = (
            " .. ".join(f"{v:.3f}" for v in value) if isinstance(value, list) else f"{value:.3f}"
        )
        table.add_row(key, shown)
    table.add_row("on search bound", ", ".join(recipe["on_bound"]) or "none")
    Console().print(table)


def _require_outputs(paths: list[Path], options: str) -> None:
    """The pipeline's outputs a command reads: missing (outside a checkout, before `dvc
    pull`), they ended in a FileNotFoundError traceback or MLflow's "No such artifact"."""
    from vertiflow.errors import VertiflowError

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise VertiflowError(
            f"{', '.join(missing)}: not found; run `dvc repro` (or `dvc pull`) first, or "
            f"point {options} at the pipeline's outputs."
        )


@app.command()
@exit_cleanly
def stack(
    data_dir: Path = typer.Option(
        Path(".stack"), help="Where S3 data, the MLflow DB and logs live."
    ),
    s3_port: int = typer.Option(8333, help="S3 port on 127.0.0.1 (0: any free port)."),
    mlflow_port: int = typer.Option(5000, help="MLflow port on 127.0.0.1 (0: any free port)."),
    backend_store_uri: str | None = typer.Option(
        None,
        help="MLflow backend store, e.g. postgresql://user@host/db (default: SQLite in data-dir).",
    ),
) -> None:
    """Run a local S3 server (SeaweedFS) and an MLflow server until Ctrl-C."""
    import signal
    import threading

    from vertiflow.errors import VertiflowError
    from vertiflow.lifecycle.stack import DVC_BUCKET, MLFLOW_BUCKET, Stack

    console = Console()
    s = Stack(
        data_dir, s3_port=s3_port, mlflow_port=mlflow_port, backend_store_uri=backend_store_uri
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with console.status("starting S3 (SeaweedFS)..."):
        s.start_s3()
    console.print(f"[green]S3 ready[/] at {s.s3_url} (buckets {DVC_BUCKET}, {MLFLOW_BUCKET})")
    try:
        with console.status("starting MLflow server..."):
            s.start_mlflow()
        console.print(
            f"[green]MLflow ready[/] at {s.mlflow_url} (artifacts in s3://{MLFLOW_BUCKET})"
        )
        console.print("\nIn another shell, export:\n")
        for key, value in s.env().items():
            typer.echo(f"export {key}={value}")
        console.print("\nThen: dvc push / dvc pull / dvc repro. Ctrl-C stops both servers.")
        try:
            while not stop.wait(1.0):
                # MLflow keeps serving with its S3 gone, and stages then fail minutes later
                if gone := s.exited():
                    raise VertiflowError(f"{gone}; stopping the other. Run vertiflow stack again.")
        except KeyboardInterrupt:
            pass
    finally:
        with console.status("stopping..."):
            s.stop()
        console.print("stopped cleanly")


@app.command()
@exit_cleanly
def report(
    base: str = typer.Option("main", help="Git revision to compare against."),
    out: Path = typer.Option(
        Path("report/report.md"), help="Markdown file; plot PNGs go beside it."
    ),
) -> None:
    """Markdown report for a pull request: params, metrics and plots changed since BASE."""
    from vertiflow.lifecycle import report as pr_report

    text = pr_report.build(Path.cwd(), base, out)
    typer.echo(text)


@app.command("log-hours")
@exit_cleanly
def log_hours(
    since: str = typer.Option(
        ..., help="A duration back from now (30m, 6h, 7d, 2w) or an ISO date-time."
    ),
) -> None:
    """The prediction log's hours from SINCE to now, one per line.

    Hours in UTC, as the log's file names start: what a sync of that window needs, e.g.
    `aws s3 sync --exclude '*' --include '<hour>*' ...` (ml_monitoring.yml), instead of
    the whole history every time."""
    from vertiflow.monitoring import monitor

    typer.echo("\n".join(monitor.hour_prefixes(monitor.parse_since(since))))


@app.command()
@exit_cleanly
def monitor(
    batch: Path | None = typer.Option(
        None,
        help="New batches to check: a table of prepared features (.parquet/.csv), or a "
        "farm export folder (batches, telemetry, harvests), prepared as `prepare` does.",
    ),
    from_log: str | None = typer.Option(
        None, help="Check the logged predictions of this model (.monitoring/predictions/)."
    ),
    scenario: str | None = typer.Option(
        None, help="Check a simulated batch: none, co2_sensor, hot_summer, new_cultivar."
    ),
    since: str | None = typer.Option(
        None,
        help="With --from-log: only predictions logged in this window, a duration back "
        "from now (30m, 6h, 7d, 2w) or an ISO date-time; default all of the log.",
    ),
    fail_on: str = typer.Option(
        "critical",
        "--fail-on",
        help="Exit 2 on drift of this severity or worse: warning or critical.",
    ),
    seed: int = typer.Option(0, help="Seed of the simulated batch."),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    reference: Path = typer.Option(Path("data/prepared/train.parquet")),
    models: Path = typer.Option(Path("models")),
    out: Path = typer.Option(Path("metrics/monitoring.json"), help="The drift report (JSON)."),
    report_dir: Path = typer.Option(Path("reports/monitoring"), help="Markdown report + plots."),
    root: Path = typer.Option(Path(".monitoring"), help="Prediction log, alerts and history."),
) -> None:
    """Compare new data with the training data; exit 2 on critical drift.

    Exit 2 also on a warning with --fail-on warning; exit 3 when the log has too few
    predictions to check (none, or none in the --since window)."""
    from vertiflow import params
    from vertiflow.errors import VertiflowError
    from vertiflow.monitoring import drift, monitor

    if sum(x is not None for x in (batch, from_log, scenario)) != 1:
        raise VertiflowError("give exactly one of --batch, --from-log or --scenario.")
    if fail_on not in drift.SEVERITY[1:]:
        raise VertiflowError(f"--fail-on {fail_on}: expected warning or critical.")
    if since is not None and from_log is None:
        raise VertiflowError("--since is a window of the prediction log: use it with --from-log.")
    start = monitor.parse_since(since) if since is not None else None
    all_params = params.load(params_file)
    section = params.section(all_params, "monitor")
    thresholds = drift.Thresholds(**section)
    logged = None
    if from_log is not None:
        if from_log not in [*monitor.PREDICTION_COLUMN, "yolo"]:
            raise VertiflowError(
                f"--from-log {from_log}: the logs drift is checked on are "
                f"{', '.join([*monitor.PREDICTION_COLUMN, 'yolo'])}."
            )
        try:
            logged = monitor.read_predictions(from_log, root, start)
            if logged.height < thresholds.min_rows:
                raise monitor.NothingToCheck(
                    f"{logged.height} prediction(s) logged for '{from_log}'"
                    + (f" since {start.isoformat(timespec='seconds')}" if start else "")
                    + f"; a check needs at least {thresholds.min_rows} (monitor.min_rows)."
                )
        except monitor.NothingToCheck as exc:  # a quiet period: said, not an error
            typer.echo(f"nothing to check: {exc}", err=True)
            raise typer.Exit(3) from None
    if from_log == "yolo":
        _monitor_detector(all_params, thresholds, models, logged, out, report_dir, root, fail_on)
        return
    import mlflow.sklearn  # the tabular models (skops, torch): only when checking them
    import polars as pl

    from vertiflow.data import dataset, rawdata

    _require_outputs(
        [models / "oracle", models / "classifier", reference], "--models and --reference"
    )
    oracle = mlflow.sklearn.load_model(str(models / "oracle"))
    classifier = mlflow.sklearn.load_model(str(models / "classifier"))
    columns = monitor.model_columns(all_params)
    ref = monitor.with_predictions(pl.read_parquet(reference), oracle, classifier)
    if logged is not None:
        # The log holds what the app was told; its predictions are checked as logged.
        predicted = monitor.PREDICTION_COLUMN[from_log]
        current = logged.rename({"prediction": predicted})
        # what that model reads (an app logs the inputs it sends to it, no more)
        inputs = list({"oracle": oracle, "classifier": classifier}[from_log].feature_names_in_)
        drift.require_columns(current, inputs)
        checked = [*inputs, predicted]
    else:
        if batch is not None and batch.is_dir():  # a raw export, with prepare's features
            current = dataset.features_with_params(rawdata.load(batch), all_params["prepare"])
        elif batch is not None:
            current = rawdata.read_frame(batch)
        else:
            current = monitor.simulated_batch(scenario, seed)
        drift.require_columns(current, columns)
        current = monitor.with_predictions(current, oracle, classifier)
        checked = [*columns, *monitor.PREDICTION_COLUMN.values()]
    result = monitor.check(ref, current, checked, thresholds)
    result["model"] = from_log or "+".join(monitor.PREDICTION_COLUMN)  # checked: both
    _report(result, ref, current, out, report_dir, root, fail_on)


def _monitor_detector(
    all_params, thresholds, models: Path, current, out, report_dir, root: Path, fail_on: str
) -> None:
    """`--from-log yolo`: the logged images' features and the detector's answers (the
    log `current`) against the dataset it was trained on (params: images.dataset) and its
    validation outputs."""
    from vertiflow.errors import VertiflowError
    from vertiflow.monitoring import images, monitor
    from vertiflow.vision import detector

    weights = models / "yolo" / "best.pt"
    if not weights.is_file():
        raise VertiflowError(f"{weights}: no detector; run `dvc repro` (or `dvc pull`) first.")
    conf = detector.DEFAULT_CONF
    if "conf" in current.columns and current["conf"].drop_nulls().len():
        conf = float(current["conf"].drop_nulls().mode()[0])  # the threshold the app used
    ref = images.reference(Path(all_params["images"]["dataset"]), weights, conf)
    result = {"model": "yolo", **monitor.check_images(ref, current, thresholds)}
    _report(result, ref, current, out, report_dir, root, fail_on)


def _report(
    result, ref, current, out: Path, report_dir: Path, root: Path, fail_on: str = "critical"
) -> None:
    """Write the JSON and Markdown reports and the alert; exit 2 on drift as severe as
    `fail_on` or worse (a scheduled check fails visibly)."""
    from rich.console import Console

    from vertiflow.monitoring import drift, monitor

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = {}
    for name in [d for d in result["drifted"] if d in ref.columns and d in current.columns][:8]:
        monitor.plot_feature(ref[name], current[name], report_dir / f"{name}.png")
        plots[name] = f"{name}.png"
    (report_dir / "report.md").write_text(monitor.markdown(result, plots))
    alert = monitor.record(result, root)

    console = Console()
    console.print(
        f"drift: [bold]{result['severity']}[/]"
        + (f" in {', '.join(result['drifted'])}" if result["drifted"] else "")
        + f"; report {report_dir / 'report.md'}"
        + (f", alert {alert}" if alert else "")
    )
    if drift.SEVERITY.index(result["severity"]) >= drift.SEVERITY.index(fail_on):
        raise typer.Exit(2)


if __name__ == "__main__":  # `python -m vertiflow.cli`, once every command is defined
    app()
