"""The case workflow on the real TotalSegmentator example: L3-S1 from the labelmap alone in its RAS
world frame. A level whose pedicles the anatomy recognises is planned (all four on this 3 mm
segmentation, S1 from its label of the S1 segment without alae); a level whose pedicles it does not
recognise would get "no safe plan" with that reason, never a plausible-looking path. The Slicer markups and meshes of the planned levels line up with
the labelmap voxels; the markups validate and round-trip through ``bvn-plan check``; CT numbers
come from bone; outputs replace an earlier run whole."""

import base64
import copy
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bvn_plan.atomic import replace_directory
from bvn_plan.workflow import (CASE_WORKERS, DONE_MARKER, case_from_dict, load_case, load_labelmap, path_and_lesion_hu,
                               plan_case, read_markups, validate_markups, write_level, write_report)
from bvn_plan.errors import InputError
from bvn_plan.coordinates import convert_points
from bvn_plan.planning import PEDICLE_CONFIDENCE_MIN, read_plan
from plan_checks import assert_same_landmarks, assert_same_paths  # tests/plan_checks.py

PROJECT = Path(__file__).resolve().parents[1]
LEVELS = ["L3", "L4", "L5", "S1"]


def _case_document(totalseg_dir: Path) -> dict:
    return {
        "case_id": "totalseg-L3-S1",
        "levels": "L3-S1",
        "clinical": {"modic": {"L3": 2, "L4": 1, "L5": 1, "S1": 1}, "symptomatic_levels": "L3-S1",
                     "symptom_duration_months": 14, "conservative_care": {"months": 9, "treatments": ["PT", "NSAIDs"]},
                     "odi": 46, "nrs": 7, "bone_density": {"status": "osteoporosis", "t_score": -2.8}},
        "plan": {"images": False},
        "input": {"labelmap": str(totalseg_dir / "totalseg.nii.gz"), "scheme": "totalseg",
                  "ct": str(totalseg_dir / "example_ct.nii.gz")},
    }


@pytest.fixture(scope="module")
def planned(totalseg_dir, tmp_path_factory):
    """The TotalSegmentator case planned once (every approach, both sides, four levels)."""
    case = case_from_dict(_case_document(totalseg_dir), totalseg_dir, source="test case")
    out = tmp_path_factory.mktemp("case") / "out"
    result = plan_case(case, out)
    labelmap = load_labelmap(totalseg_dir / "totalseg.nii.gz", scheme="totalseg")
    return result, out, labelmap


def _in_label(labelmap, level, points_ras) -> np.ndarray:
    ijk = np.rint(labelmap.world_to_voxel(np.asarray(points_ras, float).reshape(-1, 3))).astype(int)
    inside = np.all((ijk >= 0) & (ijk < labelmap.data.shape), axis=1)
    hit = np.zeros(len(ijk), bool)
    hit[inside] = labelmap.data[tuple(ijk[inside].T)] == labelmap.label_value(level)
    return hit


def _planned(result):
    """The levels that got a plan (all of L3-S1, whose pedicles are recognised)."""
    levels = [o for o in result.levels if o.chosen is not None]
    assert {o.level for o in levels} == set(LEVELS)
    return levels


def test_s1_is_planned_on_both_sides_with_its_tips_inside_the_s1_label(planned):
    """S1 (target: the body centre) gets a passing transpedicular plan on each side whose tip, lesion
    centre and cannula arc start lie in the S1 label's voxels."""
    result, _, labelmap = planned
    s1 = next(o for o in _planned(result) if o.level == "S1")
    for side in ("right", "left"):
        plan = s1.level_plan.result("transpedicular", side).plan
        assert plan is not None and plan.verdict == "pass", (side, s1.level_plan.result("transpedicular", side).blocked)
        points = [plan.path.tip, plan.lesion.centre, plan.path.arc_start]
        assert _in_label(labelmap, "S1", points).all(), side


def test_every_level_is_planned_or_refused_with_its_reason_and_summarised(planned):
    result, out, _ = planned
    assert [o.level for o in result.levels] == LEVELS
    document = json.loads((out / "plan.json").read_text())
    assert document["eligibility"]["verdict"] == "indicated"
    assert any(f["criterion"] == "fracture_risk" and "4.64%" in f["message"] for f in document["eligibility"]["findings"])
    for o in result.levels:
        level = document["levels"][o.level]
        assert level["coordinates"]["frame"] == "RAS"
        assert level["markups_frame"] == "RAS"
        unclear = [side for side in ("right", "left")
                   if o.landmarks.confidence[f"{side}_pedicle"] < PEDICLE_CONFIDENCE_MIN]
        if o.chosen is None:
            assert level["status"] == "no safe plan" and level["recommendation"] is None
            assert unclear == ["right", "left"], f"{o.level}: refused although a pedicle is recognised"
            assert all(any("not recognised with confidence" in b for b in r.blocked) for r in o.level_plan.results)
        else:
            assert level["status"] == "planned" and o.chosen.verdict != "fail"
            assert o.chosen.side not in unclear
    assert [r["level"] for r in result.rows] == LEVELS
    assert (out / "summary.csv").read_text().count("\n") == 1 + len(LEVELS)
    assert json.loads((out / DONE_MARKER).read_text())["rows"] == result.rows
    html = (out / "report.html").read_text()
    assert "not a medical device" in html and "INDICATED" in html and "Interv Pain Med 2025;4(4):100654" in html
    assert all(f"<h2>{level}</h2>" in html for level in LEVELS)
    assert "Introducer diameter (mm)" in html and "canal_lesion" in html and "Depth fraction" in html  # plain labels


def test_case_plan_file_reloads_every_level_from_its_slicer_mesh(planned, tmp_path):
    """The case's plan.json is the plan file ``show`` opens: each labelmap level reloads from
    slicer/<level>_vertebra.stl (LPS) into the plan's RAS with the landmarks and paths that wrote it."""
    from click.testing import CliRunner

    from bvn_plan.cli import main

    result, out, _ = planned
    for o in _planned(result):
        loaded = read_plan(out / "plan.json", o.level)
        assert loaded.vertebra.patient_frame == "RAS" and loaded.vertebra.input_units == "mm"
        assert np.abs(loaded.vertebra.mesh.vertices - o.vertebra.mesh.vertices).max() < 1e-3  # float32 STL
        assert_same_landmarks(loaded.landmarks, o.landmarks)
        assert_same_paths(loaded, o.level_plan)
    assert read_plan(out / "plan.json").level == LEVELS[0]  # the first planned level by default
    png = tmp_path / "L4.png"
    run = CliRunner().invoke(main, ["show", str(out / "plan.json"), "--level", "L4", "--png", str(png)])
    assert run.exit_code == 0, run.output
    assert png.stat().st_size > 10_000
    (tmp_path / "plan.json").write_bytes((out / "plan.json").read_bytes())  # without its slicer/ folder
    with pytest.raises(InputError, match="L4_vertebra.stl was not found"):
        read_plan(tmp_path / "plan.json", "L4")


def test_markups_line_up_with_the_labelmap(planned):
    result, out, labelmap = planned
    for o in _planned(result):
        file = out / "slicer" / f"{o.level}.mrk.json"
        document = json.loads(file.read_text())
        assert validate_markups(document, strict=True) == []
        assert {node["coordinateSystem"] for node in document["markups"]} == {"RAS"}
        nodes = read_markups(file, frame="RAS")
        paths = [n for n in nodes if n.type in ("Line", "Curve")]
        assert len(paths) >= 1
        tips = np.array([n.points[-1] for n in paths])
        assert _in_label(labelmap, o.level, tips).all(), f"{o.level}: a path tip lies outside the label"
        side = {"right": "R", "left": "L"}[o.chosen.side]
        assert paths[0].name == f"{o.level}_{side}_{o.chosen.approach.replace('-', '_')}"
        points = next(n for n in nodes if n.type == "Fiducial")
        named = dict(zip(points.labels, points.points))
        assert np.allclose(named[f"{o.level}_{side}_target"], paths[0].points[-1])
        assert np.allclose(named[f"{o.level}_{side}_target"], o.chosen.path.tip)
        assert _in_label(labelmap, o.level, [named[f"{o.level}_BVN_terminus"]]).all()


def _read_stl(path: Path) -> tuple[bytes, np.ndarray]:
    data = path.read_bytes()
    count = struct.unpack("<I", data[80:84])[0]
    records = np.frombuffer(data[84:84 + 50 * count], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    return data[:80], records["v"].reshape(-1, 3).astype(float)


def test_meshes_are_lps_with_the_slicer_header_and_overlay_the_labelmap(planned):
    result, out, labelmap = planned
    for o in _planned(result):
        header, lesion_lps = _read_stl(out / "slicer" / f"{o.level}_lesion.stl")
        assert b"SPACE=LPS" in header
        lesion_ras = convert_points(lesion_lps, "LPS", "RAS")
        assert abs(lesion_ras.mean(axis=0) - o.chosen.lesion.centre).max() < 0.5
        assert _in_label(labelmap, o.level, lesion_ras).mean() > 0.9, f"{o.level}: the lesion is not in the bone"
        _, vertebra_lps = _read_stl(out / "slicer" / f"{o.level}_vertebra.stl")
        surface = convert_points(vertebra_lps, "LPS", "RAS")
        assert np.abs(surface - o.vertebra.mesh.triangles.reshape(-1, 3)).max() < 1e-3
        _, tube = _read_stl(out / "slicer" / f"{o.level}_path.stl")
        tip_end = convert_points(tube, "LPS", "RAS")
        nearest = np.linalg.norm(tip_end - o.chosen.path.tip, axis=1).min()
        assert nearest <= o.chosen.path.radius_mm + 1e-3


def test_markups_round_trip_through_the_check_command(planned, tmp_path):
    """The exported L3 surface (LPS STL) and its RAS markups, judged by ``bvn-plan check``."""
    result, out, _ = planned
    o = next(o for o in _planned(result) if o.level == "L3")
    report = tmp_path / "check.json"
    run = subprocess.run([sys.executable, "-m", "bvn_plan.cli", "check", str(out / "slicer" / "L3_vertebra.stl"),
                          "--level", "L3", "--frame", "LPS", "--markups", str(out / "slicer" / "L3.mrk.json"),
                          "--json", str(report)], capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    checked = json.loads(report.read_text())
    assert np.allclose(convert_points(checked["tip"], "LPS", "RAS"), o.chosen.path.tip, atol=1e-3)
    ours = o.chosen.check.clearances["spinal_canal:lesion"].clearance_mm
    assert abs(checked["clearances"]["spinal_canal:lesion"]["clearance_mm"] - ours) < 1.0
    assert checked["verdict"] == o.chosen.verdict


def test_ct_numbers_come_from_bone(planned, totalseg_dir):
    import nibabel as nib

    result, _, _ = planned
    ct = nib.load(str(totalseg_dir / "example_ct.nii.gz"))
    for o in _planned(result):
        hu = o.ct_hu[f"{o.chosen.side} {o.chosen.approach}"]
        assert hu["path"]["samples"] > 10 and hu["lesion"]["samples"] > 300
        assert hu["lesion"]["median"] > 80 and hu["path"]["median"] > 80, (o.level, hu)  # bone, not soft tissue
    # negative control: the same points read as LPS land outside the body (air/soft tissue or off the grid)
    o = _planned(result)[0]
    wrong = copy.copy(o.vertebra)
    wrong.patient_frame = "LPS"
    mislaid = path_and_lesion_hu(ct, o.chosen, wrong)
    assert mislaid["lesion"]["samples"] == 0 or mislaid["lesion"]["median"] < 80


def test_report_embeds_the_pictures(planned, tmp_path):
    result, _, _ = planned
    o = _planned(result)[0]
    path = write_report(tmp_path / "report.html", [o])
    html = path.read_text()
    images = [chunk.split("'", 1)[0] for chunk in html.split("data:image/png;base64,")[1:]]
    assert len(images) == 5  # 3D scene oblique and axial; fluoroscopy AP, lateral, en face
    for image in images:
        png = base64.b64decode(image)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert max(width, height) >= 512  # the fluoroscopy too, which is enlarged to be legible
    assert "src='http" not in html and "<link" not in html  # self-contained


def test_markups_without_a_patient_frame_follow_slicer_lps(planned, tmp_path):
    """A mesh with no patient frame is shown by Slicer as LPS: markups say LPS with the model's own
    coordinates and the meshes are written unconverted."""
    result, _, _ = planned
    o = _planned(result)[0]
    bare = copy.copy(o.vertebra)
    bare.patient_frame = None
    files = write_level(o.level_plan, bare, tmp_path, o.chosen)
    document = json.loads(files["markups"].read_text())
    assert {node["coordinateSystem"] for node in document["markups"]} == {"LPS"}
    assert np.allclose(document["markups"][0]["controlPoints"][-1]["position"], o.chosen.path.tip)
    _, lesion = _read_stl(files["lesion"])
    assert abs(lesion.mean(axis=0) - o.chosen.lesion.centre).max() < 0.5


def test_levels_planned_in_one_process_match_those_planned_side_by_side(planned, totalseg_dir, tmp_path):
    _, out, _ = planned  # planned with the default CASE_WORKERS processes
    assert CASE_WORKERS > 1
    document = _case_document(totalseg_dir) | {"levels": "L4-L5"}
    case = case_from_dict(document, totalseg_dir, source="test case")
    plan_case(case, tmp_path / "one", workers=1)
    side_by_side = json.loads((out / "plan.json").read_text())["levels"]
    one_process = json.loads((tmp_path / "one" / "plan.json").read_text())["levels"]
    for level in ("L4", "L5"):
        assert one_process[level] == side_by_side[level]


def test_a_rerun_replaces_the_output_whole(tmp_path):
    out = tmp_path / "case"

    def first(folder):
        (folder / "old_only.txt").write_text("old")
        (folder / "plan.json").write_text("old")
        (folder / DONE_MARKER).write_text("{}")

    def second(folder):
        (folder / "plan.json").write_text("new")
        (folder / DONE_MARKER).write_text("{}")

    def broken(folder):
        (folder / "plan.json").write_text("half")
        raise InputError("stopped half-way")

    replace_directory(out, first)
    replace_directory(out, second)
    assert sorted(p.name for p in out.iterdir()) == sorted(["plan.json", DONE_MARKER])
    with pytest.raises(InputError, match="half-way"):
        replace_directory(out, broken)
    assert (out / "plan.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["case"]  # no temporary folder left


def test_a_foreign_output_folder_is_refused(tmp_path, totalseg_dir):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    case = case_from_dict(_case_document(totalseg_dir), totalseg_dir)
    with pytest.raises(InputError, match="not a finished bvn-plan case folder"):
        plan_case(case, out)
    assert (out / "thesis.docx").read_text() == "precious"


@pytest.mark.parametrize("change, message", [
    ({"colour": "blue"}, "unknown field"),
    ({"levels": 4}, "levels"),
    ({"input": {}}, "exactly one of input.labelmap or input.meshes"),
    ({"plan": {"preferred_approach": "anterior"}}, "plan.preferred_approach"),
    ({"clinical": {"nrs": 14}}, "clinical.nrs"),
    ({"input": {"labelmap": "missing.nii.gz"}}, "does not exist"),
    ({"levels": "L5-L3"}, "runs upward"),
    ({"plan": {"settings": {"speed": 2}}}, "unknown planner setting"),
    ({"plan": {"device": {"lesion_diameter_mm": -1}}}, "lesion_diameter_mm"),
])
def test_bad_case_files_say_what_is_wrong(totalseg_dir, change, message):
    document = dict(_case_document(totalseg_dir), **change)
    with pytest.raises(InputError, match=message):
        case_from_dict(document, totalseg_dir)


def test_the_documented_example_loads(totalseg_dir):
    case = load_case(PROJECT / "examples" / "case_example.yaml")
    assert case.levels == LEVELS and case.labelmap == (totalseg_dir / "totalseg.nii.gz").resolve()
    assert case.eligibility().verdict == "indicated"


def test_a_level_outside_the_treated_levels_is_named_without_clinical_data(tmp_path):
    """A case of one real L1 (VerSe) with no clinical section: the plan file's notes say that L1 is
    outside the treated levels L3-S1; the anatomy is still found."""
    mesh = PROJECT.parent / "shared" / "data" / "verse_L1" / "L1_sub-verse016.stl"
    document = {"case_id": "verse-L1", "levels": ["L1"], "plan": {"stage": "anatomy", "images": False},
                "input": {"meshes": {"L1": {"path": str(mesh), "frame": "RAS"}}}}
    result = plan_case(case_from_dict(document, PROJECT), tmp_path / "out")
    notes = json.loads((tmp_path / "out" / "plan.json").read_text())["input_notes"]
    assert any("L1 is outside the treated levels L3-S1" in n for n in notes), notes
    assert result.levels[0].landmarks is not None


def test_a_grossly_mislabelled_case_level_is_refused_unless_trusted(vhm_dir, tmp_path):
    """The VHM L3 given as the case's L5 stops the case with the level message (exit 2, nothing
    written); input.trust_level plans it as labelled and keeps the mismatch in the notes."""
    document = {"case_id": "vhm-L3-as-L5", "levels": ["L5"], "plan": {"stage": "anatomy", "images": False},
                "input": {"meshes": {"L5": {"path": str(vhm_dir / "L3_whole.stl")}}}}
    with pytest.raises(InputError, match="this looks like L3, not L5") as refused:
        plan_case(case_from_dict(document, PROJECT), tmp_path / "refused")
    assert refused.value.exit_code == 2 and not (tmp_path / "refused").exists()
    document["input"]["trust_level"] = True
    result = plan_case(case_from_dict(document, PROJECT), tmp_path / "trusted")
    assert any("planned as labelled (L5)" in n for n in result.levels[0].landmarks.notes)
