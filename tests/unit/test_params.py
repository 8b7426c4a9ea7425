"""Typed params: YAML 1.2 as DVC writes it, one line per bad key, no silent no-ops."""

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from vertiflow import params
from vertiflow.errors import VertiflowError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, edit) -> Path:
    data = YAML(typ="safe").load((REPO / "params.yaml").read_text())
    edit(data)
    path = tmp_path / "params.yaml"
    with path.open("w") as f:
        YAML().dump(data, f)
    return path


def test_the_shipped_params_load():
    assert params.load(REPO / "params.yaml")["train_yolo"]["epochs"] >= 1


def test_an_exponent_without_a_dot_is_a_float(tmp_path):
    path = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    path.write_text(text.replace("tol: 1.0e-6", "tol: 1e-08"))
    assert params.load(path)["optimise_cortex"]["optimiser"]["tol"] == 1e-8


def test_a_bad_value_names_key_expectation_and_value(tmp_path):
    path = _write(tmp_path, lambda d: d["simulate"].update(racks="ten"))
    with pytest.raises(VertiflowError, match=r"simulate\.racks: expected .*integer.*found 'ten'"):
        params.load(path)


def test_hyperparams_with_an_automatic_estimator_are_refused(tmp_path):
    """They would be ignored: a sweep over them would compare identical models."""

    def edit(d):
        d["train_classifier"].update(estimator="auto", hyperparams={"max_iter": 5})

    with pytest.raises(VertiflowError, match="train_classifier: expected a fixed estimator"):
        params.load(_write(tmp_path, edit))


def test_a_candidate_may_not_take_the_blends_name(tmp_path):
    def edit(d):
        d["train_oracle"]["selection"]["candidates"]["blend"] = {"estimator": "spline_ridge"}

    with pytest.raises(
        VertiflowError, match=r"train_oracle\.selection: .*'blend' names the search"
    ):
        params.load(_write(tmp_path, edit))


def test_a_price_list_without_every_grade_is_refused(tmp_path):
    """REJECT: 0 left out was a KeyError inside Cortex."""

    def edit(d):
        d["optimise_cortex"]["prices_mad_per_kg"]["basil"] = {"PREMIUM": 90, "STANDARD": 60}

    with pytest.raises(VertiflowError, match=r"prices_mad_per_kg\.basil has no price for REJECT"):
        params.load(_write(tmp_path, edit))


def test_a_search_with_no_candidates_is_refused(tmp_path):
    def edit(d):
        d["train_oracle"]["selection"]["candidates"] = {}

    with pytest.raises(VertiflowError, match=r"train_oracle\.selection\.candidates"):
        params.load(_write(tmp_path, edit))


SEEDED = [
    "simulate",
    "simulate_images",
    "train_oracle",
    "train_classifier",
    "optimise_cortex",
    "train_yolo",
    "register",
]


@pytest.mark.parametrize("section", SEEDED)
@pytest.mark.parametrize("seed", [-1, 2**32, True, 4.0])
def test_a_seed_numpy_scikit_learn_or_ultralytics_would_refuse_is_refused(tmp_path, section, seed):
    """A negative seed loaded, then ended in a traceback deep in a stage (evaluate's, after
    every model was trained) or blamed another key (train_yolo)."""
    path = _write(tmp_path, lambda d: d[section].update(seed=seed))
    with pytest.raises(VertiflowError, match=rf"{section}\.seed: expected"):
        params.load(path)


def test_the_largest_seed_every_library_takes_loads(tmp_path):
    path = _write(tmp_path, lambda d: d["register"].update(seed=2**32 - 1))
    assert params.load(path)["register"]["seed"] == 2**32 - 1


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda d: d["monitor"].update(psi_warning=0.25, psi_critical=0.1),
            r"monitor: expected psi_critical \(0.1\) at or above psi_warning \(0.25\)",
        ),
        (
            lambda d: d["prepare"]["crop_optima"]["basil"].update(air_temp=42.0),
            r"crop_optima\.basil: expected air_temp 42.0 inside its temp_band",
        ),
        (
            lambda d: d["prepare"]["crop_optima"]["lettuce"].update(humidity=95),
            r"crop_optima\.lettuce: expected humidity 95 inside its humidity_band",
        ),
    ],
    ids=["critical below warning", "temperature optimum outside its band", "humidity too"],
)
def test_levels_that_contradict_each_other_are_refused(tmp_path, edit, named):
    """Each loaded: the monitor then failed the scheduled job on drift its report called a
    warning; an optimum outside its band (42 for 24) made the *_dev features disagree
    with the hours outside the band about what is good."""
    with pytest.raises(VertiflowError, match=named):
        params.load(_write(tmp_path, edit))
