"""Latency of one interactive update (issue 7, target < 50 ms): moving the entry or the target of
the planned right transpedicular path and getting the new path, lesion and check
(InteractivePlanner.set_entry / set_target on safety zones built once), against a baseline
measured in the same run: the same update with the safety zones rebuilt for every move. Also the
parts (check alone) and what the window (bvn_plan.viz.window) adds to each move: the instrument
tubes and lesion mesh, and the zone recolouring (plan_clearance on the zone surfaces).

Run: python benchmarks/bench_interactive.py [path/to/shared/data/vhm_lumbar/L2_whole.stl] [LEVEL]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from bvn_plan import SafetyZones, Vertebra, find_anatomy, plan_level
from bvn_plan.planning import InteractivePlanner
from bvn_plan.viz.scene import ZONE_REGIONS, instrument_tubes, plan_clearance

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar" / "L2_whole.stl"
#: Moves per timing: a seeded walk of target and entry offsets (mm) about the planned points.
MOVES = 40


def main() -> None:
    warnings.simplefilter("ignore")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    vertebra = Vertebra.load(path, level=sys.argv[2] if len(sys.argv) > 2 else "L2")
    found = find_anatomy(vertebra)
    zones = SafetyZones(vertebra.mesh, found)
    level_plan = plan_level(vertebra, found, approaches=("transpedicular",), zones=zones)
    planner = InteractivePlanner.from_level_plan(vertebra, level_plan, zones=zones)
    first = planner.select(level_plan.recommendation.approach, level_plan.recommendation.side)
    entry0, target0 = planner.entry.copy(), planner.target.copy()
    rng = np.random.default_rng(0)
    offsets = rng.uniform(-1.5, 1.5, size=(MOVES, 3))
    state = {"i": 0}

    def move():
        i = state["i"] = (state["i"] + 1) % MOVES
        if i % 2:
            return planner.set_target(target0 + offsets[i])
        return planner.set_entry(entry0 + offsets[i])

    def move_rebuilding_zones():
        planner.zones = SafetyZones(vertebra.mesh, found)
        return move()

    move()  # warm-up
    fast, update = median_time(move, MOVES)
    check_only, _ = median_time(lambda: planner.update().check, 20)
    planner.select(first.approach, first.side)
    meshes, _ = median_time(lambda: (instrument_tubes(first.path), first.lesion.surface_mesh(subdivisions=3)), MOVES)
    zone_points = np.vstack([vertebra.mesh.submesh([found.face_regions[name]], append=True).vertices
                             for name in ZONE_REGIONS] + [found.canal_mesh.vertices])
    recolour, _ = median_time(lambda: plan_clearance(zone_points, [first.path], [first.lesion]), 20)
    baseline, _ = median_time(move_rebuilding_zones, 5)
    planner.zones = zones

    print(f"mesh: {path.name}, {len(vertebra.mesh.faces)} faces; {first.side} {first.approach} path "
          f"{first.path.length:.0f} mm, planned verdict {first.verdict}; {MOVES} moves of up to 1.5 mm per axis")
    print(f"update (path, lesion and check), zones built once: median {1000 * fast:.1f} ms "
          f"(target < 50 ms); last verdict {update.verdict}")
    print(f"  of which the check: {1000 * check_only:.1f} ms (includes the path and its lesion); "
          f"the window's tubes + lesion mesh: {1000 * meshes:.1f} ms")
    print(f"window zone recolouring (plan_clearance on {len(zone_points)} zone points): {1000 * recolour:.1f} ms")
    print(f"baseline, zones rebuilt per move: median {1000 * baseline:.1f} ms; "
          f"ratio baseline / update = {baseline / fast:.1f}x")


if __name__ == "__main__":
    main()
