"""Batch throughput (vertebrae per minute): one worker (the baseline, same run) against more.

Cohort: the bundled synthetic L1-S1 (meshes/) moved by small random rigid motions, as in
tests/test_batch.py. Stages: ``anatomy`` (landmarks and morphometry only) and ``plan`` (every
approach, both sides; slower). No report pictures. Prints the median over ``--repeats`` runs and
the speed-up over one worker.

    python benchmarks/bench_batch.py --vertebrae 12 --workers 2 --stage anatomy --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path


from bvn_plan.workflow import batch_cases, run_batch
from bvn_plan.errors import BvnPlanWarning
from bvn_plan.synthetic import write_moved_cohort

PROJECT = Path(__file__).resolve().parents[1]
LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")


def cohort(folder: Path, count: int) -> list[Path]:
    sources = {level: PROJECT / "meshes" / f"{level}.ply" for level in LEVELS}
    return [Path(f) for f in write_moved_cohort(sources, folder, count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertebrae", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stage", choices=("anatomy", "plan"), default="anatomy")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore", BvnPlanWarning)
    with tempfile.TemporaryDirectory() as tmp:
        files = cohort(Path(tmp), args.vertebrae)
        rates = {}
        for workers in sorted({1, args.workers}):
            runs = []
            for repeat in range(args.repeats):
                cases = batch_cases(files, frame="RAS", stage=args.stage, images=False)
                result = run_batch(cases, Path(tmp) / f"out_{workers}_{repeat}", workers=workers, progress=False)
                runs.append(result.vertebrae_per_minute)
            rates[workers] = statistics.median(runs)
            print(f"{args.stage:8s} {args.vertebrae} vertebrae, {workers} worker(s): "
                  f"median {rates[workers]:.1f} vertebrae/min over {args.repeats} run(s)")
        if args.workers != 1:
            print(f"speed-up of {args.workers} workers over 1: {rates[args.workers] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
