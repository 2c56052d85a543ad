"""Interactive planning and ``show``: a plan.json written in centimetres reloads to the same paths
in mm, a moved entry or target is judged exactly as the safety checker judges it, the cannula arc
stays tangent to the introducer, and the off-screen render shows the verdict.

The plan is made once on the bundled synthetic L4 (meshes/L4.ply, vertebra frame, mm) saved in
centimetres, so that the reload must apply the plan file's units."""

import json
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import trimesh

from bvn_plan.anatomy import find_anatomy
from bvn_plan.errors import InputError
from click.testing import CliRunner

from bvn_plan.cli import main
from bvn_plan.lesion import EllipsoidLesion
from bvn_plan.planning import (InteractivePlanner, LESION_CHECK_SUBDIVISIONS, SafetyZones, check_path,
                               gertzbein_robbins_grade, plan_level, read_plan, write_plan)
from bvn_plan.viz.window import add_controls, apply_update, scene_for_update, show_plan
from bvn_plan.viz import plan_clearance
from bvn_plan.vertebra import Vertebra
from plan_checks import assert_same_landmarks, assert_same_paths  # tests/plan_checks.py


pv.OFF_SCREEN = True
PROJECT = Path(__file__).resolve().parents[1]
APPROACHES = ("transpedicular", "transpedicular-straight")


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """(LevelPlan in mm, plan.json path, reloaded plan) for L4 stored in cm."""
    folder = tmp_path_factory.mktemp("plan")
    mesh = trimesh.load(PROJECT / "meshes" / "L4.ply", process=False)
    mesh.apply_scale(0.1)
    mesh.export(folder / "L4_cm.ply")
    vertebra = Vertebra.load(folder / "L4_cm.ply", level="L4", units="cm", frame="RAS")
    level_plan = plan_level(vertebra, find_anatomy(vertebra), approaches=APPROACHES)
    written = write_plan(level_plan, vertebra, folder / "out")
    return level_plan, written["plan"], read_plan(written["plan"])


@pytest.fixture(scope="module")
def zones(planned):
    """Safety zones of the reloaded vertebra, built once for the module."""
    loaded = planned[2]
    return SafetyZones(loaded.vertebra.mesh, loaded.landmarks)


@pytest.fixture()
def planner(planned, zones):
    loaded = planned[2]
    return InteractivePlanner(loaded.vertebra, loaded.landmarks, loaded.options, loaded.device, loaded.rules, zones=zones)


def test_reload_reads_units_and_rebuilds_every_planned_path(planned, planner):
    level_plan, _, loaded = planned
    assert loaded.vertebra.input_units == "cm" and loaded.vertebra.patient_frame == "RAS"
    np.testing.assert_allclose(loaded.landmarks.bvn_terminus, level_plan.landmarks.bvn_terminus, atol=1e-6)
    rec = level_plan.recommendation
    assert loaded.recommended == (rec.approach, rec.side)
    planned_paths = {(r.approach, r.side): r.plan for r in level_plan.results if r.plan is not None}
    assert set(planned_paths) == {(o.approach, o.side) for o in loaded.options} and len(planned_paths) == 4
    for (approach, side), plan in planned_paths.items():
        update = planner.select(approach, side)
        # the arc is refitted from entry, arc start and tip: it must land on the planned polyline (mm)
        assert update.path.vertices.shape == plan.path.vertices.shape
        assert np.abs(update.path.vertices - plan.path.vertices).max() < 1e-3
        assert update.verdict == plan.verdict
        assert update.check.gertzbein_robbins_grade == plan.check.gertzbein_robbins_grade


def test_reload_gives_the_landmarks_and_paths_that_wrote_it(planned):
    """plan.json reloads the written landmarks (not found again) and planned paths, mm."""
    level_plan, _, loaded = planned
    assert loaded.level == "L4"
    assert_same_landmarks(loaded.landmarks, level_plan.landmarks)
    assert_same_paths(loaded, level_plan)


def test_show_command_renders_the_plan_file(planned, tmp_path):
    _, plan_file, _ = planned
    png = tmp_path / "show.png"
    run = CliRunner().invoke(main, ["show", str(plan_file), "--png", str(png)])
    assert run.exit_code == 0, run.output
    assert png.stat().st_size > 10_000


def test_update_is_the_checkers_judgement(planned, planner):
    _, _, loaded = planned
    rec = loaded.recommended
    planner.select(*rec)
    zones = planner.zones
    target = planner.target + loaded.landmarks.frame.direction_to_model(np.array([0.0, -4.0, 2.0]))
    update = planner.set_target(target)
    assert planner.zones is zones  # built once, never rebuilt by a move
    np.testing.assert_allclose(update.path.tip, target, atol=1e-9)
    lesion = EllipsoidLesion.from_probe(update.path.tip, update.path.tip_direction, loaded.device)
    fresh = check_path(SafetyZones(loaded.vertebra.mesh, loaded.landmarks), update.path,
                       lesion.surface_mesh(LESION_CHECK_SUBDIVISIONS), loaded.rules)
    assert update.verdict == fresh.verdict and update.check.reasons == fresh.reasons
    for key, clearance in fresh.clearances.items():
        assert update.check.clearances[key].clearance_mm == pytest.approx(clearance.clearance_mm, abs=1e-9)


def test_moved_target_keeps_the_cannula_tangent_with_the_device_radius(planned, planner):
    _, _, loaded = planned
    planner.select("transpedicular", "right")
    pivot, entry = planner.pivot.copy(), planner.entry.copy()
    frame = loaded.landmarks.frame
    update = planner.set_target(planner.target + frame.direction_to_model(np.array([1.0, 2.0, -1.0])))
    path = update.path
    radius = loaded.device.cannula_radius_mm
    assert path.arc is not None and path.arc.radius_mm == radius
    line = (pivot - entry) / np.linalg.norm(pivot - entry)
    # the introducer runs from the entry through the pivot; the arc leaves it tangentially
    start_dir = (path.arc_start - entry) / np.linalg.norm(path.arc_start - entry)
    assert np.degrees(np.arccos(np.clip(start_dir @ line, -1, 1))) < 1e-6
    first = (path.vertices[2] - path.vertices[1]) / np.linalg.norm(path.vertices[2] - path.vertices[1])
    assert np.degrees(np.arccos(np.clip(first @ line, -1, 1))) < 2.0
    centre = path.arc_start + radius * path.arc.bend_direction
    np.testing.assert_allclose(np.linalg.norm(path.vertices[1:] - centre, axis=1), radius, atol=1e-9)
    assert np.linalg.norm(path.tip - planner.target) < 1e-9
    # moving the entry along its own line changes nothing beyond the entry
    moved = planner.set_entry(entry - 5.0 * line)
    np.testing.assert_allclose(moved.path.vertices[1:], path.vertices[1:], atol=1e-9)
    assert moved.check.clearances["spinal_canal:lesion"].clearance_mm == pytest.approx(
        update.check.clearances["spinal_canal:lesion"].clearance_mm, abs=1e-9)


def test_target_behind_the_pedicle_wall_fails_with_its_breach_grade(planned, planner):
    _, _, loaded = planned
    lm = loaded.landmarks
    planner.select("transpedicular-straight", "right")
    # aim the straight introducer at the canal side of the posterior wall, behind the terminus
    target = lm.frame.to_model(lm.frame.to_local(lm.bvn_terminus) * np.array([1, 0, 1])
                               + np.array([0.0, lm.frame.to_local(lm.canal_centroid)[1] + 6.0, 0.0]))
    update = planner.set_target(target)
    check = update.check
    assert check.verdict == "fail"
    assert check.medial_breach_mm > 0
    assert check.gertzbein_robbins_grade == gertzbein_robbins_grade(check.medial_breach_mm)
    assert f"Gertzbein-Robbins grade {check.gertzbein_robbins_grade}" in update.text()
    assert check.clearances["spinal_canal:lesion"].clearance_mm < loaded.rules["canal_lesion"].margin_mm


def test_unreachable_arc_is_drawn_straight_and_said(planned, planner):
    _, _, loaded = planned
    planner.select("transpedicular", "right")
    far_side = loaded.landmarks.frame.direction_to_model(np.array([-40.0, 0.0, 0.0]))
    update = planner.set_target(planner.target + far_side)
    assert update.path.arc is None and len(update.path.vertices) == 2
    assert any("no cannula arc of radius 15 mm" in n for n in update.notes)


def test_target_outside_the_vertebra_is_reported_not_raised(planner):
    planner.select("transpedicular", "left")
    update = planner.set_target(planner.target + np.array([0.0, 300.0, 0.0]))
    assert update.check is None and update.verdict == "invalid"
    assert "outside the vertebra" in update.error and "outside the vertebra" in update.text()


def test_keys_cycle_approach_and_switch_side(planned, planner):
    level_plan, _, _ = planned
    planner.select("transpedicular", "right")
    update = planner.switch_side()
    assert (update.approach, update.side) == ("transpedicular", "left")
    np.testing.assert_allclose(update.path.tip, level_plan.result("transpedicular", "left").plan.path.tip, atol=1e-3)
    update = planner.cycle_approach()
    assert (update.approach, update.side) == ("transpedicular-straight", "left")
    assert update.path.arc is None
    update = planner.cycle_approach()  # no extrapedicular in this plan: back to the first approach
    assert (update.approach, update.side) == ("transpedicular", "left")


def test_window_update_recolours_the_zones_with_the_new_clearance(planned, planner):
    _, _, loaded = planned
    first = planner.select(*loaded.recommended)
    plotter = scene_for_update(planner, first, window_size=(400, 300))
    try:
        lm = loaded.landmarks
        moved = planner.set_target(lm.canal_centroid + lm.frame.anterior * 8.0)
        apply_update(plotter, moved)
        canal = pv.wrap(plotter.actors["canal"].mapper.GetInput())
        expected = plan_clearance(canal.points, [moved.path], [moved.lesion])
        np.testing.assert_allclose(canal.point_data["clearance (mm)"], expected)
        assert expected.min() < 0  # the moved lesion reaches into the canal: dark red now
        assert not any(name.startswith("label ") for name in plotter.actors)  # no stale labels
    finally:
        plotter.close()


def test_show_renders_the_plan_with_its_verdict(planned, tmp_path):
    level_plan, plan_file, _ = planned
    shown = show_plan(plan_file, png=tmp_path / "show.png", window_size=(640, 480))
    rec = level_plan.recommendation  # shown by default, re-checked on the reloaded plan to the same verdict
    assert (shown.level, shown.approach, shown.side, shown.verdict) == ("L4", rec.approach, rec.side, rec.verdict)
    image = shown.picture
    assert (tmp_path / "show.png").stat().st_size > 10_000
    assert image.shape == (480, 640, 3) and image.std() > 20
    # the verdict text (dark green for pass) sits in the top-left corner
    corner = image[:40, :250].reshape(-1, 3).astype(int)
    assert np.any((corner[:, 1] > 80) & (corner[:, 0] < 60) & (corner[:, 2] < 60))


def test_bad_plan_files_say_what_is_wrong(planned, tmp_path):
    _, plan_file, _ = planned
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="not a bvn-plan plan.json"):
        read_plan(tmp_path / "x.json")
    doc = json.loads(plan_file.read_text())
    doc["levels"]["L4"]["mesh"]["path"] = "nowhere/L4.ply"
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="was not found"):
        read_plan(tmp_path / "plan.json")


def test_plan_file_refuses_other_versions_levels_and_surfaces(planned, tmp_path):
    _, plan_file, _ = planned
    doc = json.loads(plan_file.read_text())
    (tmp_path / "old.json").write_text(json.dumps({"source": "L4_cm.ply", "level": "L4", "approaches": []}))
    with pytest.raises(InputError, match="format_version 2"):
        read_plan(tmp_path / "old.json")
    with pytest.raises(InputError, match="holds no level L5; it holds L4"):
        read_plan(plan_file, "L5")
    doc["levels"]["L4"]["mesh"]["path"] = str(plan_file.parent.parent / "L4_cm.ply")  # absolute paths are kept
    doc["levels"]["L4"]["mesh"]["faces"] += 1
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not the planned surface"):
        read_plan(tmp_path / "plan.json")


def test_bad_points_are_refused(planner):
    planner.select("transpedicular", "right")
    with pytest.raises(InputError, match="3 finite coordinates"):
        planner.set_entry([0.0, np.nan, 1.0])
    with pytest.raises(InputError, match="less than 1 mm apart"):
        planner.set_target(planner.entry + 0.1)


def test_window_controls_drive_the_planner(planned, planner):
    """The window's wiring without a mouse: a dragged target sphere and the 's' key reach the
    planner, and the scene, text and widgets follow."""
    _, _, loaded = planned
    first = planner.select(*loaded.recommended)
    plotter = scene_for_update(planner, first, off_screen=False, window_size=(400, 300), labels=False)
    try:
        add_controls(plotter, planner, first)
        entry_widget, target_widget = plotter.widgets.sphere_widgets
        target = first.path.tip - 3.0 * loaded.landmarks.frame.anterior
        target_widget.SetCenter(*target)
        target_widget.InvokeEvent("EndInteractionEvent")  # what a released drag sends
        np.testing.assert_allclose(planner.target, target, atol=1e-9)
        tubes = [pv.wrap(plotter.actors[name].mapper.GetInput()).points for name in plotter.actors
                 if name in ("cannula 0", "instrument 0")]
        assert len(tubes) == 1  # the new tube replaced the old one
        assert np.linalg.norm(tubes[0] - target, axis=1).min() < planner.device.introducer_radius_mm + 0.1
        other = "left" if first.side == "right" else "right"
        plotter.iren.interactor.SetKeySym("s")
        plotter.iren.interactor.InvokeEvent("KeyPressEvent")
        assert planner.current.side == other
        np.testing.assert_allclose(entry_widget.GetCenter(), planner.entry, atol=1e-6)
        np.testing.assert_allclose(target_widget.GetCenter(), planner.target, atol=1e-6)
        assert plotter.actors["caption"].GetInput().startswith(f"{other} {first.approach}: verdict")
    finally:
        plotter.close()
