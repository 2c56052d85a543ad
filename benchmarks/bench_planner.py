"""Runtime of plan_level on one level: both sides, the curved transpedicular and the extrapedicular
approach, ellipsoid lesion, safety zones built beforehand (they are built once per vertebra).

Prints the median of a few runs, its parts, and ratios to baselines measured in the same run: one
exact check_path of the planned path with its lesion (the judge every plan passes through) and the
SafetyZones construction. Default input: the real VHM L4 (anatomy found first, not timed).

Run: python benchmarks/bench_planner.py [path/to/shared/data/vhm_lumbar/L4_whole.stl]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from bvn_plan import Vertebra
from bvn_plan.anatomy import find_anatomy
from bvn_plan.planner import APPROACHES, LESION_CHECK_SUBDIVISIONS, plan_level
from bvn_plan.safety import SafetyZones, check_path

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar" / "L4_whole.stl"
REPEATS = 5



def main() -> None:
    warnings.simplefilter("ignore")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    vertebra = Vertebra.load(path, level="L4")
    find_anatomy(vertebra)
    zones_time, zones = median_time(lambda: SafetyZones(vertebra.mesh, vertebra.landmarks), 3)
    both = ("transpedicular", "extrapedicular")
    plan_time, level_plan = median_time(lambda: plan_level(vertebra, zones=zones, approaches=both), REPEATS)
    all_time, _ = median_time(lambda: plan_level(vertebra, zones=zones, approaches=APPROACHES), 3)
    plan = level_plan.result("transpedicular", "right").plan
    lesion = plan.lesion.surface_mesh(LESION_CHECK_SUBDIVISIONS)
    check_time, _ = median_time(lambda: check_path(zones, plan.path, lesion), 9)
    checks = sum(1 + len(r.alternatives) for r in level_plan.results if r.plan is not None)
    print(f"{path.name}: {len(vertebra.mesh.faces)} faces")
    print(f"plan_level, both sides, transpedicular + extrapedicular: median {plan_time:.3f} s "
          f"(x{plan_time / check_time:.1f} of one check_path, x{plan_time / zones_time:.2f} of building the zones)")
    print(f"plan_level, both sides, all {len(APPROACHES)} approaches:          median {all_time:.3f} s")
    print(f"one check_path with the lesion (baseline):          median {check_time:.3f} s")
    print(f"SafetyZones construction (once per vertebra):       median {zones_time:.3f} s")
    print(f"plans + runner-ups returned: {checks}; exact checks per approach and side: "
          f"{level_plan.settings.exact_checks}")


if __name__ == "__main__":
    main()
