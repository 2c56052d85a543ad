"""Slicer markups (.mrk.json v1.0.3): round trips, frame conversion, validation, atomic writes."""

import json
import os

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from bvn_plan.errors import InputError
from bvn_plan.workflow import Markup, SCHEMA_URL, read_markups, validate_markups, write_markups
from bvn_plan.errors import BvnPlanWarning

CURVE = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0], [0.0, 6.0, 18.0], [2.0, 6.0, 18.0]])  # 10 + 10 + 2 mm


def _plan(frame):
    return [
        Markup("Line", "L4_R_trajectory", [[10.0, -40.0, 5.0], [13.0, -36.0, 5.0]], frame,
               labels=["L4_R_entry", "L4_R_target"], color=(0.0, 1.0, 0.0)),
        Markup("Curve", "L4_R_cannula", CURVE, frame, descriptions=["a", "b", "c", "d"]),
        Markup("Fiducial", "L4_targets", [[1.5, 2.5, -3.5], [0.0, 0.0, 0.0]], frame,
               labels=["L4_BVN_terminus", "L4_tip"], color=(1.0, 0.0, 0.0)),
    ]


@pytest.mark.parametrize("frame", ["LPS", "RAS"])
def test_round_trip_keeps_types_names_points_labels_and_colours(tmp_path, frame):
    written = _plan(frame)
    path = write_markups(tmp_path / "plan.mrk.json", written)
    read = read_markups(path, frame=frame)
    assert [m.type for m in read] == ["Line", "Curve", "Fiducial"]
    for before, after in zip(written, read):
        assert after.name == before.name and after.coordinate_system == frame
        assert np.allclose(after.points, before.points, atol=1e-12)
        assert after.labels == before.labels and after.descriptions == before.descriptions
        assert after.color == before.color
    document = json.loads(path.read_text())
    assert document["@schema"] == SCHEMA_URL
    assert validate_markups(document, strict=True) == []
    line, curve, points = document["markups"]
    assert line["coordinateSystem"] == frame and line["coordinateUnits"] == "mm"
    assert line["measurements"][0]["value"] == pytest.approx(5.0)  # 3-4-5 triangle
    assert curve["measurements"][0]["value"] == pytest.approx(22.0)
    assert points["measurements"] == []
    assert all(p["positionStatus"] == "defined" for p in line["controlPoints"])
    # Orientation is the identity in RAS written in the file's frame.
    sign = -1.0 if frame == "LPS" else 1.0
    assert line["controlPoints"][0]["orientation"] == [sign, 0, 0, 0, sign, 0, 0, 0, 1]


def test_lps_file_read_as_ras_flips_x_and_y(tmp_path):
    path = write_markups(tmp_path / "plan.mrk.json", _plan("LPS"))
    for lps, ras in zip(_plan("LPS"), read_markups(path, frame="RAS")):
        assert np.allclose(ras.points[:, :2], -lps.points[:, :2]) and np.allclose(ras.points[:, 2], lps.points[:, 2])
        assert np.allclose(ras.points_in("LPS"), lps.points)


def _valid_document(tmp_path):
    return json.loads(write_markups(tmp_path / "plan.mrk.json", _plan("LPS")).read_text())


def test_validator_catches_structural_errors(tmp_path):
    document = _valid_document(tmp_path)
    del document["markups"][0]["controlPoints"][1]["positionStatus"]
    document["markups"][1]["coordinateSystem"] = "XYZ"
    document["markups"][2]["controlPoints"][0]["position"] = [1.0, 2.0]
    document["markups"][2]["display"]["color"] = [1.0, 2.0, 0.0]
    document["markups"][2]["controlPoints"][1]["selected"] = "yes"
    strict = validate_markups(document, strict=True)
    assert any("markups[0].controlPoints[1]" in p and "positionStatus" in p for p in strict)
    assert any(p.startswith("markups[1].coordinateSystem") and "'XYZ'" in p for p in strict)
    assert any(p.startswith("markups[2].controlPoints[0].position") and "3 numbers" in p for p in strict)
    assert any(p.startswith("markups[2].display.color") for p in strict)
    assert any(p.startswith("markups[2].controlPoints[1].selected") for p in strict)
    assert len(strict) == 5
    # positionStatus has a schema default, so only the strict check demands it.
    assert not any("positionStatus" in p for p in validate_markups(document))


def test_validator_catches_missing_top_level_keys_bad_types_and_booleans_as_numbers(tmp_path):
    assert validate_markups([]) == ["top level: expected a JSON object, got a list of 0"]
    problems = validate_markups({"markups": [{"name": "x"}, {"type": "Spline"}, 3]})
    assert "top level: missing required key '@schema'" in problems
    assert "markups[0]: missing required key 'type'" in problems
    assert any(p.startswith("markups[1].type") for p in problems)
    assert any(p.startswith("markups[2]: expected an object") for p in problems)
    document = _valid_document(tmp_path)
    document["markups"][0]["controlPoints"][0]["position"] = [True, 0.0, 0.0]
    document["markups"][0]["controlPoints"].append(dict(document["markups"][0]["controlPoints"][1]))
    strict = validate_markups(document, strict=True)
    assert any("position" in p and "finite numbers" in p for p in strict)
    assert any("a Line has at most 2 control points" in p for p in strict)


def test_reading_slicer_style_file_with_defaults_units_and_other_nodes(tmp_path):
    document = {
        "@schema": SCHEMA_URL,
        "markups": [
            {"type": "ROI", "name": "box", "controlPoints": []},
            {"type": "Fiducial", "name": "F", "coordinateUnits": ["um", "UCUM", "micrometer"], "controlPoints": [
                {"label": "F-1", "position": [1000.0, 2000.0, 3000.0], "positionStatus": "defined"},
                {"label": "F-2", "position": [0.0, 0.0, 0.0], "positionStatus": "undefined"},
            ]},
        ],
    }
    path = tmp_path / "slicer.mrk.json"
    path.write_text(json.dumps(document))
    with pytest.warns(BvnPlanWarning, match="skipped"):
        (fiducials,) = read_markups(path, frame="RAS")
    # No coordinateSystem: the schema default LPS applies; um are converted to mm.
    assert np.allclose(fiducials.points, [[-1.0, -2.0, 3.0]]) and fiducials.labels == ["F-1"]


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "plan.mrk.json"
    path.write_text("previous plan")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(InputError, match="nothing was written"):
        write_markups(path, _plan("RAS"))
    assert path.read_text() == "previous plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.mrk.json"]


def test_bad_files_and_markups_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_markups(tmp_path / "missing.mrk.json")
    (tmp_path / "text.mrk.json").write_text("{not json")
    with pytest.raises(InputError, match="not a JSON markups file"):
        read_markups(tmp_path / "text.mrk.json")
    (tmp_path / "other.mrk.json").write_text(json.dumps({"@schema": SCHEMA_URL, "markups": [{"type": "Line",
                                                         "coordinateSystem": "IJK"}]}))
    with pytest.raises(InputError, match="other.mrk.json is not a valid Slicer markups file.*IJK"):
        read_markups(tmp_path / "other.mrk.json")
    with pytest.raises(InputError, match="needs exactly 2 points, got 3"):
        Markup("Line", "bad", np.zeros((3, 3)))
    with pytest.raises(InputError, match="NaN"):
        Markup("Fiducial", "bad", [[np.nan, 0, 0]])
    with pytest.raises(InputError, match="coordinate_system"):
        Markup("Fiducial", "bad", [[0, 0, 0]], coordinate_system=None)
    with pytest.raises(InputError, match="unknown patient frame"):
        Markup("Fiducial", "bad", [[0, 0, 0]], coordinate_system="IJK")
    with pytest.raises(InputError, match="must end in .mrk.json"):
        write_markups(tmp_path / "plan.txt", _plan("RAS"))
    with pytest.raises(InputError, match="does not exist"):
        write_markups(tmp_path / "no_folder" / "plan.mrk.json", _plan("RAS"))


def test_slicer_scene_opens_every_part_in_its_colour_in_lps(tmp_path):
    """scene/<level>.mrml names every model and markups node with a file that exists, in LPS, in the
    colours the pictures use; the models are the STLs written beside it, the markups the same
    nodes as <level>.mrk.json."""
    import warnings
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from bvn_plan import Vertebra, plan_level
    from bvn_plan.mesh_io import file_patient_frame
    from bvn_plan.viz import scene
    from bvn_plan.workflow import write_level

    vertebra = Vertebra.load(Path(__file__).resolve().parents[1] / "meshes" / "L4.ply", level="L4", frame="RAS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level_plan = plan_level(vertebra, approaches=("transpedicular",))
    written = write_level(level_plan, vertebra, tmp_path)
    root = ET.parse(written["scene"]).getroot()
    ids = {node.get("id"): node for node in root}
    models = {}
    for model in root.iter("Model"):
        refs = dict(r.split(":") for r in model.get("references").strip(";").split(";"))
        storage, display = ids[refs["storage"]], ids[refs["display"]]
        file = (written["scene"].parent / storage.get("fileName")).resolve()
        assert file.exists() and storage.get("coordinateSystem") == "LPS" and file_patient_frame(file) == "LPS"
        models[model.get("name")] = (file, [float(c) for c in display.get("color").split()])
    expected = {"vertebra": scene.BONE_COLOUR, "canal": scene.CANAL_COLOUR, "lesion": scene.LESION_COLOUR,
                "path": scene.CANNULA_COLOUR, **scene.ZONE_COLOURS}
    assert set(models) == {f"L4_{part}" for part in expected}
    for part, hex_colour in expected.items():
        file, colour = models[f"L4_{part}"]
        assert file == written[part].resolve()
        np.testing.assert_allclose(colour, [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)], atol=2e-3)
    # the zones are faces of the vertebra: every zone vertex is a vertebra vertex (LPS mm)
    bone = trimesh.load(written["vertebra"])
    for zone in scene.ZONE_REGIONS:
        distance, _ = cKDTree(bone.vertices).query(trimesh.load(written[zone]).vertices)
        assert distance.max() < 1e-3
    combined = {m.name: m for m in read_markups(written["markups"])}
    nodes = [node for node in root if node.tag.startswith("Markups") and node.tag not in
             ("MarkupsDisplay", "MarkupsJsonStorage")]
    assert {n.get("name") for n in nodes} == set(combined)
    for node in nodes:
        refs = dict(r.split(":") for r in node.get("references").strip(";").split(";"))
        (alone,) = read_markups(written["scene"].parent / ids[refs["storage"]].get("fileName"))
        assert node.tag == "Markups" + alone.type and alone.name == node.get("name")
        np.testing.assert_allclose(alone.points, combined[alone.name].points)
