"""The MLflow Model Registry: versions, and champion/challenger promotion by a paired test.

`evaluate` registers each trained model as a new version (tags: its metrics, the DVC
hash of its training data, the git commit) unless its files are the ones a version
already holds (a sweep that returns to earlier params trains the same bytes again): that
version is then judged again instead (or, if it is the champion, left as it is and any
`challenger` alias removed). The version judged takes the alias `challenger`;
it takes `champion` only when it beats the current champion on the *same* held-out rows
by more than the noise: a paired bootstrap of the per-row loss difference whose whole
confidence interval lies above `min_improvement`. The first champion must also pass the
gate: clearly beat the no-skill baseline, and reach any floor in params. This is the
farm's A/B gate; its decision, statistic and interval go to `metrics/registry.json` and
the evaluate run.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from scipy import stats

from vertiflow.lifecycle import tracking

CHAMPION, CHALLENGER = "champion", "challenger"
FLOORS = "the floors in params (register.gates)"
NO_SKILL = "to beat the no-skill baseline (each crop's training mean or grade shares)"
# Registered names: the tabular models by role, the detector by the name the skin app uses.
NAMES = {"oracle": "oracle", "classifier": "classifier", "yolo": "YOLO-SkinDetection"}


@dataclass(frozen=True)
class Comparison:
    """Mean per-row loss reduction of the challenger (positive = better) and its interval."""

    improvement: float
    ci_low: float
    ci_high: float
    confidence: float
    rows: int


@contextmanager
def local_folder(uri: str) -> Iterator[Path]:
    """A model's files on disk while they are read: a `models:/` URI is downloaded to a
    temporary folder removed afterwards, a local folder is itself. (MLflow's own download
    folder is never removed: each load, one per evaluate run and app start, left a copy
    of the model in /tmp.)"""
    if not uri.startswith("models:/"):
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="vertiflow-model-") as tmp:
        yield Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))


def _load_sklearn(uri: str):
    import mlflow.sklearn

    with local_folder(uri) as folder:
        return mlflow.sklearn.load_model(str(folder))


def content_hash(path: Path) -> str:
    """sha256 over a model folder's files (names and bytes): 'same model' across runs."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.relative_to(path).as_posix().encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def paired_bootstrap(
    champion_loss: np.ndarray,
    challenger_loss: np.ndarray,
    samples: int,
    confidence: float,
    seed: int,
) -> Comparison:
    """Bootstrap CI of mean(champion_loss - challenger_loss) over the same rows."""
    diff = np.asarray(champion_loss, float) - np.asarray(challenger_loss, float)
    if np.allclose(diff, diff[0]):  # identical predictions: the interval is a point
        mean = _figure(diff.mean())
        return Comparison(mean, mean, mean, confidence, len(diff))
    result = stats.bootstrap(
        (diff,),
        np.mean,
        n_resamples=samples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Comparison(_figure(diff.mean()), _figure(low), _figure(high), confidence, len(diff))


def _figure(x: float) -> float:
    """Six significant digits: the last ones of a mean loss can differ between runs and
    machines (the order of floating-point sums); rounded, registry.json's hash in dvc.lock
    changes only when a figure sits on a rounding boundary."""
    return float(f"{float(x):.6g}")


def alias_version(client: mlflow.MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def version_with_files(client: mlflow.MlflowClient, name: str, digest: str):
    """The newest version of `name` whose files hash to `digest`, if any."""
    try:
        versions = client.search_model_versions(f"name = '{name}'", max_results=1000)
    except MlflowException:
        return None
    same = [v for v in versions if v.tags.get("content_sha256") == digest]
    return max(same, key=lambda v: int(v.version), default=None)


def register(
    key: str, model_dir: Path, model_type: str, tags: dict[str, str], metrics: dict[str, float]
) -> tuple[Any, bool]:
    """New version of NAMES[key] from `model_dir` unless a version holds the same files:
    (version, is_new)."""
    client = mlflow.MlflowClient()
    name = NAMES[key]
    digest = content_hash(model_dir)
    existing = version_with_files(client, name, digest)
    if existing is not None:
        return existing, False
    model_id = tracking.log_model_dir(model_dir, name, model_type)
    all_tags = {
        **tags,
        "content_sha256": digest,
        **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()},
    }
    version = mlflow.register_model(f"models:/{model_id}", name, tags=all_tags)
    return version, True


def champion_version(key: str):
    return alias_version(mlflow.MlflowClient(), NAMES[key], CHAMPION)


def set_alias(client, name: str, alias: str, version) -> None:
    """Set an alias, tolerating a queue worker that sets the same alias at the same moment:
    the tracking server inserts a new alias after checking it is absent, so two workers
    can both try the insert and the second fails on the table's unique key. Setting it
    again then updates the row the other worker made."""
    for attempt in range(3):
        try:
            client.set_registered_model_alias(name, alias, str(version))
            return
        except MlflowException as exc:
            if "UNIQUE constraint" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))


def _drop_alias(client, name: str, alias: str) -> None:
    """Delete an alias; one another worker deleted first is gone all the same."""
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def reaches(value: float | None, floor: float | None) -> bool:
    """A metric against a floor in register.gates; a floor of None is no floor."""
    return floor is None or (value is not None and value >= floor)


def decide(
    key: str,
    version,
    passes_gate: bool,
    comparison: Comparison | None,
    min_improvement: float,
    gate: str = FLOORS,
) -> dict[str, Any]:
    """Set the aliases for a version just judged and say why; returns the decision record.
    `gate`: what a version that fails the gate failed."""
    client = mlflow.MlflowClient()
    name = NAMES[key]
    champion = alias_version(client, name, CHAMPION)
    record: dict[str, Any] = {
        "name": name,
        "version": int(version.version),
        "previous_champion": int(champion.version) if champion else None,
        "passes_quality_gate": passes_gate,
        "min_improvement": min_improvement,
    }
    if comparison is not None:
        record["comparison"] = asdict(comparison)
    if champion is None:
        promote = passes_gate
        why = (
            "first version to pass the quality gate"
            if passes_gate
            else f"fails {gate}, which a first champion must pass"
        )
    elif comparison is None:
        promote, why = False, "no comparison with the champion was possible"
    elif comparison.ci_low > min_improvement:
        promote, why = True, "beats the champion: the whole interval is above min_improvement"
        if not passes_gate:  # the champion, on these rows, is worse still
            why += f" (it fails {gate}, but the champion is worse on these rows)"
    else:
        promote, why = False, "not better than the champion by more than the noise"
    set_alias(client, name, CHALLENGER, version.version)
    if promote:
        set_alias(client, name, CHAMPION, version.version)
        _drop_alias(client, name, CHALLENGER)
    record.update(
        promoted=promote,
        reason=why,
        champion=int(version.version) if promote else (int(champion.version) if champion else None),
    )
    return record


def _mark_judged_again(name: str, version, tags: dict[str, str]) -> None:
    """A version judged again keeps the tags of the run that registered it; these say
    which run and commit judged it last."""
    run = mlflow.active_run()
    judged = {
        "judged_again_run": run and run.info.run_id,
        "judged_again_commit": tags.get("git_commit"),
    }
    for k, v in judged.items():
        if v:
            mlflow.MlflowClient().set_model_version_tag(name, str(version), k, v)


def register_and_promote(
    key: str,
    model_dir: Path,
    model_type: str,
    metrics: dict[str, float],
    passes_gate: bool,
    loss: Any,
    section: dict[str, Any],
    tags: dict[str, str],
    baseline: np.ndarray | None = None,
) -> dict[str, Any]:
    """Register `model_dir` and run the gate; `loss(uri)` scores a model per held-out row.

    `baseline`: the no-skill losses on the same rows (`evaluation.no_skill_losses`); the
    gate then also needs the model to beat them clearly (the same paired bootstrap).

    A model with the same files as a registered version (the latest, or an earlier one a
    sweep came back to) is not registered again. If that version is the champion, nothing
    changes; otherwise it is judged against the champion on the current test rows as a
    new version would be (data fixed after a bad export brings back the earlier model's
    bytes, and the earlier model should win back the alias).

    The absolute gate (register.gates) decides a first champion. Later, the paired
    comparison on the same rows decides: a version below the gate that clearly beats the
    champion still replaces it (a champion trained on other data, e.g. the built-in farm,
    is worse still), and one that does not beat it never does.
    """
    version, is_new = register(key, model_dir, model_type, tags, metrics)
    champion = champion_version(key)
    if not is_new and champion is not None and int(champion.version) == int(version.version):
        record = {
            "name": NAMES[key],
            "version": int(version.version),
            "unchanged": True,
            "champion": int(champion.version),
            "promoted": False,
            "reason": f"same files as version {version.version}, the champion: nothing registered",
        }
        # The pipeline is back on the champion: a challenger left from an earlier run (one
        # the gate refused) is no candidate any more, and an app shadowing it would keep
        # scoring the refused model.
        client = mlflow.MlflowClient()
        stale = alias_version(client, NAMES[key], CHALLENGER)
        if stale is not None:
            _drop_alias(client, NAMES[key], CHALLENGER)
            record["challenger_dropped"] = int(stale.version)
            record["reason"] += f"; alias challenger (version {stale.version}) removed"
        return record
    own = loss(str(model_dir)) if loss is not None else None

    def against(reference: np.ndarray) -> Comparison:
        n, confidence, seed = (section[k] for k in ("bootstrap_samples", "confidence", "seed"))
        return paired_bootstrap(reference, own, int(n), float(confidence), int(seed))

    gate = FLOORS
    skill = None
    if baseline is not None and own is not None:
        skill = against(baseline)
        if passes_gate and skill.ci_low <= 0:
            passes_gate = False
            gate = NO_SKILL
    comparison = None
    if champion is not None and own is not None:
        comparison = against(loss(f"models:/{NAMES[key]}/{champion.version}"))
    record = decide(
        key, version, passes_gate, comparison, float(section["min_improvement"][key]), gate
    )
    if skill is not None:
        record["over_no_skill"] = asdict(skill)
    if not is_new:
        record["reused"] = True
        record["reason"] = "judged again: " + record["reason"]
        _mark_judged_again(NAMES[key], version.version, tags)
    return record


def register_detector(
    weights: Path,
    metrics: dict[str, float],
    passes_gate: bool,
    loss: Any,
    section: dict[str, Any],
    tags: dict[str, str],
) -> dict[str, Any]:
    """Register detector weights as an MLflow pyfunc model, through the champion gate.

    The pyfunc folder (weights as an artifact, a signature; `vision.pyfunc`) is what
    `mlflow models serve -m models:/YOLO-SkinDetection@champion` loads. `loss` None: no
    held-out images to compare on; the version becomes champion only if it is the first.
    """
    from vertiflow.vision import pyfunc

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = pyfunc.save(weights, Path(tmp) / "yolo")
        record = register_and_promote(
            "yolo", model_dir, "pyfunc", metrics, passes_gate, loss, section, tags
        )
    champion = champion_version("yolo")
    if record["promoted"] or champion is None or int(champion.version) == record["version"]:
        return record
    # A champion registered before the pyfunc format (a bare best.pt) holding these very
    # weights: the new version is the same model, now servable; it takes the alias.
    with local_folder(f"models:/{NAMES['yolo']}/{champion.version}") as folder:
        bare = not (folder / "MLmodel").exists()
        same = bare and pyfunc.weights_in(folder).read_bytes() == Path(weights).read_bytes()
    if same:
        client = mlflow.MlflowClient()
        set_alias(client, NAMES["yolo"], CHAMPION, record["version"])
        if alias_version(client, NAMES["yolo"], CHALLENGER) is not None:
            _drop_alias(client, NAMES["yolo"], CHALLENGER)
        record.update(
            promoted=True,
            champion=record["version"],
            reason="the champion's own weights, now as a pyfunc model (servable)",
        )
    return record


def detector_errors(uri: str, pairs: list[tuple[Path, Path]], yolo_section: dict[str, Any]):
    """Per-image detection error of a registered or local detector (the gate's loss)."""
    from vertiflow.vision import pyfunc, yolo

    with local_folder(uri) as folder:
        return yolo.image_errors(pyfunc.weights_in(folder), pairs, yolo_section)


def _squared_errors(model, test, actual: np.ndarray) -> np.ndarray:
    from vertiflow.tabular.evaluation import squared_errors
    from vertiflow.tabular.modeling import frame

    return squared_errors(model.predict(frame(test, model.feature_names_in_)), actual)


def _log_losses(model, test, actual: list[str]) -> np.ndarray:
    from vertiflow.tabular.evaluation import log_losses, proba_in_grade_order
    from vertiflow.tabular.modeling import frame

    return log_losses(proba_in_grade_order(model, frame(test, model.feature_names_in_)), actual)


def promote_all(
    section: dict[str, Any],
    train,
    test,
    models: Path,
    reports: dict[str, dict[str, Any]],
    yolo_pairs: list[tuple[Path, Path]],
    yolo_section: dict[str, Any],
    tags: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """Register Oracle, Classifier and the detector, each through the champion gate.

    Losses per held-out row: squared error (Oracle), log loss (Classifier), and per
    validation image the detection error 1 - F1 (YOLO; see `yolo.image_errors`). The
    tabular models' gate: beat the no-skill baseline from `train` (register.gates.
    beat_no_skill), and any floor set in register.gates (null: none).
    """
    from vertiflow.tabular.evaluation import no_skill_losses

    gates = section["gates"]
    yield_g = test["fresh_weight_g"].to_numpy()
    grade = test["quality_grade"].to_list()
    o, c, y = reports["oracle"], reports["classifier"], reports["yolo"]
    baselines = no_skill_losses(train, test) if gates["beat_no_skill"] else {}

    def yolo_loss(uri: str) -> np.ndarray:
        return detector_errors(uri, yolo_pairs, yolo_section)

    return {
        "oracle": register_and_promote(
            "oracle",
            models / "oracle",
            "sklearn",
            {k: o[k] for k in ("r2", "mae", "rmse")},
            reaches(o["r2"], gates["oracle_r2"]),
            lambda uri: _squared_errors(_load_sklearn(uri), test, yield_g),
            section,
            tags["oracle"],
            baselines.get("oracle"),
        ),
        "classifier": register_and_promote(
            "classifier",
            models / "classifier",
            "sklearn",
            {k: c[k] for k in ("accuracy", "f1_macro", "roc_auc_ovr", "log_loss")},
            reaches(c["accuracy"], gates["classifier_accuracy"]),
            lambda uri: _log_losses(_load_sklearn(uri), test, grade),
            section,
            tags["classifier"],
            baselines.get("classifier"),
        ),
        "yolo": register_detector(
            models / "yolo" / "best.pt",
            {k: y[k] for k in ("mAP50", "mAP50-95", "precision", "recall", "f1")},
            reaches(y["mAP50"], gates["yolo_map50"]),
            yolo_loss,
            section,
            tags["yolo"],
        ),
    }


def version_tags(
    train_table: str, dataset_dir: str, oracle_dir: str | None = None
) -> dict[str, dict[str, str]]:
    """Tags of each new version: the evaluate run's lineage plus its data version.

    The data version is the md5 DVC recorded for what the model was trained on. A
    classifier that holds the Oracle (`oracle_dir`: train_classifier.oracle_input) also
    names that Oracle's md5 (`oracle_version`): the Oracle's own gate does not judge the
    copy inside the classifier, so a rejected Oracle can travel in a promoted classifier.
    """
    common = {k: v for k, v in tracking.run_tags("evaluate").items() if k != "stage"}
    tabular = str(tracking.dvc_dep_hash("train_oracle", train_table))
    images = str(tracking.dvc_dep_hash("train_yolo", dataset_dir))
    classifier = {**common, "data_version": tabular}
    if oracle_dir is not None:
        classifier["oracle_version"] = str(tracking.dvc_dep_hash("train_classifier", oracle_dir))
    return {
        "oracle": {**common, "data_version": tabular},
        "classifier": classifier,
        "yolo": {**common, "data_version": images},
    }


def decision_metrics(decisions: dict[str, Any]) -> dict[str, float]:
    """The gate's outcome as numbers for the evaluate run: promoted, and the interval."""
    out: dict[str, float] = {f"{k}_promoted": int(d["promoted"]) for k, d in decisions.items()}
    for key, decision in decisions.items():
        if comparison := decision.get("comparison"):
            out[f"{key}_improvement_mean"] = comparison["improvement"]
            out[f"{key}_improvement_ci_low"] = comparison["ci_low"]
            out[f"{key}_improvement_ci_high"] = comparison["ci_high"]
        if skill := decision.get("over_no_skill"):  # the loss it saves over knowing the crop
            out[f"{key}_over_no_skill_ci_low"] = skill["ci_low"]
    return out
