"""The pull-request report, on a real git repository with real DVC diffs."""

from __future__ import annotations

import re

from vertiflow.testing import commit_all, run, set_params


def test_report_shows_changed_params_signed_metric_deltas_and_plots(small_copy):
    set_params(small_copy, {"train_classifier.hyperparams.max_iter": 5})
    run(["dvc", "repro"], small_copy)
    commit_all(small_copy, "fewer boosting rounds")

    out = run(
        ["vertiflow", "report", "--base", "HEAD~1", "--out", "pr/report.md"], small_copy
    ).stdout
    assert "`train_classifier.hyperparams.max_iter` | 50 | 5 |" in out
    rows = [line for line in out.splitlines() if line.startswith("| `metrics/classifier.json` |")]
    accuracy = next(line for line in rows if "| accuracy |" in line)
    assert re.search(r"\| [+-]\d[\d.e-]* \|$", accuracy), accuracy  # a signed number
    verdict = next(line for line in out.splitlines() if line.startswith("| Classifier |"))
    assert re.search(r"\| [+-]\d", verdict) and "below Bayes" in verdict, verdict
    images = sorted((small_copy / "pr").glob("*.png"))
    assert images and all(p.stat().st_size > 1000 for p in images)
    assert f"]({images[0].name})" in (small_copy / "pr" / "report.md").read_text()


def test_report_says_so_when_nothing_changed(small_copy):
    out = run(["vertiflow", "report", "--base", "HEAD", "--out", "pr/report.md"], small_copy).stdout
    assert "No change against `HEAD`" in out
    assert "Params changed" not in out and "Plots that changed" not in out


def test_report_names_a_bad_base(small_copy):
    proc = run(["vertiflow", "report", "--base", "no-such-branch"], small_copy, check=False)
    assert (
        proc.returncode == 1 and "no-such-branch" in proc.stderr and "Traceback" not in proc.stderr
    )
