"""Simulated fluoroscopy: chords through an analytic sphere, body width/depth on the real VHM L4 in
AP and lateral, the instrument where the plan puts it, CT attenuation on an analytic phantom."""

import nibabel as nib
import numpy as np
import pytest
import trimesh

from bvn_plan.errors import AnatomyError, InputError
from bvn_plan.viz import (MIN_LONG_SIDE_PX, FluoroSettings, STEEL_MU_PER_MM, TIP_RING_COLOUR, TIP_RING_GAP_MM,
                          TIP_RING_WIDTH_MM, hu_to_mu, scale_bar_mm, simulate_fluoro, simulate_fluoro_views, write_png)
from picture_pixels import axis_pixels, scale_bar_length_px
from bvn_plan.coordinates import AnatomicalFrame
from bvn_plan.landmarks import Landmarks, Pedicle, Plane
from bvn_plan.paths import InstrumentPath
from bvn_plan.vertebra import Vertebra

PIXEL_MM = 0.5
AT_PIXEL = FluoroSettings(pixel_mm=PIXEL_MM)


def hand_landmarks(origin, right, anterior, superior, pedicles=None, level="L4", body=None) -> Landmarks:
    """Landmarks with the given frame and pedicles (model coordinates, mm); other points at the origin."""
    origin = np.asarray(origin, float)
    frame = AnatomicalFrame(origin, np.asarray(right, float), np.asarray(anterior, float), np.asarray(superior, float))
    plane = Plane(origin, frame.right)
    return Landmarks(level, frame, plane, plane, plane, origin[None], origin, pedicles or {}, origin, origin,
                     body_mesh=body)


@pytest.fixture(scope="module")
def vhm_l4(vhm_dir):
    """The real VHM L4 (frame +x anterior, +y left, +z superior) with landmarks measured by hand on
    the mesh: body-box centre, pedicle isthmus centres at (-6, -/+18, 66) mm (ray casts: the pedicle
    spans y 14-22 mm just behind the posterior wall at x = -2.5 mm), 18 deg medial transverse angle."""
    vertebra = Vertebra.load(vhm_dir / "L4_whole.stl", level="L4")
    body = trimesh.load(vhm_dir / "L4_body.stl")
    angle = np.radians(18.0)
    pedicles = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        axis = np.array([np.cos(angle), -sign * np.sin(angle), 0.0])
        pedicles[side] = Pedicle(side, np.array([-6.0, 18.0 * sign, 66.0]), axis, 8.0, 14.0,
                                 np.array([-2.5, 17.0 * sign, 66.0]))
    landmarks = hand_landmarks(body.bounds.mean(axis=0), [0, -1, 0], [1, 0, 0], [0, 0, 1], pedicles, body=body)
    return vertebra, landmarks


@pytest.fixture(scope="module")
def curved_path(vhm_l4):
    """Right transpedicular introducer from 40 mm behind the isthmus to 4 mm into the body, then a
    15 mm radius cannula arc of 50 deg curving medially (toward the patient's left, +y)."""
    _, landmarks = vhm_l4
    pedicle = landmarks.pedicles["right"]
    start = pedicle.isthmus_centre - 40.0 * pedicle.axis_direction
    arc_start = pedicle.body_junction + 4.0 * pedicle.axis_direction
    return InstrumentPath.straight_then_arc(start, arc_start, [0.0, 1.0, 0.0], 15.0, 50.0, 1.7)


@pytest.fixture(scope="module")
def views(vhm_l4, curved_path):
    vertebra, landmarks = vhm_l4
    return simulate_fluoro_views(vertebra.mesh, landmarks, [curved_path], AT_PIXEL)


@pytest.mark.parametrize("view", ["ap", "lateral", "en_face"])
def test_bone_path_length_is_the_chord_through_a_sphere(view):
    radius, centre = 15.0, np.array([3.0, -2.0, 5.0])
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius).apply_translation(centre)
    tilted = np.array([0.3, 0.9, 0.2]) / np.linalg.norm([0.3, 0.9, 0.2])
    pedicle = Pedicle("right", centre, tilted, 8.0, 14.0, centre)
    landmarks = hand_landmarks(centre, [1, 0, 0], [0, 1, 0], [0, 0, 1], {"right": pedicle})
    image = simulate_fluoro(sphere, landmarks, view, settings=AT_PIXEL)

    rows, cols = np.indices(image.projection.shape)
    r0, c0 = image.projection.to_pixel(centre)
    rho = np.hypot(rows - r0, cols - c0) * PIXEL_MM
    inner = rho < radius - 1.0
    chord = 2.0 * np.sqrt(radius**2 - rho[inner] ** 2)
    # each end of a chord is quantised to the voxel spacing along the beam; the facets sag < 0.1 mm
    assert np.abs(image.bone_path_mm[inner] - chord).max() <= PIXEL_MM + 0.1
    assert np.all(image.bone_path_mm[rho > radius + PIXEL_MM] == 0)
    assert image.bone_path_mm.max() == pytest.approx(2 * radius, abs=PIXEL_MM + 0.1)


def test_body_width_on_ap_and_depth_on_lateral_match_the_real_body(vhm_l4):
    _, landmarks = vhm_l4
    body = landmarks.body_mesh
    measured, truth = {}, {}
    for view, across in (("ap", landmarks.frame.right), ("lateral", landmarks.frame.anterior)):
        image = simulate_fluoro(body, landmarks, view, settings=AT_PIXEL)
        projection = image.projection
        row = int(round(projection.to_pixel(landmarks.frame.origin)[0]))
        measured[view] = np.count_nonzero(image.bone_path_mm[row] > 0) * PIXEL_MM
        # ground truth: the body's cross-section in the plane this image row sees
        plane_point = projection.corner - row * PIXEL_MM * projection.up
        section = body.section(plane_normal=projection.up, plane_origin=plane_point)
        extent = section.vertices @ across
        truth[view] = extent.max() - extent.min()
        assert measured[view] == pytest.approx(truth[view], rel=0.05)
    # the two views differ as the anatomy does: the body is wider than deep
    assert truth["ap"] > truth["lateral"] + 10.0
    assert measured["ap"] / measured["lateral"] == pytest.approx(truth["ap"] / truth["lateral"], rel=0.05)


@pytest.mark.parametrize("view", ["ap", "lateral", "en_face"])
def test_instrument_tip_is_drawn_where_the_plan_puts_it(views, curved_path, view):
    image = views[view]
    row, col = np.rint(image.projection.to_pixel(curved_path.tip)).astype(int)
    assert image.instrument_path_mm[row, col] > 0
    # metal is nearly black; the bone around the instrument is not
    assert image.rgb[row, col, 0] < 40
    assert image.rgb[image.bone_path_mm > 0][:, 0].mean() > 60
    # a ring marks the tip without covering it
    ring = TIP_RING_GAP_MM + curved_path.radius_mm + TIP_RING_WIDTH_MM / 2
    ring_pixels = np.rint(image.projection.to_pixel(curved_path.tip + ring * image.projection.up)).astype(int)
    assert tuple(image.rgb[tuple(ring_pixels)]) == TIP_RING_COLOUR
    # nothing metallic far from the instrument: 15 mm beside the tip on the side away from the shaft
    shaft = image.projection.to_pixel(curved_path.vertices[0]) - np.array([row, col])
    away = -shaft / np.linalg.norm(shaft) if np.linalg.norm(shaft) > 1 else np.array([1.0, 0.0])
    far = np.rint(np.array([row, col]) + away * 15.0 / PIXEL_MM).astype(int)
    assert image.instrument_path_mm[tuple(far)] == 0


def test_lateral_shows_the_introducer_at_its_true_width(views, curved_path):
    image = views["lateral"]
    start, arc_start = image.projection.to_pixel(curved_path.vertices[:2])
    middle = (start + arc_start) / 2
    along = (arc_start - start) / np.linalg.norm(arc_start - start)
    normal = np.array([-along[1], along[0]])
    offsets = np.arange(-20, 20.25, 0.25)  # pixels across the projected shaft
    samples = np.rint(middle + offsets[:, None] * normal).astype(int)
    covered = offsets[image.instrument_path_mm[samples[:, 0], samples[:, 1]] > 0]
    width_mm = (covered.max() - covered.min() + 1) * PIXEL_MM
    assert width_mm == pytest.approx(2 * curved_path.radius_mm, abs=PIXEL_MM)


def test_en_face_view_looks_down_the_pedicle(vhm_l4):
    vertebra, landmarks = vhm_l4
    pedicle = landmarks.pedicles["right"]
    path = InstrumentPath.straight(pedicle.isthmus_centre - 40 * pedicle.axis_direction,
                                   pedicle.isthmus_centre + 20 * pedicle.axis_direction, 1.7)
    image = simulate_fluoro(vertebra.mesh, landmarks, "en_face", [path], AT_PIXEL)
    # seen end-on: a disc of the instrument's radius, 60 mm of steel deep at its centre
    footprint = np.count_nonzero(image.instrument_path_mm) * PIXEL_MM**2
    assert footprint == pytest.approx(np.pi * path.radius_mm**2, rel=0.25)
    row, col = np.rint(image.projection.to_pixel(path.tip)).astype(int)
    assert image.instrument_path_mm[row, col] == pytest.approx(path.length, abs=2 * PIXEL_MM)
    assert image.line_integral[row, col] >= STEEL_MU_PER_MM * (path.length - 2 * PIXEL_MM)


def test_ct_attenuation_of_an_analytic_phantom():
    """Air (-1000 HU) with a 20 mm cube of +1000 HU (mu = 2 mu_water) on a CT with LPS-flipped
    axes; the model is the CT world shifted by 7 mm, undone by model_to_ct."""
    side, shift = 20.0, np.array([7.0, 0.0, -3.0])
    hu = np.full((60, 60, 60), -1000.0, dtype=np.float32)
    hu[20:40, 20:40, 20:40] = 1000.0
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [30.0, 30.0, -30.0]  # voxel centres 0..59 -> x 30..-29, y 30..-29, z -30..29
    ct = nib.Nifti1Image(hu, affine)
    cube_ct_centre = (affine @ [29.5, 29.5, 29.5, 1.0])[:3]
    cube = trimesh.creation.box(extents=[side] * 3).apply_translation(cube_ct_centre - shift)
    model_to_ct = np.eye(4)
    model_to_ct[:3, 3] = shift
    landmarks = hand_landmarks(cube_ct_centre - shift, [1, 0, 0], [0, 1, 0], [0, 0, 1])
    image = simulate_fluoro(cube, landmarks, "ap",
                            settings=FluoroSettings(pixel_mm=PIXEL_MM, ct=ct, model_to_ct=model_to_ct))

    row, col = np.rint(image.projection.to_pixel(cube_ct_centre - shift)).astype(int)
    # trilinear interpolation blurs each face by at most one 1 mm voxel
    assert image.line_integral[row, col] == pytest.approx(hu_to_mu(1000.0) * side, abs=hu_to_mu(1000.0) * 1.0)
    assert image.line_integral[image.bone_path_mm == 0].max() < 0.6 * hu_to_mu(1000.0) * side
    # the CT's cube falls where the mesh's cube is: same centroid of the image
    weights = [image.line_integral, image.bone_path_mm]
    centroids = [np.array([(np.indices(w.shape)[a] * w).sum() / w.sum() for a in (0, 1)]) for w in weights]
    assert np.linalg.norm(centroids[0] - centroids[1]) < 1.0


def test_hu_to_mu_follows_the_hounsfield_definition():
    assert hu_to_mu(-1000.0) == 0.0
    assert hu_to_mu(0.0) * 2 == pytest.approx(hu_to_mu(1000.0))
    assert hu_to_mu(-1500.0) == 0.0


def test_png_round_trip(tmp_path, views):
    import pyvista as pv

    image = views["ap"]
    path = tmp_path / "ap.png"
    image.save_png(path)
    read = pv.read(path)
    picture = image.picture()
    assert tuple(read.dimensions[:2]) == (picture.shape[1], picture.shape[0])
    pixels = np.asarray(read.point_data.active_scalars)[:, :3].reshape(picture.shape)[::-1]
    assert np.array_equal(pixels, picture)


def test_bad_input_is_refused(vhm_l4, curved_path):
    vertebra, landmarks = vhm_l4
    with pytest.raises(InputError, match="unknown fluoroscopic view"):
        simulate_fluoro(vertebra.mesh, landmarks, "oblique")
    with pytest.raises(InputError, match="watertight"):
        simulate_fluoro(vertebra.mesh.submesh([np.arange(100, len(vertebra.mesh.faces))], append=True), landmarks,
                        "ap")
    with pytest.raises(InputError, match="pixel_mm"):
        simulate_fluoro(vertebra.mesh, landmarks, "ap", settings=FluoroSettings(pixel_mm=0))
    with pytest.raises(InputError, match="larger pixel_mm"):
        simulate_fluoro(vertebra.mesh, landmarks, "ap", settings=FluoroSettings(pixel_mm=0.02))
    no_pedicles = hand_landmarks(landmarks.frame.origin, [0, -1, 0], [1, 0, 0], [0, 0, 1])
    with pytest.raises(AnatomyError, match="no right pedicle"):
        simulate_fluoro(vertebra.mesh, no_pedicles, "en_face")
    with pytest.raises(InputError, match="landmarks must be"):
        simulate_fluoro(vertebra.mesh, None, "ap")
    with pytest.raises(InputError, match="bone_mu_per_mm"):
        simulate_fluoro(vertebra.mesh, landmarks, "ap", settings=FluoroSettings(bone_mu_per_mm=-1))
    with pytest.raises(InputError, match="uint8"):
        write_png(np.zeros((4, 4)), "unused.png")


@pytest.mark.parametrize("view", ["ap", "lateral", "en_face"])
def test_pictures_are_large_with_a_true_scale_bar_and_orientation(views, curved_path, view):
    image = views[view]
    picture = image.picture()
    assert max(picture.shape[:2]) >= MIN_LONG_SIDE_PX
    mm_per_px = image.projection.pixel_mm / image.zoom
    length_mm = scale_bar_mm(mm_per_px, picture.shape[1])
    assert scale_bar_length_px(picture) * mm_per_px == pytest.approx(length_mm, abs=mm_per_px)
    # the beam's own axis is a ring; AP: right/left across and superior/inferior up and down
    along = {"ap": "A", "lateral": "R"}.get(view)
    for letter in "RAS" if along else "RS":  # en face: anterior foreshortened, neither arm nor ring
        spread = np.ptp(axis_pixels(picture, letter), axis=0).max()
        assert (spread < 30) if letter == along else (spread > 40), f"{view}: axis {letter} spans {spread} px"
    # the enlarged picture is the image: the tip ring sits where the projection puts the tip
    centre = (np.asarray(image.projection.to_pixel(curved_path.tip)) + 0.5) * image.zoom - 0.5
    reach = int(4 * (TIP_RING_GAP_MM + curved_path.radius_mm) / mm_per_px)
    r0, c0 = np.maximum(np.rint(centre).astype(int) - reach, 0)
    window = picture[r0:r0 + 2 * reach, c0:c0 + 2 * reach].astype(int)
    ring = np.argwhere(np.abs(window - TIP_RING_COLOUR).max(axis=2) < 40) + (r0, c0)
    assert len(ring) > 20 and np.hypot(*(ring.mean(axis=0) - centre)) < image.zoom
