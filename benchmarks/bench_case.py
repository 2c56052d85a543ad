"""Runtime of a whole case (issue 9, target < 10 s): the TotalSegmentator example L3-S1 from its
labelmap alone (meshing, anatomy, every approach and side, checks, plan.json, summary.csv, Slicer
files; no pictures), as a median of a few runs, against a baseline from the same run: the same
levels meshed from the labelmap and their anatomy found, without planning.

Run: python benchmarks/bench_case.py [path/to/shared/data/totalseg_example]
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

from bvn_plan.anatomy import find_anatomy
from bvn_plan.workflow import case_from_dict, load_labelmap, plan_case

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "totalseg_example"
LEVELS = ("L3", "L4", "L5", "S1")


def main() -> None:
    warnings.simplefilter("ignore")
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    document = {"case_id": "bench", "levels": "L3-S1", "plan": {"images": False},
                "input": {"labelmap": str(data / "totalseg.nii.gz"), "scheme": "totalseg"}}
    case = case_from_dict(document, data, source="benchmark")

    def whole_case():
        with tempfile.TemporaryDirectory() as folder:
            return plan_case(case, Path(folder) / "out")

    def anatomy_only():
        labelmap = load_labelmap(data / "totalseg.nii.gz", scheme="totalseg")
        return [find_anatomy(labelmap.vertebra(level)) for level in LEVELS]

    case_time, result = median_time(whole_case, 3)
    anatomy_time, _ = median_time(anatomy_only, 3)
    print(f"TotalSegmentator example, {', '.join(LEVELS)} from the labelmap")
    print(f"whole case (no pictures) median: {case_time:.1f} s (target < 10 s)")
    print(f"baseline, meshing + anatomy only: {anatomy_time:.1f} s -> planning and outputs add "
          f"{case_time - anatomy_time:.1f} s ({case_time / anatomy_time:.1f}x)")
    print("levels: " + "; ".join(f"{row['level']} {row['status']}" for row in result.rows))


if __name__ == "__main__":
    main()
