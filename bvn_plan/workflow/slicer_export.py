"""3D Slicer files for one planned level: markups (``.mrk.json``) and meshes (``.stl``) that overlay
the input (a CT and its labelmap, or the vertebra mesh) when loaded into Slicer.

Frames (all millimetres):

* **markups** are written in the input's patient frame (``coordinateSystem`` ``RAS`` for a NIfTI
  labelmap, ``RAS`` or ``LPS`` as given for meshes). A mesh with no patient frame is shown by
  Slicer >= 4.11 as if its coordinates were LPS, so its markups say ``LPS`` with the mesh's own
  coordinates, which overlays them on that mesh;
* **meshes** are converted to **LPS** and their binary STL header says ``SPACE=LPS``: Slicer
  >= 4.11 reads the header (``vtkMRMLModelStorageNode``) and, without one, assumes LPS too, so
  the models land in the right place either way.

Inputs in other units than mm are written in mm (Slicer's unit); the plan.json keeps the input's.

**Scene.** ``scene/<level>.mrml`` opens everything at once in Slicer (File > Load Scene, or drag the
``.mrml`` onto Slicer): the vertebra (translucent), its safety zones (endplates, posterior wall),
the canal, the lesion and the instrument tube in the colours of the pictures
(:mod:`bvn_plan.viz.scene`), read as LPS (``coordinateSystem="LPS"``), and each markups node from
its own file beside the scene (a Slicer scene stores one node per markups file). Without the scene,
drag the ``slicer/`` folder's ``.stl`` files and ``<level>.mrk.json`` onto Slicer: the same
geometry in Slicer's default colours.
Nodes: one Curve (curved cannula) or Line (straight) per planned trajectory, the recommended one
first (so ``bvn-plan check --markups`` without ``--name`` judges it), named ``L4_R_transpedicular``;
one Fiducial list ``L4_points`` with ``L4_R_entry`` (bone entry), ``L4_R_skin_side`` (path start),
``L4_R_target`` (tip), ``L4_BVN_terminus`` and ``L4_basivertebral_foramen``.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import trimesh

from ..atomic import write_bytes_atomic
from ..coordinates import convert_points
from .markups import Markup, write_markups
from ..planning.planner import LevelPlan, PathPlan

#: Segments around the circumference of the exported instrument tube.
TUBE_SECTIONS = 16
#: Colours (RGB 0-1) of the recommended trajectory and of the other planned ones.
RECOMMENDED_COLOR = (0.12, 0.44, 0.88)
OTHER_COLOR = (0.6, 0.6, 0.6)
POINT_COLOR = (1.0, 0.84, 0.0)
SIDE_LETTER = {"right": "R", "left": "L"}
#: Control-point spacing (mm) of an exported curved path along its straight part and its arc.
CURVE_STRAIGHT_STEP_MM = 10.0
CURVE_ARC_STEP_MM = 2.0
#: MRML element of each markups type.
MRML_MARKUP_TAGS = {"Fiducial": "MarkupsFiducial", "Line": "MarkupsLine", "Curve": "MarkupsCurve"}


def slicer_frame(vertebra) -> str:
    """The patient frame markups are written in (the input's, LPS when it has none)."""
    return vertebra.patient_frame or "LPS"


def level_markups(level_plan: LevelPlan, vertebra, recommended: PathPlan | None = None) -> list[Markup]:
    """The markups of one level (see the module docstring); points mm in :func:`slicer_frame`.

    ``recommended``: the plan to list first and to name the points of (default: the planner's).
    """
    frame = slicer_frame(vertebra)
    level = level_plan.level
    recommended = recommended or level_plan.recommendation
    plans = [r.plan for r in level_plan.results if r.plan is not None]
    plans.sort(key=lambda p: p is not recommended)
    nodes = []
    for plan in plans:
        points = plan.path.vertices if plan.path.arc_start is None else _curve_points(plan)
        kind = "Line" if len(points) == 2 else "Curve"
        name = f"{level}_{SIDE_LETTER[plan.side]}_{plan.approach.replace('-', '_')}"
        labels = [f"{name}_start"] + [f"{name}_{i}" for i in range(1, len(points) - 1)] + [f"{name}_tip"]
        nodes.append(Markup(kind, name, points, frame, labels=labels,
                            descriptions=[f"{plan.approach} {plan.side}, checker verdict {plan.verdict}"] * len(points),
                            color=RECOMMENDED_COLOR if plan is recommended else OTHER_COLOR))
    lm = level_plan.landmarks
    names, points = [f"{level}_BVN_terminus", f"{level}_basivertebral_foramen"], [lm.bvn_terminus,
                                                                                   lm.basivertebral_foramen]
    if recommended is not None:
        s = SIDE_LETTER[recommended.side]
        names = [f"{level}_{s}_skin_side", f"{level}_{s}_entry", f"{level}_{s}_target"] + names
        points = [recommended.path.start, recommended.numbers["bone_entry_point"], recommended.path.tip] + points
    nodes.append(Markup("Fiducial", f"{level}_points", np.asarray(points, float), frame, labels=names,
                        color=POINT_COLOR))
    return nodes


def level_meshes(level_plan: LevelPlan, vertebra, recommended: PathPlan | None = None) -> dict[str, trimesh.Trimesh]:
    """Surfaces of one level in model coordinates (mm): the vertebra, its safety zones (faces of its
    surface, bvn_plan.viz.scene.ZONE_REGIONS), the canal volume found by the anatomy, and for the recommended plan its lesion
    and instrument tube."""
    recommended = recommended or level_plan.recommendation
    from ..viz.scene import bone_and_zones  # the zones as the pictures draw them (pyvista)

    meshes = {"vertebra": vertebra.mesh, **bone_and_zones(vertebra.mesh, level_plan.landmarks)[1]}
    if level_plan.landmarks.canal_mesh is not None:
        meshes["canal"] = level_plan.landmarks.canal_mesh
    if recommended is not None:
        meshes["lesion"] = recommended.lesion.surface_mesh()
        meshes["path"] = path_tube(recommended.path.vertices, recommended.path.radius_mm)
    return meshes


def write_level(level_plan: LevelPlan, vertebra, folder: str | os.PathLike,
                recommended: PathPlan | None = None) -> dict[str, Path]:
    """Write ``<level>.mrk.json``, ``<level>_<part>.stl`` (LPS, ``SPACE=LPS``) and the scene
    ``scene/<level>.mrml`` with its markups files into ``folder`` (which must exist); every file
    atomically. Returns the written paths by name."""
    folder = Path(folder)
    level = level_plan.level
    markups = level_markups(level_plan, vertebra, recommended)
    written = {"markups": write_markups(folder / f"{level}.mrk.json", markups)}
    for part, mesh in level_meshes(level_plan, vertebra, recommended).items():
        written[part] = write_stl_lps(folder / f"{level}_{part}.stl", mesh, slicer_frame(vertebra))
    written["scene"] = write_scene(folder / "scene", level, {k: v for k, v in written.items() if k != "markups"},
                                   markups)
    return written


def write_scene(folder: Path, level: str, models: dict[str, Path], markups: list[Markup]) -> Path:
    """Write ``folder/<level>.mrml`` (see the module docstring) showing the ``models`` (part name ->
    LPS STL) in their colours and the ``markups``, each node into ``folder/<node>.mrk.json``."""
    folder.mkdir(exist_ok=True)
    nodes = []
    for i, (part, path) in enumerate(models.items(), start=1):
        colour, opacity = _part_look(part)
        nodes += [f' <ModelDisplay id="vtkMRMLModelDisplayNode{i}" name="{level}_{part} display" '
                  f'color="{_rgb(colour)}" opacity="{opacity:g}" visibility="true" '
                  'sliceIntersectionVisibility="true" scalarVisibility="false" />',
                  f' <ModelStorage id="vtkMRMLModelStorageNode{i}" name="{level}_{part} storage" '
                  f'fileName="{escape(os.path.relpath(path, folder))}" coordinateSystem="LPS" />',
                  f' <Model id="vtkMRMLModelNode{i}" name="{level}_{part}" '
                  f'references="display:vtkMRMLModelDisplayNode{i};storage:vtkMRMLModelStorageNode{i};" />']
    for i, markup in enumerate(markups, start=1):
        write_markups(folder / f"{markup.name}.mrk.json", [markup])
        colour = " ".join(f"{c:g}" for c in markup.color)
        nodes += [f' <MarkupsDisplay id="vtkMRMLMarkupsDisplayNode{i}" name="{markup.name} display" '
                  f'color="{colour}" selectedColor="{colour}" visibility="true" />',
                  f' <MarkupsJsonStorage id="vtkMRMLMarkupsJsonStorageNode{i}" name="{markup.name} storage" '
                  f'fileName="{escape(markup.name)}.mrk.json" />',
                  f' <{MRML_MARKUP_TAGS[markup.type]} id="vtkMRML{MRML_MARKUP_TAGS[markup.type]}Node{i}" '
                  f'name="{escape(markup.name)}" references="display:vtkMRMLMarkupsDisplayNode{i};'
                  f'storage:vtkMRMLMarkupsJsonStorageNode{i};" />']
    text = '<?xml version="1.0" encoding="UTF-8"?>\n<MRML version="Slicer4.11.0" userTags="">\n' + \
        "\n".join(nodes) + "\n</MRML>\n"
    return write_bytes_atomic(folder / f"{level}.mrml", text.encode("utf-8"))


def _part_look(part: str) -> tuple[str, float]:
    """Colour (hex) and opacity of a scene part, as the pictures draw it (bvn_plan.viz.scene)."""
    from ..viz.scene import BONE_COLOUR, CANAL_COLOUR, CANNULA_COLOUR, LESION_COLOUR, ZONE_COLOURS  # pyvista

    looks = {"vertebra": (BONE_COLOUR, 0.3), "canal": (CANAL_COLOUR, 0.35), "lesion": (LESION_COLOUR, 0.45),
             "path": (CANNULA_COLOUR, 1.0)}
    looks.update({zone: (colour, 0.55) for zone, colour in ZONE_COLOURS.items()})
    return looks[part]


def _rgb(hex_colour: str) -> str:
    return " ".join(f"{int(hex_colour[i:i + 2], 16) / 255:.3f}" for i in (1, 3, 5))


def write_stl_lps(path: str | os.PathLike, mesh: trimesh.Trimesh, frame: str) -> Path:
    """Write ``mesh`` (mm, patient frame ``frame``) as a binary STL in LPS whose 80-byte header
    carries ``SPACE=LPS``, as Slicer >= 4.11 writes and reads it."""
    lps = trimesh.Trimesh(convert_points(mesh.vertices, frame, "LPS"), mesh.faces, process=False)
    # the RAS <-> LPS flip (x, y -> -x, -y) is a rotation: the faces keep their outward winding
    header = b"bvn-plan output. SPACE=LPS".ljust(80, b" ")
    data = trimesh.exchange.stl.export_stl(lps)
    return write_bytes_atomic(path, header + data[80:])


def path_tube(vertices: np.ndarray, radius: float, sections: int = TUBE_SECTIONS) -> trimesh.Trimesh:
    """A closed tube of ``radius`` (mm) around a polyline (mm): rings at the vertices with
    rotation-minimising frames, capped at both ends."""
    vertices = np.asarray(vertices, float)
    tangents = np.gradient(vertices, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1)[:, None]
    seed = np.eye(3)[np.argmin(np.abs(tangents[0]))]
    normal = np.cross(tangents[0], seed)
    normal /= np.linalg.norm(normal)
    angles = 2 * np.pi * np.arange(sections) / sections
    rings = []
    for t in tangents:
        normal = normal - (normal @ t) * t
        normal /= np.linalg.norm(normal)
        binormal = np.cross(t, normal)
        rings.append(np.cos(angles)[:, None] * normal + np.sin(angles)[:, None] * binormal)
    points = np.vstack([v + radius * ring for v, ring in zip(vertices, rings)] + [vertices[[0, -1]]])
    n, k = len(vertices), sections
    faces = []
    for i in range(n - 1):
        for j in range(k):
            a, b, c, d = i * k + j, i * k + (j + 1) % k, (i + 1) * k + j, (i + 1) * k + (j + 1) % k
            faces += [[a, c, b], [b, c, d]]
    start, end = n * k, n * k + 1
    faces += [[start, j, (j + 1) % k] for j in range(k)]
    faces += [[end, (n - 1) * k + (j + 1) % k, (n - 1) * k + j] for j in range(k)]
    tube = trimesh.Trimesh(points, np.asarray(faces), process=False)
    if tube.volume < 0:
        tube.invert()
    return tube


def _curve_points(plan: PathPlan) -> np.ndarray:
    """Control points of a curved path: the straight part every ``CURVE_STRAIGHT_STEP_MM`` and the
    arc every ``CURVE_ARC_STEP_MM`` (Slicer draws a spline through them; dense enough that it stays
    on the path: the 2 mm chords of a 15 mm arc sag 0.03 mm), plus the path sample just before the
    tip so the last segment keeps the planned tip direction (the lesion axis)."""
    vertices = plan.path.vertices
    start, arc = vertices[0], vertices[1:]
    straight = np.linalg.norm(arc[0] - start)
    n = max(1, int(np.ceil(straight / CURVE_STRAIGHT_STEP_MM)))
    line = start + np.linspace(0.0, 1.0, n + 1)[:-1, None] * (arc[0] - start)
    step = max(1, int(round(CURVE_ARC_STEP_MM / max(np.linalg.norm(np.diff(arc, axis=0), axis=1).mean(), 1e-6))))
    keep = sorted(set(range(0, len(arc), step)) | {len(arc) - 2, len(arc) - 1})  # the last sample keeps the tip direction
    return np.vstack([line, arc[[k for k in keep if k >= 0]]])
