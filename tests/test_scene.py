"""The 3D scene of a plan on the real VHM L4: it renders off-screen, the instrument appears where the
plan puts it, and the zones carry the clearances the safety checker measures."""

import dataclasses
import warnings

import numpy as np
import pytest
import pyvista as pv
from scipy.spatial import cKDTree

from bvn_plan.anatomy import find_anatomy
from bvn_plan.errors import InputError
from bvn_plan.lesion import EllipsoidLesion
from bvn_plan.paths import InstrumentPath
from bvn_plan.planning import SafetyZones, check_path
from bvn_plan.viz.scene import SOFT_TISSUE_COLOURS
from bvn_plan.viz import (CAMERAS, ScenePlan, SceneView, build_scene, plan_clearance, render_scene_png, scale_bar_mm,
                          scene_markers, scene_picture, world_to_pixel)
from picture_pixels import axis_pixels, boxes_intersect, label_boxes, scale_bar_length_px
from bvn_plan.vertebra import Vertebra

pv.OFF_SCREEN = True


@pytest.fixture(scope="module")
def plan(vhm_dir):
    """VHM L4 (frame +x anterior, +y left, +z superior) with its anatomy found, a right
    transpedicular path measured by hand on the mesh (the right pedicle isthmus is at about
    (-6, -18, 66) mm, 18 deg medial), a 15 mm radius cannula arc curving medially, its lesion and
    the safety check."""
    vertebra = Vertebra.load(vhm_dir / "L4_whole.stl", level="L4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recogniser's morphometry warnings are not under test
        landmarks = find_anatomy(vertebra)
    angle = np.radians(18.0)
    axis = np.array([np.cos(angle), np.sin(angle), 0.0])
    isthmus = np.array([-6.0, -18.0, 66.0])
    path = InstrumentPath.straight_then_arc(isthmus - 40 * axis, isthmus + 7.5 * axis, [0.0, 1.0, 0.0], 15.0, 50.0, 1.7)
    lesion = EllipsoidLesion.from_probe(path.tip, path.tip_direction)
    check = check_path(SafetyZones(vertebra.mesh, landmarks), path, lesion)
    return vertebra, landmarks, path, lesion, check


@pytest.mark.parametrize("camera", CAMERAS)
def test_scene_renders_to_png(plan, tmp_path, camera):
    vertebra, landmarks, path, lesion, check = plan
    image = render_scene_png(vertebra, landmarks, tmp_path / f"{camera}.png", ScenePlan([path], [lesion], check),
                             SceneView(camera=camera, transparent=camera != "oblique"))
    assert (tmp_path / f"{camera}.png").stat().st_size > 10_000
    drawn = np.any(image < 240, axis=2)  # not the white background
    assert 0.1 < drawn.mean() < 0.8
    # the colour bar in the bottom band: red (near) to the left of green (far)
    band = image[int(0.85 * image.shape[0]):].astype(int)
    reddish = np.argwhere((band[:, :, 0] > 150) & (band[:, :, 1] < 60) & (band[:, :, 2] < 60))
    greenish = np.argwhere((band[:, :, 1] > 90) & (band[:, :, 0] < 40) & (band[:, :, 2] < 90))
    assert len(reddish) > 500 and len(greenish) > 500
    assert reddish[:, 1].mean() < greenish[:, 1].mean()


@pytest.mark.parametrize("camera", ["axial", "lateral", "ap"])
def test_instrument_is_drawn_where_the_plan_puts_it(plan, camera):
    vertebra, landmarks, path, lesion, _ = plan
    plotter = build_scene(vertebra, landmarks, ScenePlan([path], [lesion]), SceneView(camera, transparent=True, labels=False))
    with_instrument = plotter.screenshot(return_img=True).astype(int)
    for name in ("introducer 0", "cannula 0"):
        plotter.actors[name].visibility = False
    plotter.render()
    without = plotter.screenshot(return_img=True).astype(int)
    centre = path.sample(step=0.5).points
    pixels = world_to_pixel(plotter, centre)
    up = np.asarray(plotter.camera.up)
    radius_px = np.abs(world_to_pixel(plotter, [path.tip, path.tip + path.radius_mm * up])[1, 0]
                       - world_to_pixel(plotter, [path.tip])[0, 0])
    plotter.close()

    changed = np.abs(with_instrument - without).sum(axis=2) > 30
    changed[int(0.85 * len(changed)):] = False  # VTK lays the colour bar's tick labels out anew each render
    rows, cols = np.rint(pixels).astype(int).T
    # the drawing changed along the projected centreline ...
    assert changed[rows, cols].mean() > 0.9
    # ... and nowhere farther from it than the tube's projected radius (plus antialiasing)
    changed_rc = np.argwhere(changed)
    distance, _ = cKDTree(pixels).query(changed_rc)
    assert distance.max() <= radius_px + 3.0


def test_cannula_and_introducer_have_their_own_colours(plan):
    vertebra, landmarks, path, lesion, _ = plan
    plotter = build_scene(vertebra, landmarks, ScenePlan([path]), SceneView("axial", transparent=True))
    image = plotter.screenshot(return_img=True).astype(int)
    straight = world_to_pixel(plotter, [path.vertices[0] + 0.2 * (path.vertices[1] - path.vertices[0])])[0]
    curved = world_to_pixel(plotter, [path.vertices[len(path.vertices) // 2]])[0]
    plotter.close()
    blue_excess = lambda rc: image[int(round(rc[0])), int(round(rc[1]))] @ np.array([-1, 0, 1])
    assert blue_excess(curved) > blue_excess(straight) + 40


def test_zone_colours_are_the_clearances_the_checker_measures(plan):
    vertebra, landmarks, path, lesion, check = plan
    plotter = build_scene(vertebra, landmarks, ScenePlan([path], [lesion], check))
    canal = plotter.actors["canal"].mapper.dataset
    plotter.close()
    coloured = canal["clearance (mm)"]
    measured = min(check.clearances["spinal_canal:instrument"].clearance_mm,
                   check.clearances["spinal_canal:lesion"].clearance_mm)
    # the checker is exact on the triangles; the colours sit on the canal mesh's vertices
    spacing = np.median(landmarks.canal_mesh.edges_unique_length)
    assert measured - 0.1 <= coloured.min() <= measured + spacing


def test_plan_clearance_is_distance_to_the_instrument_surface_or_lesion():
    path = InstrumentPath.straight([0, 0, 0], [40, 0, 0], 1.5)
    lesion = EllipsoidLesion([60, 0, 0], [1, 0, 0], length_mm=14, diameter_mm=10)
    points = np.array([[20, 5, 0], [20, 0, -3], [-4, 3, 0], [60, 0, 12], [60, 0, 0], [20, 0, 1]])
    expected = [5 - 1.5, 3 - 1.5, 5 - 1.5, 12 - 5, -5, 1 - 1.5]
    assert plan_clearance(points, [path], [lesion]) == pytest.approx(expected, abs=0.01)


def test_bad_input_is_refused(plan, tmp_path):
    vertebra, landmarks, path, _, _ = plan
    with pytest.raises(InputError, match="unknown camera"):
        render_scene_png(vertebra, landmarks, tmp_path / "x.png", view=SceneView("from below"))
    with pytest.raises(InputError, match="Vertebra or a trimesh"):
        build_scene("L4.stl", landmarks)
    with pytest.raises(InputError, match="landmarks must be"):
        build_scene(vertebra, None)
    with pytest.raises(InputError, match="CheckResult"):
        build_scene(vertebra, landmarks, ScenePlan([path], clearances=[1.0, 2.0]))


def _picture(plan, camera, level=None):
    """The annotated picture of the plan from ``camera`` (landmarks relabelled ``level``) and the
    scene's pixels per mm measured with world_to_pixel across the view."""
    vertebra, landmarks, path, lesion, check = plan
    if level:
        landmarks = dataclasses.replace(landmarks, level=level)
    shown = ScenePlan([path], [lesion], check)
    plotter = build_scene(vertebra, landmarks, shown, SceneView(camera, transparent=True))
    try:
        picture = scene_picture(plotter, landmarks, scene_markers(vertebra, landmarks, shown))
        focal = np.asarray(plotter.camera.focal_point)
        sight = focal - np.asarray(plotter.camera.position)
        up = np.cross(np.cross(sight, plotter.camera.up), sight)  # the view-up across the line of sight
        up /= np.linalg.norm(up)
        px_per_mm = np.linalg.norm(np.diff(world_to_pixel(plotter, [focal, focal + 10.0 * up]), axis=0)) / 10.0
    finally:
        plotter.close()
    return picture, px_per_mm, len(scene_markers(vertebra, landmarks, shown))


@pytest.mark.parametrize("camera", CAMERAS)
def test_picture_labels_never_overlap_and_orient(plan, camera):
    picture, px_per_mm, n_markers = _picture(plan, camera)
    boxes = label_boxes(picture)
    assert len(boxes) == n_markers  # every named point has its own box ...
    assert not any(boxes_intersect(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])  # ... apart
    # the scale bar is as long as its round number of mm measured across the rendered view
    length_mm = scale_bar_mm(1.0 / px_per_mm, picture.shape[1])
    assert scale_bar_length_px(picture) == pytest.approx(length_mm * px_per_mm, abs=1.5)
    # the orientation marker: the axes across the view are long arms, the one along it a ring
    along = {"ap": "A", "lateral": "R", "axial": "S"}.get(camera)
    for letter in "RAS":
        spread = np.ptp(axis_pixels(picture, letter), axis=0).max()
        assert (spread < 30) if letter == along else (spread > 40), f"{camera}: axis {letter} spans {spread} px"
    if camera == "ap":  # seen from in front: right/left across, superior/inferior up and down
        thin = lambda values: np.subtract(*np.percentile(values, [90, 10])) <= 3  # noqa: E731 (the letters aside)
        assert thin(axis_pixels(picture, "R")[:, 0]) and thin(axis_pixels(picture, "S")[:, 1])


def test_s1_pictures_name_no_basivertebral_foramen(plan):
    """The same bone labelled S1: every label but the foramen's (and the soft tissue, which differs by level)."""
    vertebra, landmarks, path, lesion, check = plan
    shown = ScenePlan([path], [lesion], check)
    picture, _, n_markers = _picture(plan, "axial", level="S1")
    at_s1 = scene_markers(vertebra, dataclasses.replace(landmarks, level="S1"), shown)
    at_l4 = scene_markers(vertebra, landmarks, shown)
    bone = lambda markers: {name for name, (_, kind) in markers.items() if kind not in SOFT_TISSUE_COLOURS}  # noqa: E731
    assert bone(at_s1) == bone(at_l4) - {"basivertebral foramen"}
    assert len(label_boxes(picture)) == n_markers == len(at_s1)


def test_the_modelled_soft_tissue_is_drawn_and_labelled(plan):
    """Each zone the checker models at the level (planning.soft_tissue) is drawn in its colour and labelled;
    the modelled zones do not widen the view: the camera fits the same scene with or without them."""
    vertebra, landmarks, path, lesion, check = plan
    zones = SafetyZones(vertebra.mesh, landmarks).modelled
    assert set(zones.names) == {"aorta", "vena_cava", "iliac_vessels", "psoas"}  # L4: above and below the bifurcation
    plotter = build_scene(vertebra, landmarks, ScenePlan([path], [lesion], check), SceneView("axial"))
    try:
        drawn = {name[len("soft tissue "):] for name in plotter.actors if name.startswith("soft tissue ")}
        scale = plotter.camera.parallel_scale
        for name in drawn:
            plotter.actors[f"soft tissue {name}"].visibility = False
        plotter.reset_camera()
        plotter.camera.zoom(1.25)
        assert plotter.camera.parallel_scale == pytest.approx(scale, rel=1e-6)
    finally:
        plotter.close()
    assert drawn == set(zones.names)
    markers = scene_markers(vertebra, landmarks, ScenePlan([path], [lesion], check))
    assert {kind for _, kind in markers.values() if kind in SOFT_TISSUE_COLOURS} == drawn
