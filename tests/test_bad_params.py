"""Bad params values through a real `dvc repro`: one clean line each, nothing lost.

Every stage validates the whole params.yaml (typed, vertiflow.params) before it writes
anything, so the first stage DVC runs after the edit stops, naming the key. The schema
names every bad key at once (a user fixes them in one go), so the cases the schema
catches share one params.yaml; a key bad in two ways, a rule over a whole mapping and
the checks made after the schema (Ultralytics' own) each get a `dvc repro` of their own.
"""

import pytest
import yaml

from vertiflow.testing import run, set_params, tree_digest

DELETE = object()

# (dotted key, bad value, words the error must contain)
# Caught by the schema, all in one params.yaml: one line each, in one error.
TOGETHER = [
    ("simulate.racks", "ten", "a valid integer"),
    ("simulate.yield_noise", -0.1, "greater than or equal to 0"),
    ("simulate.crops.basil", "lots", "a number"),
    ("simulate.dropout_rate", 1.5, "less than 1"),
    ("simulate.cycles_per_module", DELETE, "missing"),
    ("simulate.colour", "green", "unknown"),
    ("prepare.test_fraction", "a fifth", "a number"),
    ("validate.max_glitch_fraction", "1 %", "a number"),
    ("validate.min_test_rows", 0, "greater than or equal to 1"),
    ("validate.max_batches_without_telemetry", 1.5, "less than or equal to 1"),
    ("validate.min_median_fresh_weight_g", -1, "greater than or equal to 0"),
    ("train_oracle.estimator", "xgboost", "'auto', 'hist_gradient_boosting', 'random_forest'"),
    ("train_oracle.seed", DELETE, "missing"),
    ("train_oracle.log_target", "maybe", "a valid boolean"),
    ("train_oracle.features.numeric", "cycle_days", "a valid list"),
    ("train_classifier.features", DELETE, "missing"),
    ("train_classifier.hyperparams.max_depth", [1, 2], "a valid"),
    ("optimise_cortex.optimiser.tol", "tiny", "a number"),
    ("optimise_cortex.min_training_batches", 0, "greater than or equal to 1"),
    ("optimise_cortex.optimiser.strategy", "best1bin", "unknown"),
    ("optimise_cortex.bounds.air_temp", [28, 18], "low < high"),
    ("optimise_cortex.dli_bounds", 10, "a valid tuple"),
    ("optimise_cortex.energy.peak_price", "high", "a number"),
    ("optimise_cortex.prices_mad_per_kg.basil.GOLD", 120, "'PREMIUM', 'STANDARD' or 'REJECT'"),
    ("optimise_cortex.truth_search.popsize", 0, "greater than or equal to 1"),
    ("simulate_images.image_size", 32, "greater than or equal to 64"),
    ("train_yolo.epochs", "many", "a valid integer"),
    ("train_yolo.batch", 0, "greater than or equal to 1"),
    ("register.confidence", 95, "less than 1"),
    ("register.seed", -5, "greater than or equal to 0"),  # evaluate's traceback, at the end
    ("train_yolo.seed", True, "a valid integer"),
    # (not images.dataset=5: DVC itself fails interpolating ${images.dataset} as a path)
    ("images.format", "coco", "unknown"),
]
# Each in a params.yaml of its own: a second value for a key above, a rule over a
# mapping (pydantic skips it while a field is bad), and the checks after the schema.
ALONE = [
    ("prepare.test_fraction", 1.5, "less than 1"),
    ("validate.min_median_fresh_weight_g", {"microgreens": 0.3}, "a 'default' entry"),
    ("train_yolo.hyperparams.lr0", "fast", "lr0"),
    ("train_yolo.hyperparams.not_an_argument", 1, "not_an_argument"),
    ("train_yolo.device", "gpu", "cannot be used on this machine"),  # params from a GPU box
]


def _delete(repo, dotted: str) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    del node[leaf]
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _edit(repo, good: str, cases) -> None:
    (repo / "params.yaml").write_text(good)
    for key, value, _ in cases:
        if value is DELETE:
            _delete(repo, key)
        else:
            set_params(repo, {key: value})


@pytest.mark.reliability
def test_bad_params_fail_clearly_and_keep_outputs(small_copy):
    repo = small_copy
    good = (repo / "params.yaml").read_text()
    kept = tree_digest(repo / "data", repo / "models", repo / "metrics")
    failures = []
    for cases in [TOGETHER, *([case] for case in ALONE)]:
        _edit(repo, good, cases)
        proc = run(["dvc", "repro"], repo, check=False, timeout=300)
        said = proc.stdout + proc.stderr
        lines = said.splitlines()
        for key, value, expected in cases:
            named = any(key in line and expected in line for line in lines)
            if proc.returncode == 0 or "Traceback" in said or not named:
                failures.append(f"{key}={value!r}: exit {proc.returncode}\n{said[-800:]}")
    (repo / "params.yaml").write_text(good)
    assert not failures, "\n\n".join(failures)
    # DVC removes a stage's outputs before running its command, so a failed stage's outputs
    # are gone from the workspace; nothing is lost: the DVC cache holds every cached one
    # and git every uncached one (metrics), byte for byte.
    run(["git", "checkout", "--", "metrics"], repo)
    run(["dvc", "checkout"], repo)
    assert tree_digest(repo / "data", repo / "models", repo / "metrics") == kept


@pytest.mark.reliability
def test_exponent_values_as_dvc_writes_them(small_copy):
    """`-S x=1e-8` lands in params.yaml as `1e-08` (YAML 1.2), a float to the stages."""
    repo = small_copy
    run(
        [
            "dvc", "exp", "run",
            "-S", "optimise_cortex.optimiser.tol=1e-8",
            "-S", "train_yolo.hyperparams.lr0=1e-3",
        ],
        repo,
        timeout=600,
    )  # fmt: skip
    text = (repo / "params.yaml").read_text()
    assert "tol: 1e-08" in text and "lr0: 0.001" in text
