"""prepare + validate (+ train_oracle) on 1M, 10M and 30M telemetry rows: time and memory.

Data generation is not counted. Each stage runs as the pipeline runs it (`python
stages/<stage>.py`, MLflow logging included). The baseline is what a farm team would
otherwise write: pandas reads the whole telemetry file and groups it, with no checks.
Targets (2 cores): 10M rows in under 20 s and under 2 GB peak; time growing linearly with
rows and memory without a step.
"""

from __future__ import annotations

import shutil
import sys

import yaml

from common import REPO, WORK, measure, write
from vertiflow.farm.simulator import SimConfig, write_farm

NAIVE = """
import sys, pandas as pd
t = pd.read_parquet(sys.argv[1])
t = t.drop(columns=["module_id", "timestamp"])
t.groupby("batch_id").agg(["mean", "std"]).to_parquet(sys.argv[2])
"""

CORE = """
import json, sys, time
from pathlib import Path
from vertiflow.data import dataset, rawdata, validation
start = time.perf_counter()
prepared = dataset.build(rawdata.load(Path(sys.argv[1])), 0.2)
budgets = validation.Budgets(0.01, 0.05, 1, 1, 0.05, 1.0)
validation.validate(prepared.train, prepared.test, prepared.checks, budgets)
Path("core_seconds").write_text(str(time.perf_counter() - start))
"""

SIZES = {"1M": 14, "10M": 138, "30M": 414}  # cycles per module on 10 x 8 modules, hourly readings


def main() -> None:
    figures = {}
    for label, cycles in SIZES.items():
        work = WORK / f"prepare_{label}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # 414 back-to-back cycles from the default 2010 start would end in the 2050s, and
        # prepare refuses harvests in the future: the largest farm starts in 1970.
        start = "1970-01-05" if label == "30M" else SimConfig.start_date
        info = write_farm(work / "raw", SimConfig(cycles_per_module=cycles, start_date=start))
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["prepare"]["raw_dir"] = str(work / "raw")
        (work / "params.yaml").write_text(yaml.safe_dump(params))

        prepare = measure(
            [sys.executable, str(REPO / "stages/prepare.py"), "--out", "data/prepared"], work
        )
        validate = measure(
            [
                sys.executable,
                str(REPO / "stages/validate.py"),
                "--prepared",
                "data/prepared",
                "--report",
                "validation.json",
            ],
            work,
        )
        train = measure(
            [
                sys.executable,
                str(REPO / "stages/train_oracle.py"),
                "--train",  # it also scores data/prepared/test.parquet, as the stage does
                "data/prepared/train.parquet",
                "--out",
                "oracle",
            ],
            work,
        )
        naive = measure(
            [sys.executable, "-c", NAIVE, str(work / "raw/telemetry.parquet"), "naive.parquet"],
            work,
        )
        core = measure([sys.executable, "-c", CORE, str(work / "raw")], work)
        core["compute_seconds"] = round(float((work / "core_seconds").read_text()), 2)
        total = round(prepare["seconds"] + validate["seconds"], 2)
        peak = max(prepare["peak_mb"], validate["peak_mb"])
        figures[label] = {
            "telemetry_rows": info["telemetry_rows"],
            "prepare": prepare,
            "validate": validate,
            "prepare_validate_seconds": total,
            "prepare_validate_peak_mb": peak,
            "train_oracle": train,
            "prepare_validate_train_seconds": round(total + train["seconds"], 2),
            "seconds_per_million_rows": round(total / (info["telemetry_rows"] / 1e6), 3),
            "compute_only_in_one_process": core,
            "naive_pandas_groupby": naive,
            "time_vs_naive": round(total / naive["seconds"], 2),
            "compute_time_vs_naive": round(core["seconds"] / naive["seconds"], 2),
            "memory_vs_naive": round(peak / naive["peak_mb"], 2),
        }
        print(label, figures[label])
        shutil.rmtree(work)
    ten = figures["10M"]
    figures["targets"] = {
        "10M_under_20s": ten["prepare_validate_seconds"] < 20,
        "10M_under_2GB": ten["prepare_validate_peak_mb"] < 2048,
    }
    print(write("prepare_validate", figures))


if __name__ == "__main__":
    main()
