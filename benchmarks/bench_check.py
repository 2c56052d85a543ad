"""Latency of one trajectory check (issues 4 and 17), old and new engine side by side in one run.

On VHM L2, VHM L4 and the synthetic L4 (20k faces), with the landmarks of find_anatomy and the
planner's recommended path and lesion: the median SafetyZones set-up, and the median check_path
time instrument only and with the lesion, for the compiled-tree engine of the package (new) and
the VTK engine it replaced (old, benchmarks/vtk_distance.py), their ratio, and a naive baseline
measured in the same run (exact trimesh distances from every path and lesion sample to every zone
mesh, per check: no grid, no pruning). Then one robustness run on VHM L4: check_paths on 500 paths
sampled about the recommendation (start and tip moved by normal noise), median time per path.
Every figure twice: wall time and this process's CPU time (time.process_time), which other
processes on a loaded machine inflate far less; old and new are measured in alternating rounds so
that both see the same load. The approach zones (soft tissue from the skin) are not in the package yet: their row is missing.

Run: python benchmarks/bench_check.py [path/to/shared/data/vhm_lumbar]
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import trimesh

from bvn_plan import InstrumentPath, SafetyZones, Vertebra, check_path, find_anatomy, plan_level
from bvn_plan.planning import check_paths, lesion_check_points
from bvn_plan.synthetic import synthesize

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)
from vtk_distance import vtk_zones

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar"
SETUP_REPEATS, CHECK_ROUNDS, CHECKS_PER_ROUND, NAIVE_REPEATS = 3, 10, 5, 1
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
ROBUSTNESS_PATHS = 500
#: Spread (mm, 1 SD) of the robustness run's sampled starts and tips about the recommendation.
START_SD_MM, TIP_SD_MM = 2.0, 1.5


def naive_check(vertebra, landmarks, path, lesion_points):
    """Exact signed/unsigned distances with trimesh for every sample, every zone, every time."""
    points = path.sample().points
    mesh = vertebra.mesh
    out = {}
    for name, zone in (("canal", landmarks.canal_mesh), ("bone", mesh)):
        _, dist, _ = trimesh.proximity.closest_point(zone, points)
        out[name] = np.where(zone.contains(points), -dist, dist)
    for region in ("superior_endplate", "inferior_endplate", "anterior_cortex", "lateral_cortex"):
        sub = mesh.submesh([landmarks.face_regions[region]], append=True)
        out[region] = trimesh.proximity.closest_point(sub, points)[1]
    _, dist, _ = trimesh.proximity.closest_point(landmarks.canal_mesh, lesion_points)
    out["canal_lesion"] = dist
    return out


def cases(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for level in ("L2", "L4"):
            yield f"VHM {level}", Vertebra.load(folder / f"{level}_whole.stl", level=level)
        yield "synthetic L4", Vertebra.from_mesh(synthesize("L4").mesh, level="L4")


def measure(name: str, vertebra) -> dict:
    """Set-up and check medians (s, by clock) of both engines and the naive baseline on one vertebra."""
    found = find_anatomy(vertebra)
    zones = {"new": SafetyZones(vertebra.mesh, found), "old": vtk_zones(vertebra.mesh, found)}  # also warm-up
    planned = plan_level(vertebra, found, approaches=("transpedicular",), zones=zones["new"]).recommendation
    path, lesion = planned.path, planned.lesion
    row = {"name": name, "faces": len(vertebra.mesh.faces), "samples": len(path.sample().points), "path": path,
           "lesion": lesion, "zones": zones["new"]}
    for clock_name, clock in CLOCKS.items():
        for engine, build in (("new", SafetyZones), ("old", vtk_zones)):
            row[clock_name, engine, "set-up"], _ = median_time(lambda: build(vertebra.mesh, found), SETUP_REPEATS, clock)
        times = {}
        for _ in range(CHECK_ROUNDS):  # alternating rounds: both engines under the same load
            for engine in ("new", "old"):
                for kind, with_lesion in (("bare", None), ("lesion", lesion)):
                    t, result = median_time(lambda: check_path(zones[engine], path, lesion=with_lesion),
                                            CHECKS_PER_ROUND, clock)
                    times.setdefault((engine, kind), []).append(t)
                row[engine, "canal"] = result.clearances["spinal_canal:lesion"].clearance_mm
        for key, values in times.items():
            row[(clock_name, *key)] = statistics.median(values)
        points = lesion_check_points(lesion)
        row[clock_name, "naive"], _ = median_time(lambda: naive_check(vertebra, found, path, points), NAIVE_REPEATS, clock)
    return row


def robustness_run(row: dict, rng) -> dict:
    """Median seconds per path (by clock) of check_paths over sampled paths with their lesions, and the passes."""
    base, lesion = row["path"], row["lesion"]
    paths = [InstrumentPath.straight(base.start + rng.normal(0, START_SD_MM, 3), base.tip + rng.normal(0, TIP_SD_MM, 3),
                                     base.radius_mm) for _ in range(ROBUSTNESS_PATHS)]
    lesions = [type(lesion).from_probe(p.tip, p.tip_direction) for p in paths]
    out = {}
    for clock_name, clock in CLOCKS.items():
        total, results = median_time(lambda: check_paths(row["zones"], paths, lesions), 3, clock)
        out[clock_name] = total / len(paths)
    out["passes"] = sum(getattr(r, "verdict", "") == "pass" for r in results)
    return out


def print_table(rows: list[dict], clock: str) -> None:
    print(f"{clock} time medians, ms (set-up in s); old = VTK engine, new = compiled tree; ratio = old / new, this run")
    print(f"{'mesh':<14}{'faces':>7}{'samples':>8} | {'set-up old':>10}{'new':>7} | {'instrument old':>14}{'new':>7}"
          f"{'ratio':>7} | {'with lesion old':>15}{'new':>7}{'ratio':>7} | {'naive':>8}{'naive/new':>10}")
    for r in rows:
        c = lambda *key: r[(clock, *key)]  # noqa: E731
        print(f"{r['name']:<14}{r['faces']:>7}{r['samples']:>8} | {c('old', 'set-up'):>10.2f}{c('new', 'set-up'):>7.2f} | "
              f"{c('old', 'bare') * 1e3:>14.2f}{c('new', 'bare') * 1e3:>7.2f}{c('old', 'bare') / c('new', 'bare'):>7.2f} | "
              f"{c('old', 'lesion') * 1e3:>15.2f}{c('new', 'lesion') * 1e3:>7.2f}"
              f"{c('old', 'lesion') / c('new', 'lesion'):>7.2f} | {c('naive') * 1e3:>8.1f}{c('naive') / c('new', 'lesion'):>9.0f}x")


def main() -> None:
    warnings.simplefilter("ignore")
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    rows = [measure(name, vertebra) for name, vertebra in cases(folder)]
    for clock in CLOCKS:
        print_table(rows, clock)
    for r in rows:
        print(f"{r['name']}: lesion-canal clearance old {r['old', 'canal']:.6f} mm, new {r['new', 'canal']:.6f} mm")
    l4 = next(r for r in rows if r["name"] == "VHM L4")
    run = robustness_run(l4, np.random.default_rng(17))
    print(f"robustness run on VHM L4: check_paths on {ROBUSTNESS_PATHS} sampled paths with lesions, median per path "
          f"{run['wall'] * 1e3:.2f} ms wall, {run['cpu'] * 1e3:.2f} ms cpu ({run['passes']} pass)")
    print("approach zones: not in the package yet (issue of the approach from the skin): no row")


if __name__ == "__main__":
    main()
