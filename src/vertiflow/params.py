"""`params.yaml`, typed: one pydantic model per section, the only home of every default.

DVC writes `-S` values with a YAML 1.2 library (`1e-08`, no dot), so the file is read with
ruamel.yaml, DVC's own parser; PyYAML would read such a value as a string. A bad value,
a missing key or an unknown key fails with one line naming the key, what was expected and
what was found, before any output is touched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from ruamel.yaml import YAML, YAMLError

from vertiflow.errors import VertiflowError

Number = int | float  # ints stay ints: params echo into outputs byte for byte
Positive = Annotated[Number, Field(gt=0)]
NonNegative = Annotated[Number, Field(ge=0)]
Share = Annotated[Number, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=1)]
# What numpy, scikit-learn and Ultralytics all accept: a negative or larger seed (or `true`)
# otherwise fails deep inside a stage, for evaluate after every model was trained.
Seed = Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)]


def _ordered(pair: tuple[Number, Number]) -> tuple[Number, Number]:
    if pair[0] >= pair[1]:
        raise ValueError(f"[low, high] with low < high, not {list(pair)}")
    return pair


Range = Annotated[tuple[Number, Number], AfterValidator(_ordered)]
Scalar = int | float | str | bool | None


class Section(BaseModel):
    """Strict enough to catch typos (unknown keys) and strings where numbers belong."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Simulate(Section):
    seed: Seed
    crops: dict[str, Share]
    racks: Count
    modules_per_rack: Count
    cycles_per_module: Count
    interval_minutes: Annotated[int, Field(ge=1, le=1440)]
    start_date: str
    module_area_m2: Positive
    yield_noise: Annotated[float, Field(ge=0, le=1)]
    dropout_rate: Annotated[float, Field(ge=0, lt=1)]
    spike_rate: Annotated[float, Field(ge=0, lt=1)]


class CropOptimum(Section):
    air_temp: Number
    humidity: Annotated[Number, Field(ge=0, le=100)]
    ec: NonNegative
    ph: Annotated[Number, Field(ge=0, le=14)]
    temp_band: Range
    humidity_band: Range

    @model_validator(mode="after")
    def _optimum_inside_its_band(self) -> CropOptimum:
        """An optimum outside its own comfort band (a typo: 42 for 24) makes the *_dev
        features and the hours outside the band disagree about what is good."""
        for value, band in (("air_temp", "temp_band"), ("humidity", "humidity_band")):
            low, high = getattr(self, band)
            if not low <= getattr(self, value) <= high:
                raise ValueError(
                    f"{value} {getattr(self, value)} inside its {band} [{low}, {high}]"
                )
        return self


class Prepare(Section):
    raw_dir: str
    test_fraction: Annotated[float, Field(gt=0, lt=1)]
    crop_optima: dict[str, CropOptimum] = {}  # crops not listed keep absolute *_dev values


def _bar_per_crop(value: Any) -> Any:
    """One number is every crop's bar: the `default` of a per-crop mapping."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"default": value}
    if not isinstance(value, dict):
        raise ValueError("a number of grams, or a mapping crop -> grams with a 'default'")
    return value


def _has_default(bars: dict[str, float]) -> dict[str, float]:
    """Per crop, a crop left out would have no kilogram check at all."""
    if "default" not in bars:
        raise ValueError(
            "a 'default' entry for the crops not named, e.g. "
            f"{{default: 1.0, {next(iter(bars), 'microgreens')}: 0.3}}"
        )
    return bars


class Validate(Section):
    max_glitch_fraction: Share
    max_dropout_fraction: Share
    min_train_rows: Count
    min_test_rows: Count
    max_batches_without_telemetry: Share
    # one bar for every crop, or per crop with a `default` (microgreens weigh under 1 g)
    min_median_fresh_weight_g: Annotated[
        dict[str, NonNegative], BeforeValidator(_bar_per_crop), AfterValidator(_has_default)
    ]


class Features(Section):
    categorical: list[str]
    numeric: list[str]


Estimator = Literal[
    "hist_gradient_boosting",
    "random_forest",
    "gaussian_process",
    "spline_ridge",
    "spline_logistic",
    "spline_ordinal",
    "ordinal_boosting",
]


class Candidate(Section):
    estimator: Estimator
    hyperparams: dict[str, Scalar] = {}
    max_rows: Count | None = None  # tried only on farms with at most this many training rows
    numeric: list[str] | None = None  # its own numeric inputs (default: the section's)


class Selection(Section):
    folds: Annotated[int, Field(ge=2, le=10)]  # time-ordered CV folds (expanding window)
    blend: bool  # also try the weighted mean of the best two candidates
    candidates: Annotated[dict[str, Candidate], Field(min_length=1)]

    @model_validator(mode="after")
    def _blend_is_the_searchs_name(self) -> Selection:
        if "blend" in self.candidates:
            raise ValueError(
                "'blend' names the search's mean of its best two candidates: "
                "give this candidate another name"
            )
        return self


class Train(Section):
    estimator: Literal["auto", Estimator]  # auto: chosen by CV among selection.candidates
    seed: Seed
    features: Features
    hyperparams: dict[str, Scalar] = {}  # for a fixed estimator
    selection: Selection

    @model_validator(mode="after")
    def _hyperparams_need_an_estimator(self) -> Train:
        """`-S train_*.hyperparams.x=...` with `estimator: auto` would change nothing."""
        if self.estimator == "auto" and self.hyperparams:
            raise ValueError(
                f"a fixed estimator for hyperparams {sorted(self.hyperparams)} (estimator is "
                "auto: set it, e.g. -S <section>.estimator=hist_gradient_boosting, or tune "
                "selection.candidates.<name>.hyperparams)"
            )
        return self


class TrainOracle(Train):
    log_target: bool


class TrainClassifier(Train):
    oracle_input: bool  # the Oracle's predicted yield as an input too (tabular.stacking)


class Energy(Section):
    peak_price: NonNegative
    offpeak_price: NonNegative
    peak_start: Annotated[int, Field(ge=0, le=24)]
    peak_end: Annotated[int, Field(ge=0, le=24)]
    led_efficacy_umol_per_j: Positive
    hvac_cop: Positive
    envelope_w_per_m2_k: NonNegative
    ambient_temp_c: Number


class Optimiser(Section):
    maxiter: Count
    popsize: Count
    tol: Annotated[float, Field(gt=0)]
    smoothing_samples: Annotated[int, Field(ge=0)]
    smoothing_scale: NonNegative


class TruthSearch(Section):
    popsize: Count
    maxiter: Count


class Trust(Section):
    ensemble: Annotated[int, Field(ge=1, le=50)]  # the models + bootstrap refits
    kappa: NonNegative  # margin lower bound: mean - kappa x std over the ensemble
    interval: Annotated[float, Field(gt=0, lt=1)]  # reported interval of the margin
    radius_quantile: Share  # trust radius: this quantile of grown recipes' NN distances
    penalty: NonNegative  # MAD/m2/day per unit of distance beyond the radius


class OptimiseCortex(Section):
    seed: Seed
    crops: Literal["all"] | list[str]  # all: every crop in the training data
    min_training_batches: Count  # fewer: no recipe for the crop (all) or an error (a list)
    bounds: dict[Literal["air_temp", "humidity", "co2", "ppfd", "photoperiod", "ec"], Range]
    dli_bounds: Range
    training_quantiles: Range
    prices_mad_per_kg: dict[str, dict[Literal["PREMIUM", "STANDARD", "REJECT"], NonNegative]]
    plants_per_m2: dict[str, Positive]
    energy: Energy
    co2_price_mad_per_kg: NonNegative
    co2_kg_per_m2_day_per_100ppm: NonNegative
    nutrient_cost_mad_per_m2_day_per_ec: NonNegative
    optimiser: Optimiser
    trust: Trust
    truth_search: TruthSearch

    @model_validator(mode="after")
    def _every_grade_has_a_price(self) -> OptimiseCortex:
        """A grade left out (REJECT: 0 feels implicit) would be a KeyError in Cortex."""
        for crop, prices in self.prices_mad_per_kg.items():
            missing = [g for g in ("PREMIUM", "STANDARD", "REJECT") if g not in prices]
            if missing:
                raise ValueError(
                    f"prices_mad_per_kg.{crop} has no price for {', '.join(missing)}; give "
                    "every grade a price (0 for a grade that does not sell)"
                )
        return self


class SimulateImages(Section):
    seed: Seed
    classes: list[str]
    train_images: Count
    val_images: Count
    image_size: Annotated[int, Field(ge=64)]
    max_objects: Count


class Images(Section):
    dataset: str


class TrainYolo(Section):
    model: str
    epochs: Count
    image_size: Annotated[int, Field(ge=32)]
    batch: Count
    seed: Seed
    device: str | int
    workers: Annotated[int, Field(ge=0)]
    hyperparams: dict[str, Scalar] = {}


class MinImprovement(Section):
    oracle: float
    classifier: float
    yolo: float


class Gates(Section):  # what a first champion must reach; a floor of None: no floor
    beat_no_skill: bool
    oracle_r2: float | None
    classifier_accuracy: Share | None
    yolo_map50: Share | None


class Register(Section):
    bootstrap_samples: Annotated[int, Field(ge=100)]
    confidence: Annotated[float, Field(gt=0, lt=1)]
    seed: Seed
    min_improvement: MinImprovement
    gates: Gates


class Monitor(Section):
    psi_warning: Positive
    psi_critical: Positive
    alpha: Annotated[float, Field(gt=0, lt=1)]
    missing_increase: Share
    min_rows: Count

    @model_validator(mode="after")
    def _critical_above_warning(self) -> Monitor:
        """A critical level below the warning one would fail the scheduled job on drift
        the report calls a warning."""
        if self.psi_critical < self.psi_warning:
            raise ValueError(
                f"psi_critical ({self.psi_critical}) at or above psi_warning ({self.psi_warning})"
            )
        return self


class Params(Section):
    simulate: Simulate
    prepare: Prepare
    validate_: Validate = Field(alias="validate")
    train_oracle: TrainOracle
    train_classifier: TrainClassifier
    optimise_cortex: OptimiseCortex
    simulate_images: SimulateImages
    images: Images
    train_yolo: TrainYolo
    register_: Register = Field(alias="register")
    monitor: Monitor

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_UNION_TAGS = {"int", "float", "str", "bool", "none", "list[str]"}  # pydantic's union members


def _key(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith(("function-", "tuple[", "["))]
    return ".".join(p.rstrip("_") for p in parts if p not in _UNION_TAGS)


def _describe(path: Path, err: ValidationError) -> VertiflowError:
    """One line per bad key: the key, what was expected, what was found."""
    found: dict[str, tuple[list[str], Any]] = {}
    for e in err.errors(include_url=False):
        key = _key(e["loc"])
        if e["type"] == "missing":
            expected = "a value (the key is missing; every key of the section is required)"
        elif e["type"] == "extra_forbidden":
            expected = "no such key (unknown: check its spelling)"
        else:
            expected = e["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        wanted, _ = found.setdefault(key, ([], None if e["type"] == "missing" else e["input"]))
        if expected not in wanted:
            wanted.append(expected)
    lines = []
    for key, (wanted, value) in found.items():
        if len(wanted) > 1 and all("valid integer" in w or "valid number" in w for w in wanted):
            wanted = ["a number"]
        shown = "nothing" if value is None else repr(value)
        if isinstance(value, dict):  # a rule over a mapping (a section): name its keys
            shown = f"a mapping of {', '.join(map(str, value)) or 'no keys'}"
        lines.append(f"{path}: {key}: expected {' or '.join(wanted)}; found {shown}")
    return VertiflowError("\n".join(lines))


def read_yaml(path: Path) -> Any:
    """YAML 1.2 as DVC writes it (`1e-08` is a float), plain Python types."""
    try:
        return YAML(typ="safe", pure=False).load(path.read_text())
    except FileNotFoundError:
        raise VertiflowError(f"{path}: not found; run stages from the repository root.") from None
    except YAMLError as exc:
        raise VertiflowError(f"{path}: not valid YAML: {exc}") from None


def load_typed(path: Path = Path("params.yaml")) -> Params:
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise VertiflowError(f"{path}: expected a mapping of sections, got {type(raw).__name__}.")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise _describe(path, err) from None


def load(path: Path = Path("params.yaml")) -> dict[str, Any]:
    """Every section, validated, as plain dicts (the form MLflow and `-S` names use)."""
    return load_typed(path).model_dump(mode="json", by_alias=True)


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return params[name]
    except KeyError:
        raise VertiflowError(f"params.yaml: section '{name}' is missing.") from None


def by_crop(entries: dict[str, Any], crop: str, default: Any = None) -> Any:
    """A crop's entry in params (optima, prices, plants): its exact name first, else the
    one name that differs only in case or padding (`Basil` in the data, `basil` here)."""
    if crop in entries:
        return entries[crop]
    same = [v for k, v in entries.items() if k.strip().casefold() == crop.strip().casefold()]
    return same[0] if len(same) == 1 else default


def key_part(name: Any) -> str:
    """A name from the data or params (a crop: `Roquette (Eruca sativa)`) as part of an
    MLflow key or a file name: characters MLflow refuses, and `/` and `:`, become `_`."""
    return re.sub(r"[^\w.\- ]", "_", str(name))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the dotted names `dvc exp run -S` and MLflow use."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key_part(key)}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
