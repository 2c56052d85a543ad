"""Latency of one trajectory check (issue 4): the median time of check_path on the planner's
transpedicular path with its lesion, after the one-time SafetyZones set-up, against a naive baseline measured in
the same run: exact trimesh distances from every path and lesion sample to every zone mesh, per
check (no grid, no candidate pruning). Also the set-up time and the agreement of the two.

VHM L2 by default: the planner refuses L4, whose pedicles the anatomy does not recognise.

Run: python benchmarks/bench_check.py [path/to/shared/data/vhm_lumbar/L2_whole.stl] [LEVEL]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import trimesh

from bvn_plan import SafetyZones, Vertebra, check_path, find_anatomy, plan_level

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar" / "L2_whole.stl"


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


def main() -> None:
    warnings.simplefilter("ignore")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    vertebra = Vertebra.load(path, level=sys.argv[2] if len(sys.argv) > 2 else "L2")
    found = find_anatomy(vertebra)
    SafetyZones(vertebra.mesh, found)  # warm-up: first VTK import
    setup, zones = median_time(lambda: SafetyZones(vertebra.mesh, found), 5)

    # a realistic case: the planner's curved transpedicular path and its lesion
    planned = plan_level(vertebra, found, approaches=("transpedicular",), zones=zones).recommendation
    instrument, lesion = planned.path, planned.lesion
    lesion_points = lesion.surface_mesh(subdivisions=3).vertices
    bare, _ = median_time(lambda: check_path(zones, instrument), 50)
    fast, result = median_time(lambda: check_path(zones, instrument, lesion=lesion), 50)
    naive, exact = median_time(lambda: naive_check(vertebra, found, instrument, lesion_points), 5)

    reported = result.clearances["spinal_canal:instrument"].clearance_mm
    truth = float(exact["canal"].min() - instrument.radius_mm)
    print(f"mesh: {path.name}, {len(vertebra.mesh.faces)} faces; path {instrument.length:.0f} mm, "
          f"{len(instrument.sample().points)} samples; lesion {len(lesion_points)} surface points")
    print(f"set-up (SafetyZones) median: {setup * 1e3:.0f} ms")
    print(f"one check (all zones, instrument only) median: {bare * 1e3:.2f} ms")
    print(f"one check (all zones, with lesion) median: {fast * 1e3:.2f} ms")
    print(f"naive exact-distance baseline median:    {naive * 1e3:.1f} ms  -> ratio {naive / fast:.0f}x")
    print(f"canal clearance: checker {reported:.4f} mm, naive exact {truth:.4f} mm")
    lesion_reported = result.clearances["spinal_canal:lesion"].clearance_mm
    print(f"lesion-canal clearance: checker {lesion_reported:.4f} mm, naive exact {exact['canal_lesion'].min():.4f} mm "
          "(unsigned)")


if __name__ == "__main__":
    main()
