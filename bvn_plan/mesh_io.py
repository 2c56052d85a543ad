"""Reading vertebra surfaces from files and checking they are usable.

Every mesh leaves this module in **millimetres**, in the file's own coordinates scaled to mm
("model coordinates"), as one watertight-if-possible triangle surface with outward normals.
A file that names its patient frame (3D Slicer >= 4.11 writes ``SPACE=LPS`` or ``SPACE=RAS`` in a
binary STL's 80-byte header or in a comment at the top of an OBJ, PLY or ASCII STL; bvn-plan's own
STL exports do the same) is read in that frame: :func:`file_patient_frame`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
import trimesh

from .coordinates import UNITS_TO_MM, normalise_patient_frame
from .errors import InputError, note
from .geometry.meshing import polydata_to_trimesh
from .geometry.self_intersection import self_intersections


#: Largest extent (mm) of a plausible single lumbar vertebra or sacrum. A lumbar vertebra is
#: about 40-100 mm across; a whole sacrum up to about 170 mm.
VERTEBRA_EXTENT_MM = (25.0, 250.0)

#: Coordinates beyond this magnitude cannot be a vertebra in any accepted unit (a km in mm): the
#: file is damaged (e.g. flipped bits in a binary float).
MAX_COORDINATE = 1e6

#: Face count above which a mesh is far denser than planning needs (the VHM vertebrae have ~9k
#: faces). Measured on VHM L4 subdivided to 2.2M faces: cleaning 15 s, anatomy 51 s, 2.6 GB.
DENSE_MESH_FACES = 500_000

TRIMESH_FORMATS = (".stl", ".obj", ".ply", ".off", ".glb", ".gltf")
PYVISTA_FORMATS = (".vtk", ".vtp", ".vtu")
MESH_FORMATS = TRIMESH_FORMATS + PYVISTA_FORMATS


#: Bytes read from the top of a file for a ``SPACE=`` frame tag (an STL's header is 80 bytes).
FRAME_TAG_BYTES = 4096
_FRAME_TAG = re.compile(rb"SPACE\s*=\s*(RAS|LPS)\b", re.IGNORECASE)


@dataclass
class LoadReport:
    """What loading did to the mesh: units decided, repairs made, things to tell the user."""

    units: str
    units_detected: bool
    notes: list[str] = field(default_factory=list)


def read_mesh_file(path: str | os.PathLike) -> trimesh.Trimesh:
    """Read a triangle surface from ``path`` without judging it (any units, any frame)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"mesh file not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder; give one mesh file ({', '.join(MESH_FORMATS)})")
    ext = os.path.splitext(path)[1].lower()
    if ext not in MESH_FORMATS:
        raise InputError(
            f"cannot read {path}: unsupported format {ext or '(no extension)'}; "
            f"use one of {', '.join(MESH_FORMATS)}"
        )
    if os.path.getsize(path) == 0:
        raise InputError(f"mesh file {path} is empty (0 bytes)")
    try:
        if ext in PYVISTA_FORMATS:
            return _read_with_pyvista(path)
        loaded = trimesh.load(path, force="mesh", process=False)
    except InputError:
        raise
    except Exception as exc:  # the readers raise many types on corrupt files
        raise InputError(f"cannot read {path} as {ext[1:].upper()}: {exc}. Is the file complete?") from exc
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(f"{path} holds no triangles: it is not a surface mesh")
    return loaded


def file_patient_frame(path: str | os.PathLike) -> str | None:
    """The patient frame ("RAS" or "LPS") a mesh file names in a ``SPACE=`` tag at its top (a binary
    STL's header, a comment of an OBJ, PLY or ASCII STL), or None when it names none."""
    with open(path, "rb") as file:
        top = file.read(FRAME_TAG_BYTES)
    if os.fspath(path).lower().endswith(".stl") and not top.lstrip().lower().startswith(b"solid"):
        top = top[:80]  # binary STL: only the header is text
    elif os.fspath(path).lower().endswith(".ply"):
        top = top.split(b"end_header", 1)[0]
    elif not os.fspath(path).lower().endswith((".obj", ".stl")):
        return None
    found = _FRAME_TAG.search(top)
    return normalise_patient_frame(found.group(1).decode()) if found else None


def _read_with_pyvista(path: str) -> trimesh.Trimesh:
    import pyvista as pv  # here, not at the top: keeps pyvista out of `import bvn_plan`

    data = pv.read(path)
    surface = data.extract_surface(algorithm=None) if not isinstance(data, pv.PolyData) else data
    surface = surface.triangulate()
    if surface.n_cells == 0:
        raise InputError(f"{path} holds no surface cells: it is not a surface mesh")
    return polydata_to_trimesh(surface)


def clean_mesh(mesh: trimesh.Trimesh, units: str | None = None, source: str = "mesh") -> tuple[trimesh.Trimesh, LoadReport]:
    """Check and repair a surface and convert it to millimetres.

    ``units`` is the unit of the input coordinates (mm, cm, m, in) or ``None`` to detect it from
    the size of the vertebra. Raises :class:`InputError` for meshes that cannot be a vertebra.
    """
    vertices = np.asarray(mesh.vertices, dtype=float)
    faces = np.asarray(mesh.faces)
    if len(vertices) == 0 or len(faces) == 0:
        raise InputError(f"{source} is empty: no vertices or no faces")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"{source} has vertices of shape {vertices.shape[1:]}, not 3 coordinates each: the "
                         "file is damaged; re-export it")
    if not np.all(np.isfinite(vertices)):
        bad = int((~np.isfinite(vertices)).any(axis=1).sum())
        raise InputError(
            f"{source} has {bad} vertices with NaN or infinite coordinates; re-export the mesh "
            "from its source (segmentation or CAD) without them"
        )
    if np.abs(vertices).max() > MAX_COORDINATE:
        raise InputError(f"{source} has coordinates up to {np.abs(vertices).max():.3g}, far beyond any vertebra "
                         "in mm, cm, m or inches: the file is damaged; re-export it")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"{source} has faces that are not triangles of its own vertices (shape {faces.shape}, "
                         f"indices {faces.min()}..{faces.max()} for {len(vertices)} vertices): the file is "
                         "damaged; re-export it")
    notes: list[str] = []
    if len(faces) > DENSE_MESH_FACES:
        note(notes, f"{source} has {len(faces)} faces, far more than planning needs: expect about a minute "
                    "and a few GB of memory per million faces; decimate it to ~100k faces for speed")
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    # Per-face-normal OBJ/STL exports duplicate every vertex: merge by position.
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    nondegenerate = mesh.nondegenerate_faces(height=1e-9 * max(mesh.scale, 1e-12))
    if not nondegenerate.all():
        note(notes, f"{source}: removed {int((~nondegenerate).sum())} degenerate (zero-area) faces")
        mesh.update_faces(nondegenerate)
    unique = mesh.unique_faces()
    if len(unique) < len(mesh.faces):
        note(notes, f"{source}: removed {len(mesh.faces) - len(unique)} duplicate faces")
        mesh.update_faces(unique)
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) < 4:
        raise InputError(f"{source} has fewer than 4 usable faces: it cannot enclose a vertebra")

    mesh = _single_component(mesh, source, notes)
    unit_name, detected = _decide_units(mesh, units, source, notes)
    scale = UNITS_TO_MM[unit_name]
    if scale != 1.0:
        mesh.apply_scale(scale)
    extent = float(mesh.extents.max())
    lo, hi = VERTEBRA_EXTENT_MM
    if not lo <= extent <= hi:
        raise InputError(
            f"{source} is {extent:.1f} mm across after reading it as {unit_name}: a lumbar "
            f"vertebra is {lo:.0f}-{hi:.0f} mm across. Check the --units option"
        )

    if len(mesh.faces) > DENSE_MESH_FACES:
        note(notes, f"{source}: not checked for self-intersections (too dense)")
    else:
        crossing = self_intersections(mesh)
        if len(crossing):
            where = np.round(mesh.triangles_center[crossing[:, 0]].mean(axis=0), 1).tolist()
            note(notes, f"{source}: the surface crosses itself ({len(crossing)} pairs of faces, around {where} mm "
                        "in model coordinates): inside and outside are ambiguous there, so the anatomy and the "
                        "clearances near it are unreliable; repair the mesh (e.g. remesh it) before planning")
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
        if mesh.is_watertight:
            note(notes, f"{source}: small holes in the surface were filled")
        else:
            note(notes, f"{source}: the surface is not watertight (open holes remain); inside/outside tests are approximate")
    trimesh.repair.fix_normals(mesh)
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh, LoadReport(unit_name, detected, notes)


def _single_component(mesh: trimesh.Trimesh, source: str, notes: list[str]) -> trimesh.Trimesh:
    parts = mesh.split(only_watertight=False)
    if len(parts) <= 1:
        return mesh
    areas = np.array([p.area for p in parts])
    order = np.argsort(areas)[::-1]
    large = [i for i in order if areas[i] >= 0.2 * areas[order[0]]]
    if len(large) > 1:
        raise InputError(
            f"{source} holds {len(large)} separate large pieces (surface areas "
            f"{', '.join(f'{areas[i]:.0f}' for i in large)}): it looks like several vertebrae in one "
            "file. Give one vertebra per file (or mesh each level of a labelmap separately)"
        )
    note(notes, f"{source}: kept the largest piece and dropped {len(parts) - 1} small fragment(s)")
    return parts[order[0]]


def _decide_units(mesh: trimesh.Trimesh, units: str | None, source: str, notes: list[str]) -> tuple[str, bool]:
    if units is not None:
        name = str(units).strip().lower()
        if name not in UNITS_TO_MM:
            raise InputError(f"unknown units {units!r}: use one of {', '.join(UNITS_TO_MM)}")
        return name, False
    extent = float(mesh.extents.max())
    lo, hi = VERTEBRA_EXTENT_MM
    if lo <= extent <= hi:
        return "mm", True
    if lo / 1000 <= extent <= hi / 1000:
        note(notes, f"{source} is {extent:.3g} units across: read as METRES and converted to mm "
                    "(pass --units to override)")
        return "m", True
    raise InputError(
        f"{source} is {extent:.4g} units across, which is no vertebra size in mm ({lo:.0f}-{hi:.0f}) "
        "or metres; if it is in cm or inches pass --units cm / --units in"
    )
