"""Runtime of one level planned with robustness: both sides, every approach, each plan assessed
under the default placement-error model (500 samples and the angle tolerance's search), safety
zones built beforehand (once per vertebra, as in bench_planner.py).

Prints the median wall and CPU time (time.process_time, less inflated by other processes on a loaded
machine) of a few runs of plan_level without robustness, with robustness at the canal margin itself
(canal_band_mm 0: the assessment's own cost) and with robustness as the commands run it (the
robustness-aware search keeping its band beyond the canal margin), the sampled checks it ran and
their time per check. Issue 18 target: the level with robustness under 5 s
(each sampled check <= 1 ms, which needs the batched checker).

Input: a vertebra mesh (default the real VHM L4; the level from a name like ``L3_whole.stl`` or the
second argument; anatomy found first, not timed) or ``synthetic`` for the toolkit's synthetic L4.

Run: python benchmarks/bench_robustness.py [path/to/shared/data/vhm_lumbar/L4_whole.stl | synthetic] [LEVEL]
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from pathlib import Path

from bvn_plan import Vertebra
from bvn_plan.anatomy import find_anatomy
from bvn_plan.planning import PlannerSettings, SafetyZones, plan_level
from bvn_plan.planning.robustness import RobustnessSettings

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

PROJECT = Path(__file__).resolve().parents[1]
DATA = PROJECT.parent / "shared" / "data"
DEFAULT = DATA / "vhm_lumbar" / "L4_whole.stl"
REPEATS = 3


def load(argv: list[str]):
    """The vertebra named on the command line and its landmarks."""
    if argv and argv[0] == "synthetic":
        vertebra = Vertebra.load(PROJECT / "meshes" / "L4.ply", level="L4", frame="RAS")
        return "synthetic L4 (meshes/L4.ply)", vertebra, find_anatomy(vertebra)
    path = Path(argv[0]) if argv else DEFAULT
    named = re.match(r"(L[1-5]|S1)", path.name)
    level = argv[1] if len(argv) > 1 else (named.group(1) if named else "L4")
    vertebra = Vertebra.load(path, level=level)
    return path.name, vertebra, find_anatomy(vertebra)


def main(argv: list[str]) -> None:
    warnings.simplefilter("ignore")
    name, vertebra, landmarks = load(argv)
    zones = SafetyZones(vertebra.mesh, landmarks)
    settings = RobustnessSettings()

    def plain():
        return plan_level(vertebra, landmarks, zones=zones)

    def robust():
        return plan_level(vertebra, landmarks, zones=zones, settings=PlannerSettings(robustness=settings))

    def unbanded():
        return plan_level(vertebra, landmarks, zones=zones,
                          settings=PlannerSettings(robustness=RobustnessSettings(canal_band_mm=0.0)))

    rows = {}
    for label, run in (("without robustness", plain), ("with robustness, no band", unbanded),
                       ("with robustness", robust)):
        wall, _ = median_time(run, REPEATS)
        cpu, result = median_time(run, REPEATS, clock=time.process_time)
        rows[label] = (wall, cpu, result)
        print(f"{name}: plan_level {label}: median {wall:.2f} s wall, {cpu:.2f} s CPU ({REPEATS} runs)")
    plans = [r.plan for r in rows["with robustness"][2].results if r.plan is not None and r.plan.robustness is not None]
    samples = settings.model.samples * len(plans)
    seconds = sum(p.robustness.seconds for p in plans)
    cpu = sum(p.robustness.cpu_seconds for p in plans)
    # the angle tolerance's search adds 8 directions per grid angle up to the first failing one,
    # then the bisection of the failing directions: a few dozen checks per plan
    print(f"robustness of {len(plans)} plans: {seconds:.2f} s wall, {cpu:.2f} s CPU (last run); "
          f"{samples} sampled checks and the angle tolerance's: {1000 * cpu / samples:.2f} ms CPU per sampled check "
          "at most")
    print(f"target: the level with robustness under 5 s: "
          f"{'met' if rows['with robustness'][0] < 5.0 else 'NOT met'} ({rows['with robustness'][0]:.2f} s wall)")


if __name__ == "__main__":
    main(sys.argv[1:])
