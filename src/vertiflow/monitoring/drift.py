"""Drift monitoring: has the farm moved away from the data the models learned from?

Each feature of a new batch is compared with the training reference by two measures
that answer different questions. PSI (population stability index, over the reference's
deciles) says *how much* the distribution moved, in the unit farm teams already use
(0.1 = worth a look, 0.25 = act). A two-sample test (Kolmogorov-Smirnov for numbers,
chi-squared for categories) says whether the move is *more than sampling noise*; its
p-values are Bonferroni-corrected over the features tested, so a batch from the training
distribution raises no alarm in 95 % or more of batches. A feature is flagged only when
both agree; a rise in missing values is flagged on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from vertiflow.errors import DataError

SEVERITY = ("ok", "warning", "critical")
EPS = 1e-4


@dataclass(frozen=True)
class Thresholds:
    psi_warning: float = 0.1
    psi_critical: float = 0.25
    alpha: float = 0.001  # family-wise, over all features of one check
    missing_increase: float = 0.05  # absolute rise in the share of missing values
    min_rows: int = 30


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:  # (nearly) one value, e.g. every training image 128 px wide: the
        # deciles make one bin and any move scored 0; below it, at it, above it instead
        edges = np.array([edges[0], np.nextafter(edges[-1], np.inf), np.inf])
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)
    return _psi(ref, cur)


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    ref, cur = _count_levels(pl.Series(reference), pl.Series(current))
    return _psi(ref / ref.sum(), cur / cur.sum())


def _count_levels(reference: pl.Series, current: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category over the union of both sides' levels (polars: fast at 1M rows)."""
    ref = dict(reference.cast(pl.String).value_counts().iter_rows())
    cur = dict(current.cast(pl.String).value_counts().iter_rows())
    levels = sorted(set(ref) | set(cur), key=str)
    return np.array([ref.get(v, 0) for v in levels]), np.array([cur.get(v, 0) for v in levels])


def unseen_levels(reference: pl.Series, current: pl.Series, top: int = 5) -> dict[str, int]:
    """Categories of `current` absent from `reference`, with their rows (the `top` most)."""
    seen = set(reference.cast(pl.String).unique().to_list())
    counts = current.cast(pl.String).value_counts(sort=True)
    new = counts.filter(~pl.col(counts.columns[0]).is_in(list(seen)))
    return dict(new.head(top).iter_rows())


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.clip(ref, EPS, None), np.clip(cur, EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _chi2_p(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    if len(ref_counts) < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))[1])


def compare_feature(
    reference: pl.Series, current: pl.Series, alpha: float, t: Thresholds
) -> dict[str, Any]:
    """One feature's drift record: PSI, test p-value, missing-value change, severity."""
    if current.dtype != reference.dtype:  # a logged request that sent text or null (an
        # app's JSON) must not stop the check: read as the reference's type, what cannot be
        # read as missing
        current = current.cast(reference.dtype, strict=False)
    missing_ref = reference.null_count() / max(len(reference), 1)
    missing_cur = current.null_count() / max(len(current), 1)
    numeric = reference.dtype.is_numeric()
    ref, cur = reference.drop_nulls(), current.drop_nulls()
    if len(ref) == 0 or len(cur) == 0:
        return _unmeasured(numeric, len(ref), len(cur), missing_ref, missing_cur)
    if numeric:
        ref, cur = ref.to_numpy(), cur.to_numpy()
        psi, p = psi_numeric(ref, cur), float(stats.ks_2samp(ref, cur).pvalue)
    else:
        ref_counts, cur_counts = _count_levels(ref, cur)
        psi = _psi(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
        p = _chi2_p(ref_counts, cur_counts)
    # a category the models never saw (a new crop): their answers for it are guesses
    unseen = {} if numeric else unseen_levels(ref, cur)
    severity = "ok"
    if p < alpha and psi >= t.psi_critical:
        severity = "critical"
    elif (
        (p < alpha and psi >= t.psi_warning)
        or missing_cur - missing_ref >= t.missing_increase
        or unseen
    ):
        severity = "warning"
    record: dict[str, Any] = {
        "kind": "numeric" if numeric else "categorical",
        "psi": round(psi, 6),
        "p_value": float(f"{p:.6g}"),
        "test": "ks" if numeric else "chi2",
        "missing_reference": round(missing_ref, 6),
        "missing_current": round(missing_cur, 6),
        "severity": severity,
    }
    if unseen:
        record["unseen"] = unseen
    if numeric and len(cur):
        record["mean_reference"] = round(float(ref.mean()), 6)
        record["mean_current"] = round(float(cur.mean()), 6)
    return record


def _unmeasured(
    numeric: bool, ref_values: int, cur_values: int, missing_ref: float, missing_cur: float
) -> dict[str, Any]:
    """A feature with no values on one side: there is nothing to compare. None on either
    side (a farm without that probe; a crop without optima, whose `*_dev` features are
    empty) is no drift. Values gone that the models were trained on is critical. Values
    training never had cannot move the models' answers: reported, not alarmed."""
    if not ref_values and not cur_values:
        severity, note = "ok", "no values on either side"
    elif ref_values:
        severity, note = "critical", "no values now; the models were trained on them"
    else:
        severity, note = "ok", "no values in training, so none the models use"
    return {
        "kind": "numeric" if numeric else "categorical",
        "psi": None,
        "p_value": None,
        "test": None,
        "missing_reference": round(missing_ref, 6),
        "missing_current": round(missing_cur, 6),
        "severity": severity,
        "note": note,
    }


def require_columns(current: pl.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in current.columns]
    if missing:
        raise DataError(
            f"the batch to monitor lacks column(s) {', '.join(missing)} that the models use."
        )


def detect(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], t: Thresholds
) -> dict[str, Any]:
    """Compare `current` with `reference` on `columns`; the monitor's whole report."""
    require_columns(current, columns)
    pairs = {c: (reference[c], current[c]) for c in columns}
    return detect_pairs(pairs, reference.height, current.height, t)


def detect_pairs(
    pairs: dict[str, tuple[pl.Series, pl.Series]],
    rows_reference: int,
    rows_current: int,
    t: Thresholds,
) -> dict[str, Any]:
    """The report over (reference, current) series per feature, which may differ in length
    (image features per image, the class mix per detected box)."""
    if rows_current < t.min_rows:
        raise DataError(
            f"the batch to monitor has {rows_current} rows; at least {t.min_rows} are needed "
            "for a meaningful comparison (monitor.min_rows)."
        )
    alpha = t.alpha / max(len(pairs), 1)  # Bonferroni: the family-wise false-alarm rate
    features = {name: compare_feature(ref, cur, alpha, t) for name, (ref, cur) in pairs.items()}
    worst = max((SEVERITY.index(f["severity"]) for f in features.values()), default=0)
    return {
        "severity": SEVERITY[worst],
        "drifted": sorted(c for c, f in features.items() if f["severity"] != "ok"),
        "rows_reference": rows_reference,
        "rows_current": rows_current,
        "alpha_per_feature": alpha,
        "features": features,
    }
