"""The 3D scene of a plan (pyvista): the vertebra, its safety zones coloured by their clearance
from the plan, the canal, the instruments, the lesions and the named points.

What is drawn (all geometry in mm, model coordinates):

* the vertebra, opaque or semi-transparent (``transparent=True``);
* the safety zones: the superior and inferior endplates and the posterior wall (faces of the
  vertebra from ``landmarks.face_regions``), the extrapedicular entry windows of the rule
  ``bone_entry_window`` (green faces of the lateral wall, :mod:`bvn_plan.planning.approach`) and the spinal canal volume (``landmarks.canal_mesh``,
  always semi-transparent). With instruments or lesions they are coloured by their **clearance
  from the plan** (:func:`plan_clearance`, mm, red = close, dark red = breached) with a colour
  bar; without, in fixed highlight colours;
* the soft tissue modelled from the bone (:mod:`bvn_plan.planning.soft_tissue`: the zones of the
  aorta, vena cava, iliac vessels, psoas and kidneys this level has), each as its outline in its
  colour, labelled "(modelled)"; they do not widen the camera's view, which fits the vertebra and the plan;
* each instrument as a tube of its true radius: the straight introducer in steel grey, the
  curved cannula in blue; each lesion's surface in translucent orange;
* markers with labels: the bone entry and the target (tip) of every instrument, the BVN terminus
  and the basivertebral foramen (not at S1, which has none); with ``clearances`` (a safety
  ``CheckResult`` or its ``clearances`` dict) the points of the smallest clearances with their
  values. In a picture (:func:`scene_picture`) the labels are boxes placed in screen space with
  leader lines, never overlapping, with an orientation marker and a scale bar
  (:mod:`bvn_plan.viz.annotate`); the camera is a parallel projection, so the scale bar holds
  across the picture.

Cameras are named in the vertebra frame and match the fluoroscopic views of
:mod:`bvn_plan.viz.fluoro`: ``"ap"`` seen from in front (patient's right on the image left),
``"lateral"`` seen from the patient's left (anterior on the image left), ``"axial"`` seen from
above (anterior up), ``"oblique"`` from behind, right and above (the view along a right
transpedicular approach). ``build_scene(vertebra, landmarks, plan, SceneView(off_screen=False)).show()``
opens a window.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# With no display, render through EGL directly instead of trying X first (VTK reads this when it
# makes a window; a machine with a display keeps its default, interactive window).
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import pyvista as pv  # noqa: E402
import trimesh  # noqa: E402
from scipy.spatial import cKDTree

from ..errors import InputError
from ..landmarks import Landmarks
from ..lesion import EllipsoidLesion
from ..paths import InstrumentPath
from ..planning.approach import ApproachGeometry
from ..planning.soft_tissue import ZONE_NAMES as MODELLED_ZONE_NAMES
from ..planning.soft_tissue import ModelledZones
from .annotate import Overlay, PointLabel, annotate
from .fluoro import write_png

CAMERAS = ("oblique", "ap", "lateral", "axial")
#: Camera direction (from the focal point, in vertebra-frame components right, anterior,
#: superior) and view-up of each named camera.
_CAMERA_SETUP = {
    "ap": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "lateral": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "axial": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "oblique": ((0.8, -1.0, 0.6), (0.0, 0.0, 1.0)),
}
#: Zoom after fitting everything into the view (the fit leaves a wide border).
CAMERA_ZOOM = 1.25
#: Levels without a basivertebral foramen: S1 has no posterior nutrient foramen, its nerves enter
#: laterally [V, PMC4681698; docs/sources.md].
NO_FORAMEN_LEVELS = ("S1",)
#: Safety-zone surface regions drawn from ``landmarks.face_regions``.
ZONE_REGIONS = ("superior_endplate", "inferior_endplate", "posterior_wall")
#: Clearance colour range (mm): 0 mm (red) to this value (green); breaches below 0 are dark red.
CLEARANCE_RANGE_MM = (0.0, 15.0)
#: How many of the smallest clearances of a check to label.
N_CLEARANCE_LABELS = 3
#: Characters per line of a caption (add_caption) before it wraps.
CAPTION_WIDTH = 54
#: The clearance colour bar (pyvista scalar_bar_args), at the bottom of the scene.
SCALAR_BAR = {"title": "clearance from instrument / lesion (mm; dark red: breach)", "n_labels": 4, "fmt": "%.0f",
              "position_x": 0.25, "position_y": 0.03, "width": 0.5, "below_label": " "}

BONE_COLOUR = "#e8dcc0"
ZONE_COLOURS = {"superior_endplate": "#5b8fd9", "inferior_endplate": "#5b8fd9", "posterior_wall": "#d9825b"}
CANAL_COLOUR = "#c9a0dc"
WINDOW_COLOUR = "#00c8e6"
INTRODUCER_COLOUR = "#5a6069"
CANNULA_COLOUR = "#1f6fe0"
LESION_COLOUR = "#ff8c1a"
#: Colours of the modelled soft-tissue zones (planning.soft_tissue.ZONE_NAMES).
SOFT_TISSUE_COLOURS = {"aorta": "#b03030", "vena_cava": "#6a3d9a", "iliac_vessels": "#a0406a", "psoas": "#d98c5f",
                       "kidney": "#5a3a1a"}
#: Width (pixels) of their outlines: each zone is drawn as its silhouette only, so that it hides
#: neither the bone nor the instrument (a translucent fill tinted the cannula).
SOFT_TISSUE_LINE_WIDTH = 2.5
#: Their outlines' opacity: an outline crossing in front of the instrument lets it show through.
SOFT_TISSUE_LINE_OPACITY = 0.6
MARKER_COLOURS = {"entry": "#2ca02c", "target": "#d62728", "terminus": "#ffd700", "foramen": "#9467bd",
                  "clearance": "#ffffff", "window": WINDOW_COLOUR, **SOFT_TISSUE_COLOURS}
#: The words captions use for the marker colours (one home, so text and picture agree).
MARKER_COLOUR_NAMES = {"entry": "green", "target": "red", "terminus": "yellow", "foramen": "purple",
                       "clearance": "white", "window": "cyan", "aorta": "red", "vena_cava": "purple",
                       "iliac_vessels": "purple", "psoas": "orange", "kidney": "black"}


@dataclass(frozen=True)
class ScenePlan:
    """What of a plan a scene draws (mm, model coordinates): instrument ``paths``, ``lesions``
    (objects with ``surface_mesh()`` and ``signed_distance()``, bvn_plan.lesion) and ``clearances``
    (a safety ``CheckResult`` or its ``clearances`` dict) whose smallest are labelled."""

    paths: Sequence[InstrumentPath] = ()
    lesions: Sequence = ()
    clearances: object = None


@dataclass(frozen=True)
class SceneView:
    """How a scene is shown: the named ``camera`` (CAMERAS), the vertebra ``transparent`` or not,
    the markers' text ``labels`` on or off, rendered ``off_screen`` or in a window of
    ``window_size`` (pixels). Labels are drawn in pictures only (:func:`render_scene_png`,
    :func:`scene_picture`), not in a window."""

    camera: str = "oblique"
    transparent: bool = False
    labels: bool = True
    off_screen: bool = True
    window_size: tuple[int, int] = (1024, 768)


def plan_clearance(points: np.ndarray, paths: Sequence[InstrumentPath] = (), lesions: Sequence = ()) -> np.ndarray:
    """Clearance (mm) of each point from the plan: the smallest of its distance to every
    instrument's surface (centreline distance minus radius: the instrument as a capsule, as the
    safety checker measures it) and every lesion's signed distance;
    negative inside an instrument or a lesion. Points and plan in mm, model coordinates."""
    points = np.asarray(points, dtype=float)
    best = np.full(len(points), np.inf)
    for path in paths:
        centre = path.sample(step=0.2).points
        distance, _ = cKDTree(centre).query(points)
        best = np.minimum(best, distance - path.radius_mm)
    for lesion in lesions:
        best = np.minimum(best, _lesion_distance(lesion, points, best))
    return best


def _lesion_distance(lesion, points: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``lesion.signed_distance`` (mm), computed exactly only where it can matter for the colours:
    a spheroid's distance is at least the distance to its centre minus its largest semi-axis, so
    points already nearer the instrument, or beyond the colour scale, keep that lower bound."""
    if not isinstance(lesion, EllipsoidLesion):
        return lesion.signed_distance(points)
    bound = np.linalg.norm(points - lesion.centre, axis=1) - max(lesion.half_length_mm, lesion.radius_mm)
    exact = (bound < known) & (bound < CLEARANCE_RANGE_MM[1])
    distance = bound.copy()
    if exact.any():
        distance[exact] = lesion.signed_distance(points[exact])
    return distance


def build_scene(vertebra, landmarks: Landmarks, plan: ScenePlan = ScenePlan(),
                view: SceneView = SceneView()) -> pv.Plotter:
    """A pyvista Plotter showing ``plan`` on ``vertebra`` and its ``landmarks`` as ``view`` says
    (see the module docstring for what is drawn).

    ``vertebra``: a :class:`~bvn_plan.vertebra.Vertebra` (or anything with a trimesh ``mesh``; mm,
    model coordinates); ``landmarks``: its findings or ground truth.
    """
    mesh = _checked_anatomy(vertebra, landmarks)
    paths, lesions = plan.paths, plan.lesions
    plotter = pv.Plotter(off_screen=view.off_screen, window_size=list(view.window_size))
    plotter.set_background("white")
    transparent = view.transparent
    opacity = 0.3 if transparent else 1.0

    windows = _window_faces(mesh, landmarks)
    bone, zones = bone_and_zones(mesh, landmarks, carve=list(windows.values()))
    plotter.add_mesh(pv.wrap(bone), color=BONE_COLOUR, opacity=opacity, smooth_shading=True, name="vertebra")
    for name, zone in zones.items():
        _add_zone(plotter, pv.wrap(zone), name, (ZONE_COLOURS[name], 0.55 if transparent else 1.0), plan)
    for side, faces in windows.items():
        if len(faces):
            plotter.add_mesh(pv.wrap(mesh.submesh([faces], append=True)), color=WINDOW_COLOUR, opacity=opacity,
                             name=f"extrapedicular window {side}")
    if landmarks.canal_mesh is not None:
        _add_zone(plotter, pv.wrap(landmarks.canal_mesh), "canal", (CANAL_COLOUR, 0.35), plan)
    soft = _soft_tissue(mesh, landmarks)
    for name in (soft.names if soft is not None else []):
        outline = plotter.add_silhouette(pv.wrap(soft.surface(name)), color=SOFT_TISSUE_COLOURS[name],
                                         line_width=SOFT_TISSUE_LINE_WIDTH, opacity=SOFT_TISSUE_LINE_OPACITY)
        plotter.remove_actor(outline, render=False)
        plotter.add_actor(outline, name=f"soft tissue {name}", render=False)
        outline.SetUseBounds(False)  # the camera fits the vertebra and the plan, not these wide zones

    for i, path in enumerate(paths):
        _add_instrument(plotter, path, i)
    for i, lesion in enumerate(lesions):
        plotter.add_mesh(pv.wrap(lesion.surface_mesh()), color=LESION_COLOUR, opacity=0.45, smooth_shading=True,
                         name=f"lesion {i}")

    markers = scene_markers(mesh, landmarks, plan)
    for label, (point, kind) in markers.items():
        plotter.add_mesh(pv.Sphere(radius=1.0, center=np.asarray(point, float)), color=MARKER_COLOURS[kind],
                         name=f"marker {label}")
    set_camera(plotter, landmarks, view.camera)
    return plotter


def scene_markers(vertebra, landmarks: Landmarks, plan: ScenePlan = ScenePlan()) -> dict[str, tuple[np.ndarray, str]]:
    """The named points of a scene, most important first: label -> (point, kind of MARKER_COLOURS)
    (mm, model coordinates): each instrument's target and bone entry, the BVN terminus, the
    basivertebral foramen (not at NO_FORAMEN_LEVELS), the extrapedicular entry windows and the
    smallest clearances of the check."""
    mesh = _checked_anatomy(vertebra, landmarks)
    paths, clearances = plan.paths, plan.clearances
    markers = {}
    entries = _bone_entries(mesh, paths, clearances)
    for i, path in enumerate(paths):
        suffix = f" {i + 1}" if len(paths) > 1 else ""
        markers[f"target{suffix}"] = (np.asarray(path.tip, float), "target")
        if entries[i] is not None:
            markers[f"bone entry{suffix}"] = (np.asarray(entries[i], float), "entry")
    markers["BVN terminus"] = (np.asarray(landmarks.bvn_terminus, float), "terminus")
    if landmarks.level not in NO_FORAMEN_LEVELS:
        markers["basivertebral foramen"] = (np.asarray(landmarks.basivertebral_foramen, float), "foramen")
    for side, faces in _window_faces(mesh, landmarks).items():
        if len(faces):
            markers[f"extrapedicular window ({side})"] = (mesh.triangles_center[faces].mean(axis=0), "window")
    soft = _soft_tissue(mesh, landmarks)
    for name in (soft.names if soft is not None else []):
        markers[f"{MODELLED_ZONE_NAMES[name]} (modelled)"] = (soft.label_point(name), name)
    for label, value in _smallest_clearances(clearances):
        markers[label] = (value, "clearance")
    return markers


def scene_picture(plotter: pv.Plotter, landmarks: Landmarks, markers: dict | None = None) -> np.ndarray:
    """The rendered scene (H x W x 3 uint8, row 0 at the top) with its overlay: the ``markers``
    (:func:`scene_markers`; None for no labels) labelled in screen space, the orientation marker
    and the scale bar (:mod:`bvn_plan.viz.annotate`)."""
    image = np.asarray(plotter.screenshot(return_img=True))[:, :, :3]
    labels = []
    if markers:
        pixels = world_to_pixel(plotter, np.array([point for point, _ in markers.values()]))
        labels = [PointLabel(text, tuple(pixel), MARKER_COLOURS[kind])
                  for (text, (_, kind)), pixel in zip(markers.items(), pixels)]
    focal = np.asarray(plotter.camera.focal_point, float)
    centre = world_to_pixel(plotter, focal[None])[0]
    toward = np.asarray(plotter.camera.position, float) - focal
    toward /= np.linalg.norm(toward)
    axes = {}
    for letter, vector in (("R", landmarks.frame.right), ("A", landmarks.frame.anterior), ("S", landmarks.frame.superior)):
        vector = np.asarray(vector, float) / np.linalg.norm(vector)
        row, col = (world_to_pixel(plotter, (focal + vector)[None])[0] - centre)
        shown = np.array([row, col]) / max(_px_per_mm(plotter), 1e-9)
        axes[letter] = (shown[0], shown[1], float(vector @ toward))
    return annotate(image, Overlay(labels, axes, 1.0 / _px_per_mm(plotter), _keep_out(plotter)))


def _px_per_mm(plotter: pv.Plotter) -> float:
    """Pixels per mm of the parallel camera (its parallel scale is half the view's height)."""
    return plotter.window_size[1] / (2.0 * plotter.camera.parallel_scale)


def _keep_out(plotter: pv.Plotter) -> list[tuple[int, int, int, int]]:
    """Boxes (row0, col0, row1, col1) of the scene's 2D text and colour bar, which labels avoid."""
    from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
    from vtkmodules.vtkRenderingCore import vtkTextActor

    height = plotter.window_size[1]
    boxes = []
    props = plotter.renderer.GetViewProps()
    props.InitTraversal()
    for _ in range(props.GetNumberOfItems()):
        actor = props.GetNextProp()
        if isinstance(actor, vtkTextActor) and actor.GetVisibility():
            bounds = [0.0] * 4
            actor.GetBoundingBox(plotter.renderer, bounds)
            boxes.append((int(height - bounds[3]) - 4, int(bounds[0]) - 4, int(height - bounds[2]) + 4,
                          int(bounds[1]) + 4))
        elif isinstance(actor, vtkScalarBarActor) and actor.GetVisibility():
            x0, y0 = actor.GetPositionCoordinate().GetComputedDisplayValue(plotter.renderer)
            x1, y1 = actor.GetPosition2Coordinate().GetComputedDisplayValue(plotter.renderer)
            boxes.append((int(height - y1) - 30, int(x0) - 30, int(height - y0) + 4, int(x1) + 30))
    return boxes


def set_camera(plotter: pv.Plotter, landmarks: Landmarks, camera: str) -> None:
    """Point the camera at the vertebra-body centre from a named direction (see CAMERAS) and fit
    everything drawn into the view."""
    if camera not in _CAMERA_SETUP:
        raise InputError(f"unknown camera {camera!r}: use one of {', '.join(CAMERAS)}")
    direction, up = (landmarks.frame.direction_to_model(np.array(v)) for v in _CAMERA_SETUP[camera])
    focal = np.asarray(landmarks.frame.origin, float)
    plotter.camera_position = [tuple(focal + 200.0 * direction / np.linalg.norm(direction)), tuple(focal), tuple(up)]
    plotter.enable_parallel_projection()  # true mm everywhere in the picture: the scale bar holds
    plotter.reset_camera()
    plotter.camera.zoom(CAMERA_ZOOM)


def render_scene_png(vertebra, landmarks: Landmarks, path: str | os.PathLike, plan: ScenePlan = ScenePlan(),
                     view: SceneView = SceneView()) -> np.ndarray:
    """Render :func:`build_scene` off-screen (whatever ``view.off_screen`` says) with its overlay
    (:func:`scene_picture`; labels when ``view.labels``) to a PNG file; returns the picture
    (H x W x 3 uint8, row 0 at the top)."""
    plotter = build_scene(vertebra, landmarks, plan, dataclasses.replace(view, off_screen=True))
    try:
        picture = scene_picture(plotter, landmarks, scene_markers(vertebra, landmarks, plan) if view.labels else None)
    finally:
        plotter.close()
    write_png(picture, path)
    return picture


def add_caption(plotter: pv.Plotter, title: str, lines: Sequence[str] = (), colour: str = "black",
                font_size: int = 10) -> None:
    """Write a title and caption lines (each wrapped at CAPTION_WIDTH characters) in the
    top-left corner of the scene; a second call replaces the first."""
    wrapped = [part for line in (title, *lines) for part in textwrap.wrap(line, CAPTION_WIDTH, subsequent_indent="  ")]
    actor = plotter.add_text("\n".join(wrapped), position=(0, 0), font_size=font_size, color=colour, name="caption")
    actor.GetTextProperty().SetVerticalJustificationToTop()
    actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()  # stays in the corner on resize
    actor.GetPositionCoordinate().SetValue(0.01, 0.99)


def world_to_pixel(plotter: pv.Plotter, points: np.ndarray) -> np.ndarray:
    """(row, col) image coordinates (row 0 at the top) where the rendered plotter shows points
    (mm, model coordinates, shape (N, 3)), ignoring occlusion."""
    from vtkmodules.vtkRenderingCore import vtkCoordinate

    height = plotter.window_size[1]
    coordinate = vtkCoordinate()
    coordinate.SetCoordinateSystemToWorld()
    out = []
    for point in np.asarray(points, dtype=float).reshape(-1, 3):
        coordinate.SetValue(*point)
        x, y = coordinate.GetComputedDoubleDisplayValue(plotter.renderer)
        out.append((height - y, x))
    return np.array(out) - 0.5  # display coordinates count pixel corners; pixels are centred


def _checked_anatomy(vertebra, landmarks) -> trimesh.Trimesh:
    """The vertebra's surface, checked with its landmarks."""
    mesh = vertebra if isinstance(vertebra, trimesh.Trimesh) else getattr(vertebra, "mesh", None)
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError(f"the scene needs a Vertebra or a trimesh surface with faces, not {type(vertebra).__name__}")
    if not isinstance(landmarks, Landmarks):
        raise InputError(f"landmarks must be bvn_plan Landmarks (find the anatomy first), not {type(landmarks).__name__}")
    return mesh


def _window_faces(mesh: trimesh.Trimesh, landmarks: Landmarks) -> dict[str, np.ndarray]:
    """Faces of the extrapedicular entry window on each side (none without the regions it needs)."""
    needed = ("lateral_cortex", "superior_endplate", "inferior_endplate")
    if not all(len(landmarks.face_regions.get(n, [])) for n in needed):
        return {}
    geometry = ApproachGeometry.of_mesh(mesh, landmarks)
    return {side: geometry.window_faces(mesh, side) for side in landmarks.pedicles}


def _soft_tissue(mesh: trimesh.Trimesh, landmarks: Landmarks) -> ModelledZones | None:
    """The soft-tissue zones modelled from the bone (None without the body and pedicles they rest on)."""
    if landmarks.body_mesh is None or not landmarks.pedicles:
        return None
    return ModelledZones(mesh, landmarks)


def _add_zone(plotter, zone: pv.PolyData, name: str, look: tuple[str, float], plan: ScenePlan) -> None:
    """A safety zone in its ``look`` (colour, opacity), or coloured by its clearance from the plan."""
    colour, opacity = look
    if not (plan.paths or plan.lesions):
        plotter.add_mesh(zone, color=colour, opacity=opacity, smooth_shading=True, name=name)
        return
    zone["clearance (mm)"] = plan_clearance(zone.points, plan.paths, plan.lesions)
    plotter.add_mesh(zone, scalars="clearance (mm)", cmap="RdYlGn", clim=CLEARANCE_RANGE_MM, below_color="darkred",
                     opacity=opacity, smooth_shading=True, name=name, scalar_bar_args=SCALAR_BAR)


def bone_and_zones(mesh: trimesh.Trimesh, landmarks: Landmarks,
                   carve: Sequence[np.ndarray] = ()) -> tuple[trimesh.Trimesh, dict[str, trimesh.Trimesh]]:
    """The vertebra surface split into the bone outside the safety zones (and outside the face
    sets ``carve``, drawn apart by the caller) and each zone of ZONE_REGIONS that has faces (mm,
    model coordinates)."""
    zone_faces = {name: np.asarray(landmarks.face_regions.get(name, []), int) for name in ZONE_REGIONS}
    in_zone = np.zeros(len(mesh.faces), bool)
    for faces in [*zone_faces.values(), *carve]:
        in_zone[faces] = True
    zones = {name: mesh.submesh([faces], append=True) for name, faces in zone_faces.items() if len(faces)}
    return mesh.submesh([np.flatnonzero(~in_zone)], append=True), zones


def instrument_parts(path: InstrumentPath) -> list[tuple[str, np.ndarray, str]]:
    """The instrument's parts (name, centreline points mm, colour): the straight introducer and, on
    a curved path, the cannula."""
    if path.arc is not None and len(path.vertices) > 2:
        return [("introducer", path.vertices[:2], INTRODUCER_COLOUR), ("cannula", path.vertices[1:], CANNULA_COLOUR)]
    return [("instrument", path.vertices, INTRODUCER_COLOUR)]


def instrument_tubes(path: InstrumentPath) -> list[tuple[str, pv.PolyData, str]]:
    """The instrument as tubes of its true radius (mm, model coordinates): (part name, tube,
    colour) of each of :func:`instrument_parts`."""
    radius = max(path.radius_mm, 0.2)  # a zero-radius guide wire still shows
    return [(name, pv.lines_from_points(points).tube(radius=radius, n_sides=24, capping=True), colour)
            for name, points, colour in instrument_parts(path)]


def _add_instrument(plotter, path: InstrumentPath, index: int) -> None:
    for name, tube, colour in instrument_tubes(path):
        plotter.add_mesh(tube, color=colour, smooth_shading=True, name=f"{name} {index}")


def _bone_entries(mesh: trimesh.Trimesh, paths, clearances) -> list:
    """Where each path first enters the bone (mm, model coordinates), None if it never does; from
    the check when one is given for a single path."""
    bone_entry = getattr(clearances, "bone_entry", None)
    if bone_entry is not None and len(paths) == 1:
        return [np.asarray(bone_entry, float)]
    entries = []
    for path in paths:
        points = path.sample().points
        inside = np.flatnonzero(mesh.contains(points))
        entries.append(points[inside[0]] if len(inside) else None)
    return entries


def _smallest_clearances(clearances) -> list[tuple[str, np.ndarray]]:
    """Labels and points of the N_CLEARANCE_LABELS smallest zone clearances of a check."""
    if clearances is None:
        return []
    items = getattr(clearances, "clearances", clearances)
    if not isinstance(items, dict):
        raise InputError("clearances must be a safety CheckResult or its clearances dict")
    ranked = sorted(items.values(), key=lambda c: c.clearance_mm)[:N_CLEARANCE_LABELS]
    return [(f"{c.zone.replace('_', ' ')} ({c.applies_to}) {c.clearance_mm:.1f} mm", np.asarray(c.point, float))
            for c in ranked]
