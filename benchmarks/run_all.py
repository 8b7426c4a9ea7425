"""Run every benchmark (after `dvc repro`), then write benchmarks/RESULTS.md from the
figures in benchmarks/results/. `python benchmarks/run_all.py --render` only rewrites
RESULTS.md from the committed figures."""

from __future__ import annotations

import json
import subprocess
import sys

from common import HERE, RESULTS

SCRIPTS = [
    "end_to_end.py",
    "prepare_validate.py",
    "tracking_overhead.py",
    "cortex_stage.py",
    "train_yolo_stage.py",
    "near_copies.py",
    "monitor_log.py",
    "prediction_log_files.py",
    "sweep_parallel.py",
    "faults.py",
    "second_world.py",
    "learning_curve.py",
    "size_graded_farm.py",
    "regret_anatomy.py",
    "cortex_surrogates.py",
    "margin_optimism.py",
]


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def mark(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "**missed**")


def rows() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []

    def add(what: str, figure: str, target: str = "", ok: bool | None = None) -> None:
        out.append((what, figure, target, mark(ok)))

    if e := load("end_to_end"):
        t = e["targets"]
        add(
            "fresh `dvc repro`, default params, all stages",
            f"{e['total_seconds']} s",
            "< 240 s",
            t["total_under_240s"],
        )
        add(
            "share outside the stages' MLflow runs (imports, DVC, I/O)",
            f"{e['overhead_share']:.1%}",
            "< 15 %",
            t["overhead_under_15pct"],
        )
        if fl := e.get("floor"):
            add(
                "its floor here: DVC on a trivial pipeline of the same stages, plus a "
                "process per logging stage that opens and closes an empty MLflow run",
                f"{fl['overhead_seconds']} s: {fl['overhead_share']:.1%}",
            )
            add(
                "overhead against that floor (issue 17's target)",
                f"{e['overhead_seconds']} s: {e['overhead_seconds'] / fl['overhead_seconds']:.2f}x",
                "<= 1.3x",
                e["overhead_seconds"] <= 1.3 * fl["overhead_seconds"],
            )
        add(
            "no-op `dvc repro` vs a trivial pipeline of the same shape",
            f"{e['noop_repro_seconds']} s vs {e['trivial_pipeline_noop_seconds']} s: "
            f"{e['noop_ratio']}x",
            "<= 1.5x",
            t["noop_ratio_at_most_1_5"],
        )
        add(
            "one Cortex param changed: re-run time / full run",
            f"{e['incremental_cortex_param_seconds']} s: {e['incremental_ratio']}",
            "<= 0.15",
            t["incremental_ratio_at_most_0_15"],
        )
    if fp := load("footprint"):  # footprint.py runs after a full pytest, not from here
        add(
            "the test suite on 2 cores: time; disk (environment + one run's scratch)",
            f"{fp['suite_seconds'] / 60:.1f} min; {fp['venv_gb']} + "
            f"{fp['last_run_scratch_gb']} = {fp['needed_gb']} GB",
            "< 25 min",
            fp["suite_seconds"] < 25 * 60,
        )
    pv = load("prepare_validate")
    for size in ("1M", "10M", "30M"):
        if f := pv.get(size):
            train = f.get("train_oracle", {}).get("seconds")
            add(
                f"prepare + validate, {size} telemetry rows",
                f"{f['prepare_validate_seconds']} s, {f['prepare_validate_peak_mb']:.0f} MB peak"
                + (f"; train_oracle {train} s" if train else ""),
                "< 20 s, < 2 GB" if size == "10M" else "linear growth",
                all(pv["targets"].values()) if size == "10M" else None,
            )
            naive, core = f["naive_pandas_groupby"], f["compute_only_in_one_process"]
            add(
                f"naive pandas read-all + groupby vs ours in one process, {size} rows",
                f"{naive['seconds']} s, {naive['peak_mb']:.0f} MB vs "
                f"{core['seconds']} s, {core['peak_mb']:.0f} MB",
            )
    if tr := load("tracking_overhead"):
        add(
            "MLflow logging, worst stage",
            f"{tr['worst_stage_tracking_seconds']} s",
            "< 2 s",
            tr["target_under_2s"],
        )
    if cx := load("cortex_stage"):
        add(
            "optimise_cortex stage (worst of 3, identical recipes)",
            f"{cx['worst_seconds']} s",
            "< 30 s",
            cx["target_under_30s"],
        )
    if yo := load("train_yolo_stage"):
        add(
            "train_yolo stage on 2 CPU cores (worst of 2)",
            f"{yo['worst_seconds']} s",
            "< 150 s",
            yo["target_under_150s"],
        )
        add(
            "YOLO mAP50, built-in validation split",
            f"{yo['mAP50']} (spread over runs {yo['spread']['mAP50']})",
            ">= 0.90",
            yo["target_map50_0.90"],
        )
    if nc := load("near_copies"):
        moved, bits = nc["re_saved_copies"], nc["threshold_bits"]
        different = nc["different_pictures"]
        pairs = different["builtin_320"]["pairs"] + different["photos_2000"]["pairs"]
        close = sum(different[k][f"within_{bits}"] for k in ("builtin_320", "photos_2000"))
        add(
            f"near-copy check: re-saved (JPEG q50-95) or resized (0.5-2x) copies flagged "
            f"(hash within {bits} bits)",
            f"{moved['caught_within'][str(bits)]:,} of {moved['copies']:,}; different "
            f"pictures flagged: {close} of {pairs:,} pairs",
        )
        add(
            "validate_images' checks on 2,000 JPEG photos (near copies included)",
            f"{max(nc['validate_2000_jpeg_images_seconds'])} s",
        )
    if mo := load("monitor_log"):
        add(
            f"`vertiflow monitor --from-log`, {mo['logged_predictions']:,} logged predictions",
            f"{mo['seconds']} s, {mo['peak_mb']:.0f} MB",
            "< 20 s",
            mo["target_under_20s"],
        )
    if pl_ := load("prediction_log_files"):
        before, after = pl_["as_logged"], pl_["merged"]
        add(
            f"prediction log of {pl_['requests']:,} one-row requests, as logged / hour merged: "
            "files, MB, `vertiflow monitor --from-log` (start-up included)",
            f"{before['files']:,}, {before['mb']} MB, {before['monitor']['seconds']} s / "
            f"{after['files']}, {after['mb']} MB, {after['monitor']['seconds']} s "
            f"(merge {pl_['merge']['seconds']} s)",
        )
    if sw := load("sweep_parallel"):
        add(
            "4-experiment sweep, `OMP_NUM_THREADS=1 dvc queue start -j 2` / sequential",
            f"{sw['queued_j2_seconds']} s / {sw['sequential_seconds']} s: {sw['ratio']}",
            "<= 0.7",
            sw["target_at_most_0_7"],
        )
        if "queued_j2_default_threads_seconds" in sw:
            add(
                "the same sweep queued with default threads (4 OpenMP threads on 2 cores)",
                f"{sw['queued_j2_default_threads_seconds']} s: {sw['ratio_default_threads']}",
                "",
                None,
            )
    if fa := load("faults"):
        k, s3, bad, par = (
            fa["kills"],
            fa["s3_outages"],
            fa["malformed_inputs"],
            fa["parallel_experiments"],
        )
        add(
            f"SIGKILL at {len(k['points'])} points of each of {len(k['per_stage'])} stages, "
            "then `dvc repro`: reference outputs, `dvc status` clean",
            f"{k['survived']}/{k['tried']} survived",
            "all",
            k["survived"] == k["tried"],
        )
        add(
            f"S3 server stopped mid-push ({s3['objects']} objects), push resumed, fresh pull",
            f"{s3['survived']}/{s3['tried']} outages survived, {s3['objects_lost']} objects "
            f"lost, {s3['outputs_differing']} of {s3['outputs_compared']} files differing",
            "0 lost",
            s3["objects_lost"] == 0 and s3["outputs_differing"] == 0,
        )
        add(
            "malformed raw data and params through `dvc repro`",
            f"{bad['clean_errors']}/{bad['tried']} clean errors, {fa['tracebacks']} tracebacks",
            "all, 0 tracebacks",
            bad["clean_errors"] == bad["tried"] and fa["tracebacks"] == 0,
        )
        add(
            f"{par['queued']} queued experiments on {par['workers']} workers, team MLflow server",
            f"{par['runs_lost']} runs lost, {par['runs_doubled']} doubled "
            f"({par['mlflow_runs']} runs)",
            "0, 0",
            par["runs_lost"] == 0 and par["runs_doubled"] == 0 and par["experiments_lost"] == 0,
        )
    if sw := load("second_world"):
        targets = {
            "oracle_r2_of_bayes": (">= 0.985 of Bayes R2", lambda v: v >= 0.985, "{:.3f}"),
            "classifier_gap_points": ("<= 1.5 points", lambda v: v <= 1.5, "{:.2f}"),
            "max_regret": ("<= 3 % per crop", lambda v: v <= 0.03, "{:.1%}"),
        }
        targets["large_test_oracle_r2_of_bayes"] = targets["oracle_r2_of_bayes"]
        targets["large_test_classifier_gap_points"] = targets["classifier_gap_points"]
        for farm, fig in sw.get("summary", {}).items():
            for name, (target, ok, fmt) in targets.items():
                if name not in fig:
                    continue
                values = fig[name]["values"]
                add(
                    f"second world, {farm} farm: {name.replace('_', ' ')} "
                    f"(seeds {', '.join(fig['seeds'])})",
                    ", ".join(fmt.format(v) for v in values),
                    target,
                    all(ok(v) for v in values),
                )
    if sg := load("size_graded_farm"):
        for name, label in (("with_oracle_input", "with"), ("without", "without")):
            fig = sg[name]
            add(
                f"farm export graded by size, not ours: classifier {label} the Oracle's yield "
                f"as an input, points from Bayes (own {fig['test']['batches']} test batches; "
                f"{fig['large']['batches']} more)",
                f"{fig['test']['gap_points']:.2f}; {fig['large']['gap_points']:.2f}",
            )
    return out


def learning_curve() -> list[str]:
    """The default search's figures against a one-crop farm's number of training batches."""
    lc, subset = load("learning_curve"), load("learning_curve_gp_subset")
    if not lc:
        return []
    seeds = ", ".join(k.removeprefix("seed") for k in lc["seeds"])
    lines = [
        "## How many batches a farm needs (learning_curve.json)",
        "",
        f"Second world, spinach, default params; judged on ~1,925 other batches; seeds {seeds}.",
        "Last column: the Gaussian process on a 1,200-batch subset where the default skips",
        "it (learning_curve_gp_subset.json; README, Models are chosen on your data).",
        "",
        "| training batches | Oracle R2 of Bayes (target 0.985) | classifier gap (target 1.5) "
        "| regret (target 3 %) | Oracle, GP on a subset |",
        "| --- | --- | --- | --- | --- |",
    ]

    def values(figures: dict | None, key: str, fmt: str) -> str:
        return ", ".join(fmt.format(v) for v in figures[key]) if figures else "-"

    for n, fig in lc["summary"].items():
        other = subset.get("summary", {}).get(n)
        lines.append(
            f"| {n} | {values(fig, 'oracle_r2_of_limit', '{:.3f}')} "
            f"| {values(fig, 'classifier_gap_points', '{:.2f}')} "
            f"| {values(fig, 'regret', '{:.1%}') if 'regret' in fig else '-'} "
            f"| {values(other, 'oracle_r2_of_limit', '{:.3f}')} |"
        )
    return [*lines, ""]


def quality() -> list[str]:
    path = HERE.parent / "metrics" / "quality.json"
    if not path.exists():
        return []
    table = json.loads(path.read_text())
    lines = ["| model | metric | value | limit | gap |", "| --- | --- | --- | --- | --- |"]
    for model, row in table.items():
        metric = next(iter(row))
        limit = row.get(f"{metric}_limit", "-")
        lines.append(f"| {model} | {metric} | {row[metric]} | {limit} | {row.get('gap', '-')} |")
    return lines


def regret_anatomy() -> list[str]:
    """Other Oracles in Cortex's place on one second-world draw (regret_anatomy.json)."""
    ra = load("regret_anatomy")
    if not ra:
        return []
    lines = [
        "## Where the second world's regret comes from (regret_anatomy.json)",
        "",
        f"Default farm, seed {ra['seed']}; each Oracle with a classifier stacked on it.",
        "",
        "| Oracle | R2 of Bayes | regret per crop |",
        "| --- | --- | --- |",
    ]
    for name, v in ra["default"]["oracle_variants"].items():
        regret = ", ".join(f"{c} {r:.1%}" for c, r in v["regret"].items())
        lines.append(f"| {name} | {v['r2_of_limit']:.4f} | {regret} |")
    for farm in ("default", "small"):
        for crop, d in ra[farm]["decomposition"].items():
            moves = ", ".join(
                f"{k.removesuffix('_to_true_best')} {m['from']}->{m['to']}: {m['regret']:.1%}"
                for k, m in d.items()
                if k != "regret" and d["regret"] - m["regret"] >= 0.005
            )
            lines.append(
                f"\n{farm} {crop}: regret {d['regret']:.1%}; one variable set to the "
                f"true best's: {moves or 'none moves it by 0.5 points'}."
            )
    return [*lines, ""]


def cortex_surrogates() -> list[str]:
    """Other surrogates in Cortex's place, six second-world draws and the built-in farm."""
    cs = load("cortex_surrogates")
    if not cs:
        return []
    farms = cs["farms"]
    columns = [k for k in ("default", "small", "builtin") for f in farms if f.startswith(k)]
    keys = [f for k in dict.fromkeys(columns) for f in farms if f.startswith(f"{k}_seed")]
    variants = list(dict.fromkeys(v for f in farms.values() for v in f["variants"]))
    lines = [
        "## Other surrogates in Cortex's place (cortex_surrogates.json)",
        "",
        "Regret per crop (target 3 %; built-in: no worse than about 1 %); seconds: the",
        "members' fits and Cortex's searches on the default farm, seed 42 (the stage today:",
        "about 12 s in all). `-`: not run (the script's docstring says each surrogate).",
        "",
        "| surrogate | " + " | ".join(k.replace("_seed", " ") for k in keys) + " | seconds |",
        "| --- " * (len(keys) + 2) + "|",
    ]
    for variant in variants:
        cells = []
        for key in keys:
            run = farms[key]["variants"].get(variant)
            regret = run and ", ".join(f"{r:.1%}" for r in run["regret"].values())
            cells.append(regret or "-")
        run = farms.get("default_seed42", {}).get("variants", {}).get(variant)
        cells.append(f"{run['seconds']:.0f}" if run else "-")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    crops = {k: "/".join(next(iter(farms[k]["variants"].values()))["regret"]) for k in keys}
    named = dict.fromkeys(f"{k.split('_seed')[0]}: {c}" for k, c in crops.items())
    return [*lines, "", "Crops in each cell: " + "; ".join(named) + ".", ""]


def margin_optimism() -> list[str]:
    """Why the small farm's margin interval misses, and what the farm's data can see of it."""
    mo = load("margin_optimism")
    if not mo:
        return []
    lines = [
        "## Why the small farm's margin interval misses (margin_optimism.json)",
        "",
        "Second world's small farm (spinach), per draw: Cortex's predicted margin and 90 %",
        "interval at its recipe against the true margin; the Oracle's yield error there (log);",
        "what three checks on the farm's own data see of the gap: the models' optimism on the",
        "held-out batches they rank highest (+- one standard error), the optimism that",
        "cross-fitting on halves of the training batches measures, and the Gaussian process's",
        "own posterior sd of log yield at the recipe.",
        "",
        "| draw | predicted [interval] | true | yield error | held-out top | cross-fit | GP sd |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, draw in mo["farms"].items():
        for crop, d in draw["crops"].items():
            r, top, gp = d["recipe"], d["held_out_top"], d["gp_latent_sd"] or {}
            low, high = r["interval"]
            lines.append(
                f"| {key.replace('_seed', ' ')} {crop} | {r['predicted_margin']} [{low}, {high}] "
                f"| {r['true_margin']} | {r['true_log_yield_error']:+.3f} "
                f"| {top['optimism']:+.2f} +- {top['standard_error']:.2f} "
                f"| {d['cross_fit']['mean_optimism']:+.2f} | {gp.get('at_recipe', '-')} |"
            )
    return [*lines, ""]


def render() -> None:
    machine = next(
        (
            load(n)["machine"]
            for n in ("end_to_end", "train_yolo_stage", "prepare_validate")
            if load(n)
        ),
        {},
    )
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine.get('cpu_cores')} CPU cores, {machine.get('memory_gb')} GB, Python "
        f"{machine.get('python')}, {machine.get('platform')}; latest run {machine.get('date')}.",
        "Method: each script's docstring in `benchmarks/`; every figure below comes from the",
        "JSON file of the same name in `benchmarks/results/` (wall clock of whole commands,",
        "peak RSS of the largest process). Regenerate with `python benchmarks/run_all.py`.",
        "",
        "| what | figure | target | |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows()),
        "",
        "Each figure is one run; what a missed target needs, and figures that moved between",
        "runs, are in the README (Benchmarks, Status).",
        "",
        *learning_curve(),
        *regret_anatomy(),
        *cortex_surrogates(),
        *margin_optimism(),
        "## Model quality against the limit (metrics/quality.json)",
        "",
        *quality(),
        "",
    ]  # fmt: skip
    (HERE / "RESULTS.md").write_text("\n".join(lines))


def main() -> None:
    if "--render" not in sys.argv:
        for script in SCRIPTS:
            print(f"== {script}", flush=True)
            subprocess.run([sys.executable, str(HERE / script)], check=True)
    render()
    print(HERE / "RESULTS.md")


if __name__ == "__main__":
    main()
