"""Train and evaluate the YOLO detector with Ultralytics, offline and hermetic.

Hermetic means: Ultralytics' settings live in the checkout's ignored `.ultralytics/`
(not the home folder), its own MLflow/DVCLive/hub callbacks are off (our stage run is the
only MLflow run), nothing is downloaded (a model YAML trains from scratch; a weights file
must be local; `amp=False` skips the AMP check's weights download; our plots need no
font), and its run folder is a temporary directory: only declared outs stay.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from vertiflow import runtime
from vertiflow.errors import VertiflowError
from vertiflow.vision import yolo_data
from vertiflow.vision.labels import box_iou, true_boxes

# Integrations Ultralytics would switch on by itself when their packages are installed.
_INTEGRATIONS_OFF = {
    "sync": False,
    "hub": False,
    "mlflow": False,
    "dvc": False,
    "clearml": False,
    "comet": False,
    "neptune": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
}


def ultralytics():
    """Import Ultralytics configured (runtime.configure) with its integrations off.

    The switches change its settings in memory only (dict.update bypasses the settings
    file's save), so no settings file, ours or a user's, is rewritten.
    """
    runtime.configure()
    import ultralytics as ul
    from ultralytics.utils import SETTINGS

    dict.update(SETTINGS, {k: v for k, v in _INTEGRATIONS_OFF.items() if k in SETTINGS})
    return ul


def resolve_device(device: str) -> str:
    """`train_yolo.device` as Ultralytics takes it ("auto": the first GPU if there is one),
    checked against this machine: params copied from a GPU box name a device this one
    lacks, which Ultralytics reports with a traceback from inside training."""
    import torch

    if device == "auto":
        return "0" if torch.cuda.is_available() else "cpu"
    if device != "cpu":
        ultralytics()
        from ultralytics.utils.torch_utils import select_device

        try:
            select_device(device, verbose=False)
        except ValueError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise VertiflowError(
                f"params.yaml: train_yolo.device: {device!r} cannot be used on this machine "
                f"({reason}). Use 'cpu', or 'auto' for the first GPU when there is one."
            ) from None
    return device


def load_model(source: str):
    """A model YAML name (architecture, random weights) or a local .pt file; never a download."""
    ul = ultralytics()
    if source.endswith((".yaml", ".yml")):
        try:
            return ul.YOLO(source)
        except FileNotFoundError:
            raise VertiflowError(
                f"params.yaml: train_yolo.model {source!r} is not a model YAML Ultralytics knows "
                "(e.g. yolo11n.yaml) nor a local file."
            ) from None
    if not Path(source).is_file():
        raise VertiflowError(
            f"params.yaml: train_yolo.model {source!r}: local weights file not found (weights are "
            "never downloaded; DVC-track the file and name its path)."
        )
    return ul.YOLO(source)


def _metric_name(key: str) -> str:
    return key.replace("(B)", "").replace("metrics/", "").replace("/", "_")


def _local_fonts() -> None:
    """Give Ultralytics a font in its config folder, so its font check never goes online.

    Every dataset check calls `check_font("Arial.ttf")`, which looks in the config folder,
    then asks the internet. matplotlib ships DejaVu Sans; that is the font we give it.
    """
    from matplotlib import get_data_path
    from ultralytics.utils import USER_CONFIG_DIR as folder  # YOLO_CONFIG_DIR/Ultralytics

    source = Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (folder / name).exists():
            shutil.copyfile(source, folder / name)


def train_args(section: dict[str, Any], data_yaml: Path, workdir: Path) -> dict[str, Any]:
    """Ultralytics' train arguments from the params section (ours win over hyperparams)."""
    return {
        "deterministic": True,
        **(section.get("hyperparams") or {}),
        "data": str(data_yaml),
        "epochs": int(section["epochs"]),
        "imgsz": int(section["image_size"]),
        "batch": int(section["batch"]),
        "seed": int(section["seed"]),  # Ultralytics seeds random, numpy and torch with it
        "device": resolve_device(str(section["device"])),
        "workers": int(section["workers"]),
        "amp": False,
        "plots": False,
        "project": str(workdir),
        "name": "train",
        "exist_ok": True,
        "verbose": False,
    }


def check_args(section: dict[str, Any]) -> None:
    """Ultralytics' own argument checks, run before anything is trained or written.

    Unknown keys (SyntaxError there) and values of the wrong type or range (TypeError,
    ValueError) become one clean line naming the params key.
    """
    ultralytics()
    from ultralytics.cfg import get_cfg

    resolve_device(str(section["device"]))

    def problem(overrides: dict[str, Any]) -> str | None:
        try:
            get_cfg(overrides=train_args(overrides, Path("data.yaml"), Path(".")))
        except (SyntaxError, TypeError, ValueError) as exc:
            return " ".join(str(exc).split())
        return None

    if (message := problem(section)) is None:
        return
    for key, value in (section.get("hyperparams") or {}).items():  # name the culprit
        if (single := problem({**section, "hyperparams": {key: value}})) is not None:
            raise VertiflowError(f"params.yaml: train_yolo.hyperparams.{key}: {single}")
    raise VertiflowError(f"params.yaml: train_yolo: {message}")


def train(
    data_yaml: Path,
    section: dict[str, Any],
    workdir: Path,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
):
    """Train in `workdir`; returns (best weights, final validation metrics, training table)."""
    _local_fonts()
    model = load_model(str(section["model"]))
    if on_epoch is not None:

        def log_epoch(trainer) -> None:
            values = {
                **trainer.label_loss_items(trainer.tloss, prefix="train"),
                **trainer.metrics,
            }
            on_epoch(trainer.epoch + 1, {_metric_name(k): float(v) for k, v in values.items()})

        model.add_callback("on_fit_epoch_end", log_epoch)
    try:
        model.train(**train_args(section, data_yaml, workdir))
    except SyntaxError as exc:  # Ultralytics' way of saying "unknown argument"
        raise VertiflowError(f"params.yaml: train_yolo.hyperparams: {exc}") from None
    run_dir = workdir / "train"
    table = pd.read_csv(run_dir / "results.csv")
    table = table.drop(columns=["time"]).rename(columns=_metric_name)
    return run_dir / "weights" / "best.pt", model.trainer.validator.metrics, table


def report(metrics) -> tuple[dict[str, Any], pd.DataFrame]:
    """metrics/yolo.json's content and the PR curve (IoU 0.5) from Ultralytics' metrics."""
    box = metrics.box
    names = metrics.names
    per_class = {
        names[int(c)]: {
            "precision": round(float(box.p[i]), 6),
            "recall": round(float(box.r[i]), 6),
            "mAP50": round(float(box.ap50[i]), 6),
            "mAP50-95": round(float(box.ap[i]), 6),
        }
        for i, c in enumerate(metrics.ap_class_index)
    }
    precision, recall = float(box.mp), float(box.mr)
    summary = {
        "mAP50": round(float(box.map50), 6),
        "mAP50-95": round(float(box.map), 6),
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(2 * precision * recall / (precision + recall), 6)
        if precision + recall
        else 0.0,
        "per_class": per_class,
    }
    recall_grid, precision_curves = box.curves_results[0][:2]
    every = max(1, len(recall_grid) // 100)
    curve = pd.DataFrame({"recall": np.round(recall_grid[::every], 4)})
    curve["precision"] = np.round(np.asarray(precision_curves).mean(axis=0)[::every], 4)
    for i, c in enumerate(metrics.ap_class_index):
        curve[names[int(c)]] = np.round(np.asarray(precision_curves)[i][::every], 4)
    return summary, curve


def score_test_split(
    weights: Path, data_yaml: Path, section: dict[str, Any], workdir: Path, images: int
) -> dict[str, Any]:
    """The detector's figures on the test split, by Ultralytics' own `model.val(split=
    'test')` at the training's image size: the held-out figures. The val figures are
    optimistic, val being the split `best.pt` was chosen on; test took no part in training.
    """
    model = load_model(str(weights))
    metrics = model.val(
        data=str(data_yaml),
        split="test",
        imgsz=int(section["image_size"]),
        batch=int(section["batch"]),
        device=resolve_device(str(section["device"])),
        workers=int(section["workers"]),
        plots=False,
        project=str(workdir),
        name="test",
        exist_ok=True,
        verbose=False,
    )
    summary, _ = report(metrics)
    keys = ("mAP50", "mAP50-95", "precision", "recall", "f1")
    scored = {"test_images": images, **{f"test_{k}": summary[k] for k in keys}}
    # per class too: a rare class can fail on held-out photos while the mean holds
    return {**scored, "test_per_class": summary["per_class"]}


def with_test(
    report: dict[str, Any],
    dataset: yolo_data.Dataset,
    weights: Path,
    data_yaml: Path,
    section: dict[str, Any],
    workdir: str | Path,
) -> tuple[dict[str, Any], str | None]:
    """The report with the test figures next to val's (the headline figures first, then
    `per_class` and `test_per_class`), and what to tell the user when there is no test
    split: `test_images: 0`, and no figure invented."""
    if "test" in dataset.pairs:
        tested = len(dataset.pairs["test"])
        held_out, note = score_test_split(weights, data_yaml, section, Path(workdir), tested), None
    else:
        held_out = {"test_images": 0}
        note = (
            f"{dataset.no_test}: the figures are on val, the split best.pt was chosen on "
            "(optimistic); there is no held-out figure."
        )
    headline = {k: v for k, v in {**report, **held_out}.items() if not isinstance(v, dict)}
    per_class = {k: v for k, v in {**report, **held_out}.items() if isinstance(v, dict)}
    return {**headline, **per_class}, note


SCRATCH_PREFIX = "vertiflow-yolo-"


def scratch_dir() -> tempfile.TemporaryDirectory:
    """A temporary folder for one training (the staged dataset, Ultralytics' run folder),
    named after this process. A killed training cannot remove its own (SIGKILL skips all
    cleanup), so those of processes no longer alive are removed first."""
    for stale in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = stale.name.removeprefix(SCRATCH_PREFIX).split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")


def write_outputs(
    metrics_dir: Path, report: dict[str, Any], table: pd.DataFrame, pr_curve: pd.DataFrame
) -> Path:
    """metrics/yolo.json and the plot tables (per-epoch metrics, PR curve); returns the
    plots folder, emptied first so that it holds this training's files only."""
    from vertiflow.stage import write_csv, write_json

    write_json(metrics_dir / "yolo.json", report)
    plots = metrics_dir / "yolo_plots"
    shutil.rmtree(plots, ignore_errors=True)
    write_csv(plots / "training.csv", table)
    write_csv(plots / "pr_curve.csv", pr_curve)
    return plots


def _replace_present(args: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    return {k: values.get(k, v) for k, v in args.items()}


def save_weights(best: Path, out: Path, data_yaml: str) -> None:
    """Write `out/best.pt` without what differs between identical trainings.

    Ultralytics stamps a checkpoint with the date, the checkout's git state and path, its
    temporary run folder and per-epoch wall times. Without them the same params and data
    give a byte-identical file on the CPU, so dvc.lock's hash of models/yolo changes only
    when the model does. `out` is replaced only once the new file is complete (a failed
    run keeps the old weights).
    """
    import torch

    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    ckpt["date"] = None
    ckpt["git"] = None
    where = {"data": data_yaml, "project": None, "save_dir": None}  # not the temporary copy
    ckpt["train_args"] = _replace_present(ckpt["train_args"], where)
    if isinstance(getattr(ckpt["model"], "args", None), dict):
        ckpt["model"].args = _replace_present(ckpt["model"].args, where)
    ckpt["train_results"] = {k: v for k, v in ckpt["train_results"].items() if k != "time"}
    staging = out.with_name(f".{out.name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    torch.save(ckpt, staging / "best.pt")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def sample_predictions(
    weights: Path, pairs: list[tuple[Path, Path]], section: dict[str, Any], out: Path, count=8
):
    """A grid of the first `count` (image, label) pairs' images with the model's boxes:
    what a reviewer looks at first."""
    import cv2

    model = load_model(str(weights))
    results = model.predict(
        [str(image) for image, _ in pairs[:count]],
        imgsz=int(section["image_size"]),
        device=resolve_device(str(section["device"])),
        conf=0.25,
        verbose=False,
    )
    tiles = [cv2.resize(r.plot(line_width=1, font_size=8), (256, 256)) for r in results]
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(out), np.vstack(rows))


def image_errors(
    weights: Path, pairs: list[tuple[Path, Path]], section: dict[str, Any], conf: float = 0.25
) -> np.ndarray:
    """Per-image detection error, 1 - F1 at IoU 0.5 (same class): the paired-test loss.

    mAP is a whole-set statistic; comparing two detectors image by image needs a loss per
    image, and the F1 error of the boxes a user would see (confidence >= 0.25) is one.
    """
    model = load_model(str(weights))
    errors = []
    for (_image, label), result in zip(
        pairs,
        model.predict(
            [str(p) for p, _ in pairs],
            imgsz=int(section["image_size"]),
            device=resolve_device(str(section["device"])),
            conf=conf,
            verbose=False,
            stream=True,
        ),
        strict=True,
    ):
        h, w = result.orig_shape
        rows = true_boxes(label)  # as trained: none, outlines, rounding
        truth_cls = rows[:, 0].astype(int)
        centre, size = rows[:, 1:3] * [w, h], rows[:, 3:5] * [w, h]
        truth = np.hstack([centre - size / 2, centre + size / 2])
        pred = result.boxes.xyxy.cpu().numpy()
        pred_cls = result.boxes.cls.cpu().numpy().astype(int)
        tp = 0
        if len(pred) and len(truth):
            iou = box_iou(pred, truth) * (pred_cls[:, None] == truth_cls[None, :])
            for i in np.argsort(-result.boxes.conf.cpu().numpy()):  # greedy, best first
                j = int(np.argmax(iou[i]))
                if iou[i, j] >= 0.5:
                    iou[:, j] = 0  # each true box matches once
                    tp += 1
        fp, fn = len(pred) - tp, len(truth) - tp
        errors.append(0.0 if tp + fp + fn == 0 else 1 - 2 * tp / (2 * tp + fp + fn))
    return np.asarray(errors)
