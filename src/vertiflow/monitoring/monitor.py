"""The monitor: prediction log, drifted batches from the simulator, reports and alerts.

Layout under `.monitoring/` (git-ignored, the skin app's convention):
`predictions/<model>/*.parquet` (one file per logged batch: inputs, prediction, model
version, time; append-only, so concurrent apps never corrupt it; past hours merged into
one file each, `compact_predictions`; for the detector the inputs are the image features
of `monitoring.images`), `alerts/*.json` (one per warning
or critical check, and one per prediction error), `history.jsonl` (one line per check),
`performance/<model>.jsonl` (one line per prediction or error: time, latency, mean
confidence) and `performance_metrics.json` (per model, over its last `WINDOW` events:
count, latency p50/p95, errors, mean confidence, and `quality` from `quality/<model>.json`
when labelled predictions were scored; rewritten atomically on every event). The apps'
`ModelMonitor` also keeps the seed's `predictions_history.json` (`lifecycle.apps`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vertiflow.errors import DataError
from vertiflow.monitoring import drift

MONITORING_DIR = Path(".monitoring")
WINDOW = 1000  # events per model in performance_metrics.json (a rolling window)

# Drifted farms for tests and demos: SimConfig overrides (vertiflow.farm.simulator).
SCENARIOS: dict[str, dict[str, Any]] = {
    "none": {},
    "co2_sensor": {"co2_sensor_offset_ppm": 250.0},  # miscalibrated CO2 sensor
    "hot_summer": {"climate_shift_c": 3.0},  # the HVAC cannot hold setpoints
    "new_cultivar": {  # a new basil cultivar grown warmer and richer, smaller plants
        "setpoint_shift": {"air_temp_setpoint": 3.0, "ec_setpoint": 0.5},
        "yield_scale": 0.75,
    },
}


def checked_model_name(name: Any) -> str:
    """An app's model name, which names its log folder, performance log and alerts: with a
    path in it, 'yolo/v8' failed (FileNotFoundError) after the prediction was logged, and
    '../x' wrote outside the monitoring folder, then raised KeyError."""
    text = str(name)
    if text in {"", ".", ".."} or any(c in text for c in "/\\\0"):
        raise DataError(
            f"model_name {text!r}: expected a plain name (no '/' or '\\'; not '.' or '..'), "
            "as it names the model's log and alert files."
        )
    return text


def log_predictions(
    model: str,
    version: str,
    inputs: pl.DataFrame,
    predictions: Any,
    root: Path = MONITORING_DIR,
) -> Path:
    """Append one batch of predictions with its inputs, model version and time."""
    folder = root / "predictions" / checked_model_name(model)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    table = inputs.with_columns(
        pl.Series("prediction", np.asarray(predictions).tolist()),
        pl.lit(str(version)).alias("model_version"),
        pl.lit(now).alias("logged_at"),
    )
    path = folder / f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = path.with_suffix(".tmp")
    table.write_parquet(tmp)
    tmp.rename(path)  # readers never see half a file
    if _COMPACTED.get(folder) != now.strftime(HOUR):  # once per hour and process
        _COMPACTED[folder] = now.strftime(HOUR)
        # not a daemon: a process that exits mid-merge finishes it first (a few seconds)
        threading.Thread(target=compact_predictions, args=(folder, now)).start()
    return path


# An app logs one file per request: about 12 KB for a one-row table, so a month at one
# request a second would be 2.6 million files (about 32 GB) for the monitor to list and
# read (benchmarks/results/prediction_log_files.json).
# Hours that are over are merged into one file each, `<hour>-hour.parquet`, whose
# metadata names the files it holds (readers leave those out: no row counted twice,
# whatever a crash left behind). Names keep starting with the hour, so a sync or a
# reader can still pick a time window by prefix.
HOUR = "%Y%m%dT%H"
HOUR_FILE = "-hour.parquet"  # `<hour>-hour.parquet`: the merged hour
MERGED_KEY = "vertiflow.merged"  # parquet metadata: JSON list of the files merged in
_COMPACTED: dict[Path, str] = {}


def hour_prefixes(since: datetime, now: datetime | None = None) -> list[str]:
    """The log's file-name prefixes (UTC hours) from `since` to `now`: the files a sync
    of that window needs, whether an hour is merged yet or not."""
    now = now or datetime.now(UTC)
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    prefixes = []
    while hour <= now:
        prefixes.append(hour.strftime(HOUR))
        hour += timedelta(hours=1)
    return prefixes


def _names_in(hour_file: Path) -> set[str]:
    """The files an hour file holds (none when there is no such file yet)."""
    if not hour_file.exists():
        return set()
    return set(json.loads(pl.read_parquet_metadata(hour_file).get(MERGED_KEY, "[]")))


def merged_files(files: list[Path]) -> set[str]:
    """Names of the log files already merged into an hour file among `files`."""
    return set().union(*(_names_in(f) for f in files if f.name.endswith(HOUR_FILE)))


def log_files(folder: Path) -> list[Path]:
    """A model's log files, less those an hour file already holds."""
    files = sorted(folder.glob("*.parquet"))
    merged = merged_files(files)
    return [f for f in files if f.name not in merged]


def compact_predictions(folder: Path, now: datetime | None = None) -> int:
    """Merge the log files of every hour that is over into one file per hour; returns
    the number of files merged. One process at a time (a lock file); another process
    already compacting is left to it."""
    from filelock import FileLock, Timeout

    current = (now or datetime.now(UTC)).strftime(HOUR)
    try:
        # beside the model's folder, not in it: that folder is what gets synced and read
        with FileLock(folder.with_name(f".{folder.name}.compact.lock"), timeout=0):
            files = sorted(folder.glob("*.parquet"))
            merged = merged_files(files)
            hours: dict[str, list[Path]] = {}
            for f in files:
                if f.name[: len(current)] < current and f.name not in merged:
                    hours.setdefault(f.name[: len(current)], []).append(f)
            for f in files:  # merged, but a crash came before they were removed
                if f.name in merged:
                    f.unlink(missing_ok=True)
            for f in folder.glob("*-hour.tmp"):  # a merge cut short (no other runs now)
                f.unlink(missing_ok=True)
            count = 0
            for hour, group in hours.items():
                # a file cut short (a sync, a full disk) stays out, where reading the log
                # names it: it failed every hour's merge, every hour, in the app's thread
                group = [f for f in group if _readable(f)]
                small = [f for f in group if not f.name.endswith(HOUR_FILE)]
                if small:
                    count += _merge_hour(folder / f"{hour}{HOUR_FILE}", group, small)
            return count
    except Timeout:
        return 0


def _readable(file: Path) -> bool:
    try:
        pl.read_parquet_schema(file)
    except (OSError, pl.exceptions.PolarsError):
        return False
    return True


def _merge_hour(target: Path, group: list[Path], small: list[Path]) -> int:
    names = sorted(_names_in(target) | {f.name for f in small})
    table = pl.concat([pl.read_parquet(f) for f in group], how="diagonal_relaxed")
    tmp = target.with_suffix(".tmp")
    table.sort("logged_at", maintain_order=True).write_parquet(
        tmp, metadata={MERGED_KEY: json.dumps(names)}
    )
    tmp.replace(target)  # the hour file and its list of merged files change at once
    for f in small:
        f.unlink(missing_ok=True)
    return len(small)


def record_event(
    model: str,
    latency_s: float | None = None,
    confidence: float | None = None,
    error: str | None = None,
    root: Path = MONITORING_DIR,
    window: int = WINDOW,
    timing: bool = False,
) -> dict[str, Any]:
    """One prediction (or failed one) into the performance log; returns the new summary
    (over each model's last `window` events). `timing`: an app's separate timing of a
    call it may also log (the seed's PerformanceTracker), not a prediction of its own."""
    from filelock import FileLock

    checked_model_name(model)
    folder = root / "performance"
    folder.mkdir(parents=True, exist_ok=True)
    event = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "latency_s": None if latency_s is None else round(float(latency_s), 6),
        "confidence": None if confidence is None else round(float(confidence), 6),
        "error": error,
        **({"timing": True} if timing else {}),
    }
    with FileLock(root / ".performance.lock", timeout=30):
        with (folder / f"{model}.jsonl").open("a") as f:
            f.write(json.dumps(event) + "\n")
        return _write_summary(root, window)[model]


def record_quality(
    model: str, metrics: dict[str, Any], root: Path = MONITORING_DIR, window: int = WINDOW
) -> dict[str, Any]:
    """A model's measured quality on labelled predictions (`quality/<model>.json`), shown
    in `performance_metrics.json` beside its latency and errors."""
    from filelock import FileLock

    folder = root / "quality"
    folder.mkdir(parents=True, exist_ok=True)
    stamped = {**metrics, "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
    with FileLock(root / ".performance.lock", timeout=30):
        (folder / f"{model}.json").write_text(json.dumps(stamped, indent=2) + "\n")
        return _write_summary(root, window)[model]


def _write_summary(root: Path, window: int) -> dict[str, Any]:
    """`performance_metrics.json` from the logs (called under the performance lock)."""
    events = {p.stem: _summary(_tail(p, window)) for p in (root / "performance").glob("*.jsonl")}
    quality = {p.stem: json.loads(p.read_text()) for p in (root / "quality").glob("*.json")}
    summary = {
        model: {
            **events.get(model, _summary([])),
            **({"quality": quality[model]} if model in quality else {}),
        }
        for model in sorted({*events, *quality})
    }
    tmp = root / f".performance_metrics.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(root / "performance_metrics.json")
    return summary


def _tail(path: Path, lines: int) -> list[dict[str, Any]]:
    """The last `lines` events of a log, read from its end (the log only grows)."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size, block, data = f.tell(), 1 << 16, b""
        while size > 0 and data.count(b"\n") <= lines:
            step = min(block, size)
            size -= step
            f.seek(size)
            data = f.read(step) + data
    return [json.loads(line) for line in data.splitlines()[-lines:] if line.strip()]


def _summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [e["latency_s"] for e in events if e["latency_s"] is not None and not e["error"]]
    confidences = [e["confidence"] for e in events if e["confidence"] is not None]
    errors = [e for e in events if e["error"]]
    # A request an app both times and logs is one prediction; one only timed counts too
    timed = sum(1 for e in events if e.get("timing"))
    predictions = max(len(events) - len(errors) - timed, timed)

    def ms(q: float) -> float | None:
        return round(float(np.percentile(latencies, q)) * 1000, 3) if latencies else None

    return {
        "window": len(events),
        "predictions": predictions,
        "errors": len(errors),
        "error_rate": round(len(errors) / (predictions + len(errors)), 6) if errors else 0.0,
        "latency_p50_ms": ms(50),
        "latency_p95_ms": ms(95),
        "mean_confidence": round(float(np.mean(confidences)), 6) if confidences else None,
        "first": events[0]["at"] if events else None,
        "last": events[-1]["at"] if events else None,
        "last_error": errors[-1]["error"] if errors else None,
    }


def record_error(
    model: str,
    error: BaseException | str,
    context: dict[str, Any] | None = None,
    root: Path = MONITORING_DIR,
    window: int = WINDOW,
) -> Path:
    """A failed prediction: an alert file (`alerts/*-error.json`) and a performance event."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    record_event(model, error=message, root=root, window=window)
    now = datetime.now(UTC)
    path = alert_path(root / "alerts", "error", model, now)
    alert = {
        "kind": "prediction_error",
        "model": model,
        "error": message,
        "at": now.isoformat(timespec="milliseconds"),
        **({"context": context} if context else {}),
    }
    path.write_text(json.dumps(alert, indent=2, default=str) + "\n")
    return path


class NothingToCheck(DataError):
    """Too few logged predictions (none, or none in the window) for a drift check: a quiet
    period, not a fault (`vertiflow monitor` exits 3, which a schedule treats as a notice)."""


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start of a window: a duration back from now (`30m`, `6h`, `7d`, `2w`) or an
    ISO 8601 date-time (UTC unless it says otherwise)."""
    value = text.strip()
    number, unit = value[:-1], value[-1:].lower()
    if unit in UNITS and number.replace(".", "", 1).isdigit() and float(number) > 0:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(number) * UNITS[unit])
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"--since {text!r}: expected a duration back from now (a positive number with s, "
            "m, h, d or w: 30m, 6h, 7d, 2w) or an ISO date-time (2026-11-25T06:00Z)."
        ) from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read_log(folder: Path, read):
    """`read(files)` over a model's log files, listed again when an hour was merged (and
    its files removed) while they were read."""
    for _ in range(2):
        files = log_files(folder)
        try:
            return read(files)
        except (OSError, pl.exceptions.PolarsError):
            if all(f.exists() for f in files):
                _name_unreadable(files)
                raise
    return read(log_files(folder))


def _name_unreadable(files: list[Path]) -> None:
    """A log file cut short (a sync, a full disk) failed the whole read with polars' "File
    out of specification", naming no file: name it, so it can be restored or moved aside."""
    for f in files:
        try:
            pl.read_parquet_schema(f)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise DataError(
                f"{f}: not a readable Parquet file ({' '.join(str(exc).split())}); restore "
                "it from the sync or move it out of the log folder."
            ) from None


def read_predictions(
    model: str, root: Path = MONITORING_DIR, since: datetime | None = None
) -> pl.DataFrame:
    """The logged predictions of `model`, those logged at or after `since` when given (so
    a new drift is not diluted by months of earlier traffic)."""
    folder = root / "predictions" / model

    def read(files: list[Path]) -> tuple[pl.DataFrame, int]:
        if not files:
            raise NothingToCheck(f"{folder}: no logged predictions for '{model}'.")
        # files of one model may differ in columns (a detector log with and without outputs)
        log = pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")
        if since is None:
            return log.collect(), 0
        recent = log.filter(pl.col("logged_at") >= since).collect()
        return recent, 0 if recent.height else log.select(pl.len()).collect().item()

    recent, total = _read_log(folder, read)
    if since is not None and not recent.height:
        raise NothingToCheck(
            f"{folder}: no predictions logged for '{model}' since "
            f"{since.isoformat(timespec='seconds')} ({total} earlier ones)."
        )
    return recent


def prediction_counts(root: Path = MONITORING_DIR, since: datetime | None = None) -> dict[str, int]:
    """Logged predictions per model (rows: one per image or table row), since `since`."""

    def count(files: list[Path]) -> int | None:
        if not files:
            return None
        log = pl.concat([pl.scan_parquet(f).select("logged_at") for f in files])
        if since is not None:
            log = log.filter(pl.col("logged_at") >= since)
        return log.select(pl.len()).collect().item()

    counts = {}
    for folder in sorted(p for p in (root / "predictions").glob("*") if p.is_dir()):
        if (n := _read_log(folder, count)) is not None:
            counts[folder.name] = n
    return counts


def simulated_batch(scenario: str, seed: int, racks: int = 5, cycles: int = 10) -> pl.DataFrame:
    """Prepared features of a fresh simulated farm, optionally drifted (SCENARIOS)."""
    from vertiflow.data import dataset, rawdata
    from vertiflow.farm.simulator import SimConfig, write_farm

    if scenario not in SCENARIOS:
        raise DataError(f"unknown scenario '{scenario}'; known: {', '.join(SCENARIOS)}.")
    config = SimConfig(
        seed=seed, racks=racks, modules_per_rack=4, cycles_per_module=cycles, **SCENARIOS[scenario]
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_farm(Path(tmp), config)
        prepared = dataset.build(rawdata.load(Path(tmp)), 0.5)
    return pl.concat([prepared.train, prepared.test])


def model_columns(params: dict[str, Any]) -> list[str]:
    """The inputs the deployed models read: what drift matters for."""
    columns: list[str] = []
    for stage in ("train_oracle", "train_classifier"):
        features = params[stage]["features"]
        for name in [*features["categorical"], *features["numeric"]]:
            if name not in columns:
                columns.append(name)
    return columns


# The column a model's logged predictions are checked as (see `with_predictions`).
PREDICTION_COLUMN = {"oracle": "predicted_yield_g", "classifier": "predicted_grade"}


def with_predictions(table: pl.DataFrame, oracle, classifier) -> pl.DataFrame:
    """Add the models' outputs, so prediction drift is checked like any feature."""
    from vertiflow.tabular.modeling import frame

    return table.with_columns(
        pl.Series("predicted_yield_g", oracle.predict(frame(table, oracle.feature_names_in_))),
        pl.Series(
            "predicted_grade",
            classifier.predict(frame(table, classifier.feature_names_in_)).astype(str),
        ),
    )


def check(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], t: drift.Thresholds
) -> dict[str, Any]:
    return _stamped(drift.detect(reference, current, columns, t), t)


def check_images(
    reference: pl.DataFrame, current: pl.DataFrame, t: drift.Thresholds
) -> dict[str, Any]:
    """`check` for image batches: features of `monitoring.images` on both sides."""
    from vertiflow.monitoring import images

    return _stamped(images.check(reference, current, t), t)


def _stamped(report: dict[str, Any], t: drift.Thresholds) -> dict[str, Any]:
    report["thresholds"] = asdict(t)
    report["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def alert_path(alerts: Path, severity: str, model: str | None, now: datetime) -> Path:
    """`<time>-<severity>-<model>.json`: every alert's name (drift, prediction errors, the
    apps' own), so a dashboard or a workflow can sort, filter and attribute them."""
    if model:
        checked_model_name(model)
    alerts.mkdir(parents=True, exist_ok=True)
    return alerts / f"{now:%Y%m%dT%H%M%S%f}-{severity}{f'-{model}' if model else ''}.json"


def record(report: dict[str, Any], root: Path = MONITORING_DIR) -> Path | None:
    """Append to the history; write an alert file when anything drifted. The report's
    `model`, when known, goes into both and into the alert's name
    (`alerts/<time>-<severity>-<model>.json`), so a dashboard can tell which model a
    drift concerns, as it can for prediction errors."""
    root.mkdir(parents=True, exist_ok=True)
    model = report.get("model")
    keys = ("checked_at", "severity", "drifted", "rows_current")
    summary = {"kind": "drift", **({"model": model} if model else {})}
    summary.update({k: report[k] for k in keys})
    with (root / "history.jsonl").open("a") as f:
        f.write(json.dumps(summary) + "\n")
    if report["severity"] == "ok":
        return None
    path = alert_path(root / "alerts", report["severity"], model, datetime.now(UTC))
    path.write_text(json.dumps({"kind": "drift", **report}, indent=2) + "\n")
    return path


def markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    lines = [
        f"# Drift check: **{report['severity'].upper()}**",
        "",
        f"{report['rows_current']} rows checked against {report['rows_reference']} training "
        f"rows at {report['checked_at']}. Flagged when PSI and the test agree "
        f"(p < {report['alpha_per_feature']:.2g} per feature, Bonferroni).",
        "",
        "| feature | severity | PSI | test | p-value | mean (train -> now) or new values "
        "| missing (train -> now) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in sorted(
        report["features"].items(), key=lambda kv: -drift.SEVERITY.index(kv[1]["severity"])
    ):
        means = (
            f"{f['mean_reference']:.4g} -> {f['mean_current']:.4g}" if "mean_current" in f else ""
        )
        if f.get("unseen"):  # a category never trained on: named, with its rows
            means = "new: " + ", ".join(f"{v} ({n} rows)" for v, n in f["unseen"].items())
        psi, p = (f"{f['psi']:.3f}", f"{f['p_value']:.3g}") if f["test"] else ("-", "-")
        lines.append(
            f"| {name} | {f['severity']} | {psi} | {f['test'] or '-'} | {p} | "
            f"{f.get('note', means)} | {f['missing_reference']:.1%} -> "
            f"{f['missing_current']:.1%} |"
        )
    for name, image in plots.items():
        lines += ["", f"## {name}", "", f"![{name}]({image})"]
    return "\n".join(lines) + "\n"


def plot_feature(reference: pl.Series, current: pl.Series, path: Path) -> None:
    import matplotlib.pyplot as plt  # backend from runtime.configure (MPLBACKEND)

    fig, ax = plt.subplots(figsize=(5, 3))
    if reference.dtype.is_numeric():
        # a logged column may be text (an app's "21.5", "null"): what is not a number is
        # missing here, as in the drift check
        ref = reference.cast(pl.Float64, strict=False).drop_nulls().to_numpy()
        cur = current.cast(pl.Float64, strict=False).drop_nulls().to_numpy()
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        for values, label in ((ref, "training"), (cur, "now")):
            if values.size:  # an empty side (a probe that stopped) divided by 0 in numpy
                ax.hist(values, bins, density=True, alpha=0.5, label=label)
            else:
                ax.hist([], bins, alpha=0.5, label=f"{label}: no values")
    else:
        # a null category (an app's crop: null) is a bar of its own, not a comparison error
        ref, cur = (s.cast(pl.String).fill_null("(missing)") for s in (reference, current))
        levels = sorted(set(ref.to_list()) | set(cur.to_list()))
        x = np.arange(len(levels))
        ax.bar(x - 0.2, [(ref == v).mean() for v in levels], 0.4, label="training")
        ax.bar(x + 0.2, [(cur == v).mean() for v in levels], 0.4, label="now")
        ax.set_xticks(x, levels)
    ax.set_title(reference.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
