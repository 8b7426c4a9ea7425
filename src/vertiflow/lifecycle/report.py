"""A pull request's Markdown report: what changed against a base revision, and by how much.

Params and metrics diffs come from DVC itself (`dvc params diff`, `dvc metrics diff`),
so the report says exactly what `dvc exp show` would. Plot data are committed CSVs;
those that changed are drawn base-versus-now as PNGs beside the report.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from vertiflow.errors import VertiflowError

PLOT_DIRS = ("metrics/plots", "metrics/cortex_plots")
# plot file name prefix -> (x, y, kind, title, x label, y label)
PLOT_AXES = {
    "oracle_predictions": (
        "actual_g", "predicted_g", "scatter",
        "Oracle: predicted vs actual yield", "actual fresh weight (g/plant)",
        "predicted fresh weight (g/plant)",
    ),
    "roc_": ("fpr", "tpr", "line", "Classifier ROC", "false positive rate", "true positive rate"),
    "trace_": (
        "generation", "best_margin", "line",
        "Cortex convergence", "generation", "best margin (MAD/m2/day)",
    ),
    "classifier_confusion": (
        "actual", "predicted", "confusion",
        "Quality grade confusion (held-out batches)", "predicted", "actual",
    ),
}  # fmt: skip

# Each model's headline metric and, where evaluate writes one, its per-batch loss column
# in metrics/heldout_losses.csv (what the paired bootstrap compares).
HEADLINES = {
    "Oracle": ("metrics/oracle.json", "r2", "oracle_squared_error", True),
    "Classifier": ("metrics/classifier.json", "accuracy", "classifier_log_loss", True),
    "Cortex": ("metrics/cortex.json", "max_regret", None, False),
    "YOLO": ("metrics/yolo.json", "mAP50", None, True),
}
LOSSES = "metrics/heldout_losses.csv"
# New data, new test split: a figure on other batches is neither better nor worse
OTHER_BATCHES = "different held-out batches: not comparable"
COMMENT_LIMIT = 65_536  # GitHub's limit on one comment


def _dvc(args: list[str], cwd: Path) -> dict:
    proc = subprocess.run(["dvc", *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VertiflowError(f"dvc {' '.join(args)} failed: {proc.stderr.strip()[:500]}")
    return json.loads(proc.stdout or "{}")


def _git(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VertiflowError(f"git {' '.join(args)} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def params_table(diff: dict) -> list[str]:
    rows = [
        f"| `{name}` | {_fmt(change.get('old'))} | {_fmt(change.get('new'))} |"
        for changes in diff.values()
        for name, change in sorted(changes.items())
    ]
    return ["| param | base | now |", "| --- | --- | --- |", *rows] if rows else []


def metrics_table(diff: dict) -> list[str]:
    rows = []
    for path, changes in sorted(diff.items()):
        for name, change in sorted(changes.items()):
            delta = change.get("diff")
            signed = f"{delta:+.4g}" if isinstance(delta, int | float) else "-"
            old, new = _fmt(change.get("old")), _fmt(change.get("new"))
            rows.append(f"| `{path}` | {name} | {old} | {new} | {signed} |")
    header = ["| file | metric | base | now | change |", "| --- | --- | --- | --- | --- |"]
    return [*header, *rows] if rows else []


def bayes_lines(repo: Path) -> list[str]:
    """Where the models stand against the best possible, from the current metrics."""
    lines = []
    read = lambda name: json.loads((repo / "metrics" / name).read_text())  # noqa: E731
    if (repo / "metrics/oracle.json").exists() and "bayes" in read("oracle.json"):
        o = read("oracle.json")
        limit = o["bayes"]["r2"]
        lines.append(
            f"- Oracle R2 {o['r2']:.4f}: {o['r2_of_limit']:.1%} of its Bayes limit {limit:.4f}"
        )
    if (repo / "metrics/classifier.json").exists() and "bayes" in read("classifier.json"):
        c = read("classifier.json")
        against = _accuracy_against_bayes(c["accuracy_gap"], c["bayes"]["accuracy"])
        lines.append(f"- Classifier accuracy {c['accuracy']:.4f}: {against}")
    if (repo / "metrics/cortex.json").exists():
        x = read("cortex.json")
        regrets = ", ".join(
            f"{k} {v['regret']:.2%}" for k, v in x.items() if isinstance(v, dict) and "regret" in v
        )
        if regrets:
            lines.append(f"- Cortex regret against the true best recipe: {regrets}")
    return lines


def changed_plot_files(repo: Path, base: str) -> list[str]:
    out = _git(["diff", "--name-only", base, "--", *PLOT_DIRS], repo)
    return sorted(p for p in out.split() if p.endswith(".csv"))


def draw(path: str, base_csv: str | None, now_csv: str | None, out: Path) -> None:
    import matplotlib.pyplot as plt  # backend from runtime.configure (MPLBACKEND)

    name = Path(path).stem
    x, y, kind, title, x_label, y_label = next(
        (v for k, v in PLOT_AXES.items() if name.startswith(k)),
        (None, None, "line", path, None, None),
    )
    fig, axes = plt.subplots(
        1, 2 if kind == "confusion" else 1, figsize=(8 if kind == "confusion" else 5, 4)
    )
    for label, text, color in (("base", base_csv, "tab:gray"), ("now", now_csv, "tab:blue")):
        if not text:
            continue
        frame = pd.read_csv(io.StringIO(text))
        if kind == "confusion":
            ax = axes[0 if label == "base" else 1]
            table = pd.crosstab(frame[x], frame[y])
            ax.imshow(table.to_numpy(), cmap="Blues")
            ax.set_xticks(range(table.shape[1]), table.columns)
            ax.set_yticks(range(table.shape[0]), table.index)
            for (i, j), v in pd.DataFrame(table.to_numpy()).stack().items():
                ax.text(j, i, str(v), ha="center", va="center")
            ax.set_title(label)
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            continue
        x_col, y_col = (x, y) if x in frame and y in frame else frame.columns[:2]
        if kind == "scatter":
            axes.scatter(frame[x_col], frame[y_col], s=4, alpha=0.5, color=color, label=label)
        else:
            axes.plot(frame[x_col], frame[y_col], color=color, label=label)
        axes.set_xlabel(x_label or x_col)
        axes.set_ylabel(y_label or y_col)
        axes.legend()
    suffix = name.split("_", 1)[1] if name.startswith(("roc_", "trace_")) else ""
    fig.suptitle(f"{title} ({suffix})" if suffix else title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def mlflow_links(repo: Path) -> list[str]:
    """Links to the commit's runs on the tracking server. The links are an extra: a server
    that is down or refuses costs the report only them, said in the report and on stderr
    (it had cost the whole report, after MLflow's 4 minutes of retries and a traceback)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        return []
    import mlflow

    from vertiflow.lifecycle.tracking import check_reachable

    commit = _git(["rev-parse", "HEAD"], repo).strip()
    try:
        check_reachable(uri, read=30.0)
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(
            search_all_experiments=True,  # the pipeline run, and stage runs of every experiment
            filter_string=f"tags.git_commit = '{commit}'",
            output_format="list",
        )
    except (VertiflowError, mlflow.exceptions.MlflowException) as exc:
        why = str(exc).splitlines()[0][:300]
        print(f"warning: no MLflow links in the report: {why}", file=sys.stderr)
        return [f"- Links left out: {why}"]
    return [
        f"- [{r.data.tags.get('stage', r.info.run_name)}]({uri.rstrip('/')}/#/experiments/"
        f"{r.info.experiment_id}/runs/{r.info.run_id})"
        for r in runs
    ]


def _show(repo: Path, base: str, path: str) -> str | None:
    """A file's text at `base`, or None where it did not exist."""
    proc = subprocess.run(
        ["git", "show", f"{base}:{path}"], cwd=repo, capture_output=True, text=True
    )
    return proc.stdout if proc.returncode == 0 else None


def _json_at(repo: Path, base: str | None, path: str) -> dict | None:
    text = _show(repo, base, path) if base else _read(repo / path)
    return json.loads(text) if text else None


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def verdict(comparison) -> str:
    """Loss reduction's interval against zero: the whole interval decides."""
    if comparison.ci_low == comparison.ci_high == 0:
        return "unchanged"
    if comparison.ci_low > 0:
        return "**better**"
    if comparison.ci_high < 0:
        return "**worse**"
    return "within noise"


def paired_change(repo: Path, base: str, column: str, bootstrap: dict):
    """Paired bootstrap of the per-batch loss, base minus now, on the batches both scored."""
    from vertiflow.lifecycle.registry import paired_bootstrap

    base_text, now_text = _show(repo, base, LOSSES), _read(repo / LOSSES)
    if not base_text or not now_text:
        return None, "no per-batch losses at the base"
    both = pd.read_csv(io.StringIO(base_text)).merge(
        pd.read_csv(io.StringIO(now_text)), on="batch_id", suffixes=("_base", "_now")
    )
    if len(both) < 2:
        return None, OTHER_BATCHES
    comparison = paired_bootstrap(
        both[f"{column}_base"].to_numpy(),
        both[f"{column}_now"].to_numpy(),
        int(bootstrap["bootstrap_samples"]),
        float(bootstrap["confidence"]),
        int(bootstrap["seed"]),
    )
    return comparison, None


def _bayes(name: str, now: dict) -> str:
    if name == "Oracle" and "r2_of_limit" in now:
        return f"{now['r2_of_limit']:.1%} of the Bayes R2 {now['bayes']['r2']:.4f}"
    if name == "Classifier" and "accuracy_gap" in now:
        return _accuracy_against_bayes(now["accuracy_gap"], now["bayes"]["accuracy"])
    if name == "Cortex" and "max_regret" in now:
        return "regret is the gap to the true best recipe"
    return "-"


def _accuracy_against_bayes(gap: float, limit: float) -> str:
    """A negative gap is a model above the Bayes accuracy on this test set, by chance: said
    so (the report had written "-0.10 points below Bayes")."""
    if gap < 0:
        return f"{-gap * 100:.2f} points above Bayes {limit:.4f} (chance on these batches)"
    return f"{gap * 100:.2f} points below Bayes {limit:.4f}"


def verdict_table(repo: Path, base: str, bootstrap: dict) -> list[str]:
    """One row per model: headline base -> now, change, 95 % interval, verdict, Bayes gap."""
    rows = []
    for name, (path, metric, column, higher_is_better) in HEADLINES.items():
        now, old = _json_at(repo, None, path), _json_at(repo, base, path)
        if not now or metric not in now:
            continue
        value = now[metric]
        before = old.get(metric) if old else None
        change = f"{value - before:+.4g}" if before is not None else "new"
        if column:
            comparison, why = paired_change(repo, base, column, bootstrap)
        else:
            comparison, why = None, "no per-row losses"
        if comparison is not None:
            level = f"{comparison.confidence:.0%}"
            interval = f"[{comparison.ci_low:+.4g}, {comparison.ci_high:+.4g}] ({level})"
            said = verdict(comparison)
        elif before is not None and before == value:
            interval, said = "-", "unchanged"
        elif why == OTHER_BATCHES:  # new data: the registry's gate compares on shared rows
            interval, said = "-", "not comparable: other held-out batches"
        else:
            better = (value > before) == higher_is_better if before is not None else None
            direction = {True: "better", False: "worse", None: "new"}[better]
            interval, said = "-", f"{direction}, untested ({why})"
        rows.append(
            f"| {name} | {metric} | {_fmt(before)} -> {_fmt(value)} | {change} | {interval} "
            f"| {said} | {_bayes(name, now)} |"
        )
    header = [
        "| model | metric | base -> now | change | loss reduction, 95 % interval | verdict "
        "| against the best possible |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    return [*header, *rows] if rows else []


def registry_sentences(repo: Path, base: str) -> list[str]:
    """The registry's decisions of this change's evaluate run. When metrics/registry.json is
    as at the base, evaluate made none for this change (DVC skipped it, or it decided the
    same): the base's decisions, replayed, had read as this change's ("version 1 registered
    and promoted to champion" under "No change against `main`")."""
    path = "metrics/registry.json"
    decisions = _json_at(repo, None, path) or {}
    if decisions and decisions == _json_at(repo, base, path):
        return [
            f"- No registry decision of this change: `{path}` is as at `{base}` (evaluate "
            "did not run, or decided the same)."
        ]
    return [f"- {decision_sentence(key, d)}" for key, d in decisions.items()]


def decision_sentence(key: str, d: dict) -> str:
    """One registry decision (metrics/registry.json) in words: the pull-request report's
    line, and what evaluate prints."""
    name = d.get("name", key)
    if d.get("unchanged"):
        return f"`{name}`: same files as version {d['version']}, the champion; nothing registered."
    text = f"`{name}` version {d['version']} " + (
        "(same files, not registered again)" if d.get("reused") else "registered"
    )
    if d.get("promoted"):
        text += " and promoted to champion"
    elif d.get("champion") is None:
        text += "; no champion yet"
    else:
        text += f"; champion stays version {d['champion']}"
    text += f": {d.get('reason', '')}"
    if c := d.get("comparison"):
        low, high = (_loss(c[k]) for k in ("ci_low", "ci_high"))
        text += (
            f" (loss reduction {_loss(c['improvement'])}, {c['confidence']:.0%} interval "
            f"[{low}, {high}] over {c['rows']} rows)"
        )
    return text + "."


def _loss(x: float) -> str:
    """Four significant digits below 1,000, whole numbers above (`:g` wrote 1.122e+04)."""
    return f"{x:+,.0f}" if abs(x) >= 1e3 else f"{x:+.4g}"


def _fit(lines: list[str], details: list[str], plots: list[str], limit: int) -> list[str]:
    """Keep the report under GitHub's comment limit: the metric details go first."""
    head = "\n".join(lines)
    tail = "\n".join(plots)
    room = limit - len(head) - len(tail) - 400
    kept: list[str] = []
    for row in details:
        if len("\n".join(kept)) + len(row) + 1 > room:
            left = len(details) - len(kept)
            kept.append(f"| ... | shortened: {left} more rows left out (comment limit) | | | |")
            break
        kept.append(row)
    block = ["<details><summary>Every metric</summary>", "", *kept, "", "</details>", ""]
    return [*lines, *(block if details else []), *plots]


def build(repo: Path, base: str, out: Path, limit: int = COMMENT_LIMIT) -> str:
    """Write `out` (Markdown) and the changed plots beside it; returns the Markdown."""
    from vertiflow import params as params_file

    _git(["rev-parse", "--verify", f"{base}^{{commit}}"], repo)
    params = params_table(_dvc(["params", "diff", base], repo))
    metrics = metrics_table(_dvc(["metrics", "diff", base], repo))
    plots = changed_plot_files(repo, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    bootstrap = params_file.read_yaml(repo / "params.yaml")["register"]
    lines = [f"## VertiFlow pipeline report (against `{base}`)", ""]
    if not (params or metrics or plots):
        lines += [f"No change against `{base}`: params, metrics and plots are identical.", ""]
    if table := verdict_table(repo, base, bootstrap):
        lines += [*table, ""]
        lines += [
            "Loss reduction: base minus now per held-out batch (squared error for the "
            "Oracle, log loss for the Classifier), paired bootstrap; better or worse only "
            "when the whole interval is on one side of zero.",
            "",
        ]
    if params:
        lines += ["### Params changed", "", *params, ""]
    if decisions := registry_sentences(repo, base):
        lines += ["### Model registry", "", *decisions, ""]
    plot_lines: list[str] = []
    if plots:
        plot_lines += ["### Plots that changed", ""]
        for path in plots:
            image = out.parent / (Path(path).stem + ".png")
            now = repo / path
            draw(path, _show(repo, base, path), now.read_text() if now.exists() else None, image)
            plot_lines += [f"![{path}]({image.name})", ""]
    if links := mlflow_links(repo):
        plot_lines += ["### MLflow runs of this commit", "", *links, ""]
    text = "\n".join(_fit(lines, metrics, plot_lines, limit))
    out.write_text(text)
    return text
