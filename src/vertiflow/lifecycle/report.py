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
from pathlib import Path

import pandas as pd

from vertiflow.errors import VertiflowError

PLOT_DIRS = ("metrics/plots", "metrics/cortex_plots")
# plot file name prefix -> (x, y, kind)
PLOT_AXES = {
    "oracle_predictions": ("actual_g", "predicted_g", "scatter"),
    "roc_": ("fpr", "tpr", "line"),
    "trace_": ("generation", "best_margin", "line"),
    "classifier_confusion": ("actual", "predicted", "confusion"),
}


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
        lines.append(
            f"- Classifier accuracy {c['accuracy']:.4f}: {c['accuracy_gap'] * 100:.2f} points "
            f"below its Bayes limit {c['bayes']['accuracy']:.4f}"
        )
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
    x, y, kind = next((v for k, v in PLOT_AXES.items() if name.startswith(k)), (None, None, "line"))
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
        axes.set_xlabel(x_col)
        axes.set_ylabel(y_col)
        axes.legend()
    fig.suptitle(path)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def mlflow_links(repo: Path) -> list[str]:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        return []
    import mlflow

    commit = _git(["rev-parse", "HEAD"], repo).strip()
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        experiment_names=["vertiflow-models"],
        filter_string=f"tags.git_commit = '{commit}'",
        output_format="list",
    )
    return [
        f"- [{r.data.tags.get('stage', r.info.run_name)}]({uri.rstrip('/')}/#/experiments/"
        f"{r.info.experiment_id}/runs/{r.info.run_id})"
        for r in runs
    ]


def build(repo: Path, base: str, out: Path) -> str:
    """Write `out` (Markdown) and the changed plots beside it; returns the Markdown."""
    _git(["rev-parse", "--verify", f"{base}^{{commit}}"], repo)
    params = params_table(_dvc(["params", "diff", base], repo))
    metrics = metrics_table(_dvc(["metrics", "diff", base], repo))
    plots = changed_plot_files(repo, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"## VertiFlow pipeline report (against `{base}`)", ""]
    if not (params or metrics or plots):
        lines += [f"No change against `{base}`: params, metrics and plots are identical.", ""]
    if params:
        lines += ["### Params changed", "", *params, ""]
    if metrics:
        lines += ["### Metrics", "", *metrics, ""]
    if gaps := bayes_lines(repo):
        lines += ["### Against the best possible", "", *gaps, ""]
    if plots:
        lines += ["### Plots that changed", ""]
        for path in plots:
            image = out.parent / (Path(path).stem + ".png")
            base_text = (
                subprocess.run(
                    ["git", "show", f"{base}:{path}"], cwd=repo, capture_output=True, text=True
                ).stdout
                or None
            )
            now = repo / path
            draw(path, base_text, now.read_text() if now.exists() else None, image)
            lines += [f"![{path}]({image.name})", ""]
    if links := mlflow_links(repo):
        lines += ["### MLflow runs of this commit", "", *links, ""]
    text = "\n".join(lines)
    out.write_text(text)
    return text
