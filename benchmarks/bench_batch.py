"""Batch throughput (vertebrae per minute): one process (the baseline, same run), the old process
pool and a local Dask cluster, with the same number of workers.

Cohort: the bundled synthetic L1-S1 (meshes/) moved by small random rigid motions, as in
tests/test_batch.py. Stages: ``plan`` (every approach, both sides) and ``anatomy`` (landmarks and
morphometry only; much faster, so start-up weighs more). No report pictures. Each figure is the
wall time of one ``run_batch`` call: for Dask it includes starting and closing the local cluster
(workers spawn and import bvn-plan), which the old pool (forked from this process) does not pay.
Prints the median over ``--repeats`` runs and the speed-up over one process.

    python benchmarks/bench_batch.py --vertebrae 12 --workers 2 --stage plan --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bvn_plan.errors import BvnPlanWarning
from bvn_plan.synthetic import write_moved_cohort
from bvn_plan.workflow.batch import ATTEMPTS_DIR, SUMMARY_FILE, batch_cases, collect_rows, plan_one, run_batch
from bvn_plan.workflow import rows_to_csv

PROJECT = Path(__file__).resolve().parents[1]
LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")


def cohort(folder: Path, count: int) -> list[Path]:
    sources = {level: PROJECT / "meshes" / f"{level}.ply" for level in LEVELS}
    return [Path(f) for f in write_moved_cohort(sources, folder, count)]


def old_pool(inputs, out: Path, workers: int) -> float:
    """The batch before Dask: a process pool on this machine (fork), the same per-case task and
    summary; vertebrae per minute."""
    (out / ATTEMPTS_DIR).mkdir()
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as executor:
        outcomes = list(executor.map(plan_one, inputs.cases, [out] * len(inputs.cases)))
    seconds = time.perf_counter() - start
    (out / SUMMARY_FILE).write_text(rows_to_csv(collect_rows(inputs.cases, out, {})))
    return 60.0 * sum(levels for _, levels, _ in outcomes) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertebrae", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stage", choices=("anatomy", "plan"), default="plan")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", BvnPlanWarning)
    engines = {
        "one process": lambda inputs, out: run_batch(inputs, out, workers=1, progress=False).vertebrae_per_minute,
        f"old pool, {args.workers} workers": lambda inputs, out: old_pool(inputs, out, args.workers),
        f"local Dask, {args.workers} workers": lambda inputs, out: run_batch(inputs, out, workers=args.workers,
                                                                           progress=False).vertebrae_per_minute,
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = cohort(Path(tmp), args.vertebrae)
        rates, summaries = {}, {}
        for repeat in range(args.repeats):  # the engines take turns, so slow spells of a shared machine hit all
            for n, (name, run) in enumerate(engines.items()):
                out = Path(tmp) / f"out_{n}_{repeat}"
                out.mkdir()
                rate = run(batch_cases(files, frame="RAS", stage=args.stage, images=False), out)
                rates.setdefault(name, []).append(rate)
                print(f"  run {repeat + 1}, {name}: {rate:.1f} vertebrae/min", flush=True)
                summaries.setdefault(name, set()).add((out / SUMMARY_FILE).read_text())
        one = statistics.median(rates["one process"])
        for name, runs in rates.items():
            median = statistics.median(runs)
            print(f"{args.stage} stage, {args.vertebrae} vertebrae, {name}: median {median:.1f} vertebrae/min "
                  f"(runs {', '.join(f'{r:.1f}' for r in runs)}), x{median / one:.2f} one process")
        same = len(set.union(*summaries.values())) == 1
        print(f"summary.csv identical across engines and runs: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
