"""The exact point-mesh distance engines considered for the checker (issue 17), on the same queries.

VHM L4 (8.7k faces), 642 points scattered within 3 mm of its surface (as many as a lesion's check
samples): median wall and CPU time per batch of each engine with its tree prebuilt where it can be,
its tree build time, and its largest distance error against the least of the float64 engines'
distances (trimesh's candidate faces can miss the nearest by under a micrometre; a float32 engine is
off by its rounding). Engines not installed are listed as such: only libigl is a dependency
(``pip install fcpw point-cloud-utils`` to include the others).

Run: python benchmarks/bench_distance_engines.py [path/to/shared/data/vhm_lumbar/L4_whole.stl]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import trimesh

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar" / "L4_whole.stl"
POINTS, REPEATS = 642, 7


def engines(mesh: trimesh.Trimesh):
    """(name, build, query) of each engine: ``query(state, points)`` gives unsigned distances (mm)."""
    V = np.ascontiguousarray(mesh.vertices, float)
    F = np.ascontiguousarray(mesh.faces, np.int64)

    def igl_tree():
        import igl

        tree = igl.AABB()
        tree.init(V, F)
        return tree

    def fcpw_scene():
        import fcpw

        scene = fcpw.scene_3D()
        scene.set_object_count(1)
        scene.set_object_vertices(np.asfortranarray(V, np.float32), 0)
        scene.set_object_triangles(np.asfortranarray(F, np.int32), 0)
        scene.build(fcpw.aggregate_type.bvh_surface_area, True)
        return scene

    def fcpw_query(scene, points):
        import fcpw

        found = fcpw.interaction_3D_list()
        scene.find_closest_points(np.asfortranarray(points, np.float32), np.full(len(points), np.inf, np.float32), found)
        return np.array([i.d for i in found])

    def vtk_implicit():
        import pyvista as pv
        import vtk

        implicit = vtk.vtkImplicitPolyDataDistance()
        implicit.SetInput(pv.wrap(mesh))
        return implicit

    def vtk_query(implicit, points):
        from vtk.util.numpy_support import numpy_to_vtk, vtk_to_numpy
        import vtk

        out = vtk.vtkDoubleArray()
        out.SetNumberOfTuples(len(points))
        implicit.FunctionValue(numpy_to_vtk(points, deep=True), out)
        return np.abs(vtk_to_numpy(out))

    def igl_per_call(_, points):
        import igl

        return np.sqrt(igl.point_mesh_squared_distance(points, V, F)[0])

    def pcu_query(_, points):
        import point_cloud_utils as pcu

        return pcu.closest_points_on_mesh(points, V, F)[0]

    return [("libigl igl.AABB (prebuilt)", igl_tree, lambda t, p: np.sqrt(t.squared_distance(V, F, p)[0])),
            ("libigl point_mesh_squared_distance", lambda: None, igl_per_call),
            ("point-cloud-utils closest_points_on_mesh", lambda: None, pcu_query),
            ("fcpw BVH (float32)", fcpw_scene, fcpw_query),
            ("VTK vtkImplicitPolyDataDistance", vtk_implicit, vtk_query),
            ("trimesh.proximity (baseline)", lambda: None, lambda _, p: trimesh.proximity.closest_point(mesh, p)[1])]


def main() -> None:
    warnings.simplefilter("ignore")
    mesh = trimesh.load(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    rng = np.random.default_rng(0)
    v = rng.integers(len(mesh.vertices), size=POINTS)
    points = np.ascontiguousarray(mesh.vertices[v] + mesh.vertex_normals[v] * rng.uniform(-3, 3, (POINTS, 1)))
    rows, found = [], {}
    for name, build, query in engines(mesh):
        try:
            build()  # the first build also imports the library
            start = time.perf_counter()
            state = build()
            built = time.perf_counter() - start
            wall, found[name] = median_time(lambda: query(state, points), REPEATS)
            cpu, _ = median_time(lambda: query(state, points), REPEATS, time.process_time)
        except ImportError as exc:
            rows.append(f"{name:<42} not installed ({exc.name})")
            continue
        rows.append((name, built, wall, cpu))
    least = np.min(np.stack([d for name, d in found.items() if "float32" not in name]), axis=0)
    print(f"VHM L4, {len(mesh.faces)} faces, {POINTS} points within 3 mm of the surface; medians of {REPEATS}")
    print(f"{'engine':<42}{'build ms':>9}{'wall ms':>9}{'cpu ms':>8}{'us/point':>9}{'max error mm':>14}")
    for row in rows:
        if isinstance(row, str):
            print(row)
            continue
        name, built, wall, cpu = row
        error = np.abs(found[name] - least).max()
        print(f"{name:<42}{built * 1e3:>9.1f}{wall * 1e3:>9.2f}{cpu * 1e3:>8.2f}{cpu / POINTS * 1e6:>9.2f}{error:>14.1e}")


if __name__ == "__main__":
    main()
