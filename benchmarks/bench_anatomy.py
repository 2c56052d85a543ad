"""Runtime of find_anatomy against mesh size, on the real VHM L4 resampled to about 5k, 20k and
100k faces (decimated with VTK / subdivided with trimesh). Prints the median of a few runs per size
and the ratio to the 5k-face median measured in the same run.

Run: python benchmarks/bench_anatomy.py [path/to/shared/data/vhm_lumbar/L4_whole.stl]
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import trimesh

from bvn_plan import Vertebra
from bvn_plan.anatomy import find_anatomy
from bvn_plan.geometry import polydata_to_trimesh, trimesh_to_polydata

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar" / "L4_whole.stl"
SIZES = (5_000, 20_000, 100_000)
REPEATS = 5


def resample(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """``mesh`` with about ``faces`` faces: subdivided until larger, then decimated (VTK)."""
    while len(mesh.faces) < faces:
        mesh = mesh.subdivide()
    reduced = trimesh_to_polydata(mesh).decimate_pro(1.0 - faces / len(mesh.faces), preserve_topology=True)
    return polydata_to_trimesh(reduced, process=True)


def main() -> None:
    warnings.simplefilter("ignore")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    base = Vertebra.load(path, level="L4").mesh
    medians = {}
    for size in SIZES:
        vertebra = Vertebra.from_mesh(resample(base, size), level="L4")
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            find_anatomy(vertebra)
            times.append(time.perf_counter() - start)
        medians[size] = statistics.median(times)
        print(f"{len(vertebra.mesh.faces):>7d} faces: median {medians[size]:.3f} s "
              f"(x{medians[size] / medians[SIZES[0]]:.2f} of the {SIZES[0]}-face median)")


if __name__ == "__main__":
    main()
