"""Latency of one trajectory check (issues 4 and 17), old and new engine side by side in one run.

On VHM L2, VHM L4, the synthetic L4 (20k faces) and the L1 of the TotalSegmentator organ example
(../shared/data/totalseg_organs_example, its labelled organs and subcutaneous fat), with the
landmarks of find_anatomy: the median SafetyZones set-up, and the median check_path time
instrument only and with the lesion (the planner's transpedicular recommendation), and with the
approach zones (the recommendation of plan_level over both approaches, transpedicular and
extrapedicular, checked with its lesion on SafetyZones with the approach zones the package has:
the entry windows of planning/approach.py always, and the labelled organs of planning/zones.py
where a labelmap gives them, i.e. on the organ example's L1; the three mesh-only levels have no
labels, so their soft tissue is the modelled one, the entry windows' great vessels, psoas, exiting
root and disc). Each for the compiled-tree engine of the package (new) and the VTK engine it
replaced (old, benchmarks/vtk_distance.py: VTK exact distances and sequential ball searches,
under the package's grid bounds and batched checker), their ratio, and a naive baseline measured
in the same run (exact trimesh distances from every path and lesion sample to every zone mesh, per
check: no grid, no pruning). Then one robustness run on VHM L4: check_paths on 500 paths sampled
about the recommendation (start and tip moved by normal noise) with their lesions, median time per
path, both engines. Every figure twice: wall time and this process's CPU time
(time.process_time), which other processes on a loaded machine inflate far less; old and new are
measured in alternating rounds so that both see the same load.

Run: python benchmarks/bench_check.py [path/to/shared/data]
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import trimesh

from bvn_plan import InstrumentPath, SafetyZones, Vertebra, check_path, find_anatomy, plan_level
from bvn_plan.planning import OrganZones, check_paths, lesion_check_points
from bvn_plan.synthetic import synthesize
from bvn_plan.workflow import load_labelmap

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)
from vtk_distance import vtk_zones

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
SETUP_REPEATS, CHECK_ROUNDS, CHECKS_PER_ROUND, NAIVE_REPEATS = 3, 10, 5, 1
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
KINDS = {"bare": "instrument", "lesion": "with lesion", "approach": "approach zones"}
ROBUSTNESS_PATHS, ROBUSTNESS_REPEATS = 500, 3
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


def cases(data: Path):
    """(name, vertebra, organ zones or None) of each benchmarked level."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for level in ("L2", "L4"):
            yield f"VHM {level}", Vertebra.load(data / "vhm_lumbar" / f"{level}_whole.stl", level=level), None
        yield "synthetic L4", Vertebra.from_mesh(synthesize("L4").mesh, level="L4"), None
        folder = data / "totalseg_organs_example"
        labels = load_labelmap(folder / "example_seg.nii.gz")
        fat = np.asarray(nib.load(folder / "subcutaneous_fat.nii.gz").dataobj) > 0
        yield "TotalSeg L1", labels.vertebra("L1"), OrganZones.from_labelmap(labels, fat)


def measure(name: str, vertebra, organs) -> dict:
    """Set-up and check medians (s, by clock) of both engines and the naive baseline on one vertebra."""
    found = find_anatomy(vertebra)
    mesh = vertebra.mesh
    zones = {"new": SafetyZones(mesh, found), "old": vtk_zones(mesh, found)}  # also warm-up
    approach = {"new": SafetyZones(mesh, found, organs=organs), "old": vtk_zones(mesh, found, organs=organs)}
    planned = plan_level(vertebra, found, approaches=("transpedicular",), zones=zones["new"]).recommendation
    by_approach = plan_level(vertebra, found, zones=approach["new"]).recommendation
    checks = {"bare": (zones, planned.path, None), "lesion": (zones, planned.path, planned.lesion),
              "approach": (approach, by_approach.path, by_approach.lesion)}
    row = {"name": name, "faces": len(mesh.faces), "samples": len(planned.path.sample().points),
           "path": planned.path, "lesion": planned.lesion, "zones": zones}
    for clock_name, clock in CLOCKS.items():
        for engine, build in (("new", SafetyZones), ("old", vtk_zones)):
            row[clock_name, engine, "set-up"], _ = median_time(lambda: build(mesh, found), SETUP_REPEATS, clock)
        times = {}
        for _ in range(CHECK_ROUNDS):  # alternating rounds: both engines under the same load
            for engine in ("new", "old"):
                for kind, (zone_set, path, lesion) in checks.items():
                    t, result = median_time(lambda: check_path(zone_set[engine], path, lesion=lesion),
                                            CHECKS_PER_ROUND, clock)
                    times.setdefault((engine, kind), []).append(t)
                    row[engine, kind, "verdict"] = result.verdict
                    if kind == "lesion":
                        row[engine, "canal"] = result.clearances["spinal_canal:lesion"].clearance_mm
        for key, values in times.items():
            row[(clock_name, *key)] = statistics.median(values)
        points = lesion_check_points(planned.lesion)
        row[clock_name, "naive"], _ = median_time(lambda: naive_check(vertebra, found, planned.path, points),
                                                  NAIVE_REPEATS, clock)
    return row


def robustness_run(row: dict, rng) -> dict:
    """Median seconds per path (by clock and engine) of check_paths over sampled paths with their
    lesions, and the passes."""
    base, lesion = row["path"], row["lesion"]
    paths = [InstrumentPath.straight(base.start + rng.normal(0, START_SD_MM, 3), base.tip + rng.normal(0, TIP_SD_MM, 3),
                                     base.radius_mm) for _ in range(ROBUSTNESS_PATHS)]
    lesions = [type(lesion).from_probe(p.tip, p.tip_direction) for p in paths]
    out = {}
    for clock_name, clock in CLOCKS.items():
        for engine in ("new", "old"):
            total, results = median_time(lambda: check_paths(row["zones"][engine], paths, lesions),
                                         ROBUSTNESS_REPEATS, clock)
            out[clock_name, engine] = total / len(paths)
            out["passes", engine] = sum(getattr(r, "verdict", "") == "pass" for r in results)
    return out


def print_table(rows: list[dict], clock: str) -> None:
    print(f"{clock} time medians, ms (set-up in s); old = VTK engine, new = compiled tree; ratio = old / new, this run")
    head = f"{'mesh':<13}{'faces':>6}{'samples':>8} | {'set-up old':>10}{'new':>6}"
    for kind, words in KINDS.items():
        head += f" | {words + ' old':>{max(len(words) + 4, 9)}}{'new':>6}{'ratio':>6}"
    print(head + f" | {'naive':>7}{'naive/new':>10}")
    for r in rows:
        c = lambda *key: r[(clock, *key)]  # noqa: E731
        line = f"{r['name']:<13}{r['faces']:>6}{r['samples']:>8} | {c('old', 'set-up'):>10.2f}{c('new', 'set-up'):>6.2f}"
        for kind, words in KINDS.items():
            line += (f" | {c('old', kind) * 1e3:>{max(len(words) + 4, 9)}.2f}{c('new', kind) * 1e3:>6.2f}"
                     f"{c('old', kind) / c('new', kind):>6.2f}")
        print(line + f" | {c('naive') * 1e3:>7.1f}{c('naive') / c('new', 'lesion'):>9.0f}x")


def main() -> None:
    warnings.simplefilter("ignore")
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    rows = [measure(name, vertebra, organs) for name, vertebra, organs in cases(data)]
    for clock in CLOCKS:
        print_table(rows, clock)
    for r in rows:
        print(f"{r['name']}: lesion-canal clearance old {r['old', 'canal']:.6f} mm, new {r['new', 'canal']:.6f} mm; "
              f"verdicts old/new " + ", ".join(f"{KINDS[k]} {r['old', k, 'verdict']}/{r['new', k, 'verdict']}" for k in KINDS))
    l4 = next(r for r in rows if r["name"] == "VHM L4")
    run = robustness_run(l4, np.random.default_rng(17))
    for engine in ("new", "old"):
        print(f"robustness run on VHM L4 ({engine}): check_paths on {ROBUSTNESS_PATHS} sampled paths with lesions, "
              f"median per path {run['wall', engine] * 1e3:.2f} ms wall, {run['cpu', engine] * 1e3:.2f} ms cpu "
              f"({run['passes', engine]} pass)")
    print(f"robustness ratio old / new per path: {run['cpu', 'old'] / run['cpu', 'new']:.2f} (cpu), "
          f"{run['wall', 'old'] / run['wall', 'new']:.2f} (wall)")


if __name__ == "__main__":
    main()
