"""Runtime of plan_level on one level: both sides, the curved transpedicular and the extrapedicular
approach, ellipsoid lesion, safety zones built beforehand (they are built once per vertebra).

Prints the median of a few runs, the share of it spent in the exact checks (check_path, owned by
the checker), and ratios to baselines measured in the same run: one exact check_path of the planned
path with its lesion (the judge every plan passes through) and the SafetyZones construction.
Issue 5 target: plan_level below 1 s on a 2-core machine, the zones reported apart.

Input: a vertebra mesh (default the real VHM L4; the level is read from a name like ``L3_whole.stl``
or given as the second argument; anatomy found first, not timed), ``totalseg`` for a level of the
TotalSegmentator example label map (second argument, default L4), or ``synthetic`` for the
synthetic L4 of :func:`bvn_plan.synthetic.synthesize` with its ground-truth landmarks.

Run: python benchmarks/bench_planner.py [path/to/shared/data/vhm_lumbar/L4_whole.stl | totalseg | synthetic] [LEVEL]
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from pathlib import Path

from bvn_plan import Vertebra
from bvn_plan.planning import APPROACHES, LESION_CHECK_SUBDIVISIONS, SafetyZones, check_path, plan_level, planner
from bvn_plan.anatomy import find_anatomy
from bvn_plan.workflow import load_labelmap
from bvn_plan.synthetic import synthesize

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = DATA / "vhm_lumbar" / "L4_whole.stl"
TOTALSEG = DATA / "totalseg_example" / "totalseg.nii.gz"
REPEATS = 5


def load(argv: list[str]):
    """The vertebra named on the command line and its landmarks."""
    if argv and argv[0] == "synthetic":
        sv = synthesize("L4")
        return "synthetic L4", sv.vertebra, sv.landmarks
    if argv and argv[0] == "totalseg":
        level = argv[1] if len(argv) > 1 else "L4"
        vertebra = load_labelmap(TOTALSEG).vertebra(level)
        return f"TotalSegmentator {level}", vertebra, find_anatomy(vertebra)
    path = Path(argv[0]) if argv else DEFAULT
    named = re.match(r"(L[1-5]|S1)", path.name)
    level = argv[1] if len(argv) > 1 else (named.group(1) if named else "L4")
    vertebra = Vertebra.load(path, level=level)
    return path.name, vertebra, find_anatomy(vertebra)


def timed_checks():
    """Wrap the planner's check_path to count its calls and their time (seconds)."""
    spent = {"calls": 0, "seconds": 0.0}

    def check(*args, **kwargs):
        start = time.perf_counter()
        result = check_path(*args, **kwargs)
        spent["calls"] += 1
        spent["seconds"] += time.perf_counter() - start
        return result
    planner.check_path = check
    return spent


def main() -> None:
    warnings.simplefilter("ignore")
    name, vertebra, landmarks = load(sys.argv[1:])
    zones_time, zones = median_time(lambda: SafetyZones(vertebra.mesh, landmarks), 3)
    both = ("transpedicular", "extrapedicular")
    spent = timed_checks()
    plan_time, level_plan = median_time(lambda: plan_level(vertebra, landmarks, zones=zones, approaches=both), REPEATS)
    calls, in_checks = spent["calls"] / REPEATS, spent["seconds"] / REPEATS
    planner.check_path = check_path
    all_time, _ = median_time(lambda: plan_level(vertebra, landmarks, zones=zones, approaches=APPROACHES), 3)
    plan = level_plan.result("transpedicular", "right").plan
    lesion = plan.lesion.surface_mesh(LESION_CHECK_SUBDIVISIONS)
    check_time, _ = median_time(lambda: check_path(zones, plan.path, lesion), 9)
    checks = sum(1 + len(r.alternatives) for r in level_plan.results if r.plan is not None)
    print(f"{name}: {len(vertebra.mesh.faces)} faces")
    print(f"plan_level, both sides, transpedicular + extrapedicular: median {plan_time:.3f} s "
          f"(x{plan_time / check_time:.1f} of one check_path, x{plan_time / zones_time:.2f} of building the zones)")
    print(f"  of which exact checks: {calls:.0f} check_path calls, {in_checks:.3f} s "
          f"({100 * in_checks / plan_time:.0f}% of a mean run); the planner's own share {plan_time - in_checks:.3f} s")
    print(f"plan_level, both sides, all {len(APPROACHES)} approaches:          median {all_time:.3f} s")
    print(f"one check_path with the lesion (baseline):          median {check_time:.3f} s")
    print(f"SafetyZones construction (once per vertebra):       median {zones_time:.3f} s")
    print(f"plans + runner-ups returned: {checks}; exact checks per approach and side: "
          f"{level_plan.settings.exact_checks}")


if __name__ == "__main__":
    main()
