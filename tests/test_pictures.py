"""The overlay of every picture (bvn_plan.viz.annotate), measured on the drawn pixels: labels never
overlap however crowded their points, the scale bar is true to the millimetre, the orientation
marker shows the patient's axes as the view sees them."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bvn_plan.cli import main
from bvn_plan.planning import read_plan
from bvn_plan.planning.soft_tissue import ModelledZones
from bvn_plan.viz import Overlay, PointLabel, annotate, scale_bar_mm
from picture_pixels import axis_pixels, boxes_intersect, label_boxes, scale_bar_length_px

MESHES = Path(__file__).resolve().parents[1] / "meshes"


def test_crowded_labels_get_separate_boxes_with_leaders():
    image = np.full((400, 600, 3), 255, np.uint8)
    image[150:250, 200:400] = (200, 190, 170)  # something drawn in the middle
    # eight points within 6 pixels of each other: one grey box would swallow them all
    points = [(200 + 2 * (i % 3), 300 + 2 * (i // 3)) for i in range(8)]
    labels = [PointLabel(f"point number {i} 3.{i} mm", p, (214, 39, 40)) for i, p in enumerate(points)]
    picture = annotate(image, Overlay(labels))
    boxes = label_boxes(picture)
    assert len(boxes) == len(labels)
    for i, a in enumerate(boxes):
        assert not any(boxes_intersect(a, b) for b in boxes[i + 1:])
        for p in points:  # no box hides a point
            assert not (a[0] <= p[0] < a[2] and a[1] <= p[1] < a[3])
    # every box is joined to the crowd by its leader line: dark pixels leave each box's edge
    dark = np.all(picture < 80, axis=2)
    for r0, c0, r1, c1 in boxes:  # the fill inside a 1-pixel border; look 3 pixels out, corners included
        ring = dark[r0 - 4:r1 + 4, c0 - 4:c1 + 4].copy()
        ring[2:-2, 2:-2] = False
        assert ring.any(), f"box {r0, c0, r1, c1} has no leader line"


def test_labels_keep_out_of_reserved_boxes_and_say_when_there_is_no_room():
    image = np.full((120, 200, 3), 255, np.uint8)
    reserved = (0, 0, 120, 110)
    labels = [PointLabel(f"label {i}", (60, 160), (0, 0, 0)) for i in range(6)]
    picture = annotate(image, Overlay(labels, keep_out=[reserved]))
    boxes = label_boxes(picture, min_pixels=50)
    assert 0 < len(boxes) < len(labels)  # not all fit in the 90 px strip ...
    assert not any(boxes_intersect(b, reserved) for b in boxes)  # ... and none is drawn over the reserved box
    assert np.any(np.all(picture[-25:] == (120, 0, 0), axis=2))  # the "not labelled (no room)" line


@pytest.mark.parametrize("mm_per_px", [0.05, 0.125, 0.3, 1.7])
def test_scale_bar_is_a_round_length_true_to_the_pixel_size(mm_per_px):
    picture = annotate(np.full((300, 500, 3), 255, np.uint8), Overlay(mm_per_px=mm_per_px))
    length_mm = scale_bar_mm(mm_per_px, 500)
    mantissa = length_mm / 10 ** np.floor(np.log10(length_mm))
    assert round(mantissa, 6) in (1, 2, 5)
    assert 0.08 * 500 <= length_mm / mm_per_px <= 0.2 * 500
    assert abs(scale_bar_length_px(picture) * mm_per_px - length_mm) <= mm_per_px


def test_orientation_marker_draws_each_axis_as_the_view_sees_it():
    # a view from in front: right to the image left, superior up, anterior toward the viewer
    axes = {"R": (0.0, -1.0, 0.0), "A": (0.0, 0.0, 1.0), "S": (-1.0, 0.0, 0.0)}
    picture = annotate(np.full((300, 500, 3), 255, np.uint8), Overlay(axes=axes))
    right, superior, anterior = (axis_pixels(picture, k) for k in "RSA")
    assert np.ptp(right[:, 1]) > 50 and np.ptp(superior[:, 0]) > 50  # long arms
    assert np.ptp(anterior[:, 0]) < 30 and np.ptp(anterior[:, 1]) < 30  # a ring: seen end-on
    assert right[:, 1].min() > 380 and superior[:, 0].max() < 120  # in the top-right corner


@pytest.fixture(scope="module")
def planned_with_images(tmp_path_factory):
    """``bvn-plan plan --images`` on the bundled synthetic L4."""
    out = tmp_path_factory.mktemp("plan")
    run = CliRunner().invoke(main, ["plan", str(MESHES / "L4.ply"), "--level", "L4", "--frame", "RAS", "--out",
                                    str(out), "--images"])
    assert run.exit_code == 0, run.output
    return out


def _png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_plan_images_and_render_from_the_plan_file(planned_with_images, tmp_path):
    pictures = planned_with_images / "pictures"
    names = sorted(p.name for p in pictures.glob("*.png"))
    assert names == ["fluoro_ap.png", "fluoro_en_face.png", "fluoro_lateral.png", "scene_axial.png", "scene_oblique.png"]
    run = CliRunner().invoke(main, ["render", str(planned_with_images / "plan.json"), "--out", str(tmp_path)])
    assert run.exit_code == 0, run.output
    assert run.output.count("wrote ") == 5
    for name in names:  # the plan file reloaded draws the same plan
        drawn, again = _png(pictures / name), _png(tmp_path / name)
        assert drawn.shape == again.shape
        assert np.mean(np.any(np.abs(drawn.astype(int) - again) > 40, axis=2)) < 0.01, name
    loaded = read_plan(planned_with_images / "plan.json")
    soft_tissue = ModelledZones(loaded.vertebra.mesh, loaded.landmarks)
    assert set(soft_tissue.names) == {"aorta", "vena_cava", "iliac_vessels", "psoas"}  # at L4
    for name in names:
        image = _png(pictures / name)
        assert max(image.shape[:2]) >= 512
        # scenes: target, bone entry, terminus, foramen, the two extrapedicular windows, the three
        # smallest clearances and each modelled soft-tissue zone of the level, each boxed
        assert len(label_boxes(image)) == (0 if name.startswith("fluoro") else 9 + len(soft_tissue.names)), name


def test_render_shows_the_instrument_through_the_bone_by_default(planned_with_images, tmp_path):
    plan_file = str(planned_with_images / "plan.json")
    for folder, flags in (("default", []), ("opaque", ["--opaque"])):
        run = CliRunner().invoke(main, ["render", plan_file, "--camera", "lateral", "--out", str(tmp_path / folder)]
                                 + flags)
        assert run.exit_code == 0, run.output
    # the curved cannula is drawn blue (CANNULA_COLOUR, not the cyan of the extrapedicular windows on the
    # surface); inside an opaque body it is hidden
    def blue(file):  # below the orientation marker (its superior arm is blue too), above the colour bar
        image = _png(file)[150:600].astype(int)
        return np.count_nonzero((image[:, :, 2] > image[:, :, 0] + 80) & (image[:, :, 2] > 150)
                                & (image[:, :, 2] > image[:, :, 1] + 40))
    shown, hidden = blue(tmp_path / "default" / "scene_lateral.png"), blue(tmp_path / "opaque" / "scene_lateral.png")
    assert shown > 300 and hidden < 0.2 * shown


def test_render_refuses_what_does_not_fit(planned_with_images, tmp_path):
    run = CliRunner().invoke(main, ["render", str(planned_with_images / "plan.json"), "--start", "0", "0", "0", "--tip",
                                    "1", "1", "1", "--out", str(tmp_path)])
    assert run.exit_code != 0 and "plan file carries its own path" in run.output
    run = CliRunner().invoke(main, ["render", str(MESHES / "L4.ply"), "--out", str(tmp_path)])
    assert run.exit_code != 0 and "needs its --level" in run.output
