"""Loading vertebra meshes: formats, units, repairs and the errors bad input gets."""

import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from bvn_plan import BvnPlanWarning, InputError, Vertebra


def test_every_vhm_mesh_loads_watertight_in_mm(vhm_dir):
    for path in sorted(vhm_dir.glob("*.stl")):
        v = Vertebra.load(path)
        assert v.input_units == "mm"
        assert v.mesh.is_watertight, path.name
        assert 25 < v.mesh.extents.max() < 250
        assert v.mesh.volume > 0  # outward normals


def test_metres_obj_is_detected_converted_and_matches_the_stl(vhm_dir):
    with pytest.warns(BvnPlanWarning, match="METRES"):
        v = Vertebra.load(vhm_dir / "L4_whole_original_metres.obj")
    ref = Vertebra.load(vhm_dir / "L4_whole.stl")
    assert v.input_units == "m" and v.scale_to_mm == 1000
    # per-face-normal OBJ vertices are merged into one closed surface
    assert v.mesh.is_watertight and v.mesh.euler_number == 0
    assert abs(v.mesh.volume - ref.mesh.volume) / ref.mesh.volume < 1e-3
    np.testing.assert_allclose(np.sort(v.mesh.extents), np.sort(ref.mesh.extents), atol=0.05)
    # model coordinates go back to the file's units
    np.testing.assert_allclose(v.to_input_units(v.mesh.vertices).max(axis=0) * 1000, v.mesh.vertices.max(axis=0))


@pytest.mark.parametrize("units,scale", [("cm", 0.1), ("in", 1 / 25.4), ("m", 0.001)])
def test_explicit_units_convert_to_mm(vhm_dir, units, scale):
    ref = Vertebra.load(vhm_dir / "L3_whole.stl")
    mesh = ref.mesh.copy()
    mesh.apply_scale(scale)
    v = Vertebra.from_mesh(mesh, units=units)
    np.testing.assert_allclose(v.mesh.extents, ref.mesh.extents, rtol=1e-9)


def test_cm_sized_mesh_without_units_asks_for_them(vhm_dir):
    mesh = Vertebra.load(vhm_dir / "L3_whole.stl").mesh
    mesh.apply_scale(0.1)
    with pytest.raises(InputError, match="--units cm"):
        Vertebra.from_mesh(mesh, units=None)


@pytest.mark.parametrize("fmt", ["ply", "obj", "off", "vtp", "vtk"])
def test_other_formats_round_trip(tmp_path, vhm_dir, fmt):
    import pyvista as pv

    ref = Vertebra.load(vhm_dir / "L5_whole.stl").mesh
    path = tmp_path / f"v.{fmt}"
    if fmt in ("vtp", "vtk"):
        pv.wrap(ref).save(path)
    else:
        ref.export(path)
    v = Vertebra.load(path)
    assert v.mesh.is_watertight
    assert abs(v.mesh.volume - ref.volume) / ref.volume < 1e-6


def test_small_hole_is_filled_with_a_warning(vhm_dir):
    mesh = Vertebra.load(vhm_dir / "L2_whole.stl").mesh
    keep = np.ones(len(mesh.faces), bool)
    keep[100] = False  # one missing triangle
    with pytest.warns(BvnPlanWarning, match="holes"):
        v = Vertebra.from_mesh(trimesh.Trimesh(mesh.vertices, mesh.faces[keep], process=False))
    assert v.mesh.is_watertight


def test_inverted_normals_are_fixed(vhm_dir):
    mesh = Vertebra.load(vhm_dir / "L1_whole.stl").mesh
    flipped = trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False)
    assert flipped.volume < 0
    assert Vertebra.from_mesh(flipped).mesh.volume > 0


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Vertebra.load(tmp_path / "nope.stl")


def test_unknown_format(tmp_path):
    (tmp_path / "v.xyz").write_text("1 2 3\n")
    with pytest.raises(InputError, match="unsupported format"):
        Vertebra.load(tmp_path / "v.xyz")


@pytest.mark.parametrize("content", [b"", b"solid x\nthis is not an stl\n", b"\x00\x01garbage" * 5])
def test_empty_or_garbage_file(tmp_path, content):
    path = tmp_path / "v.stl"
    path.write_bytes(content)
    with pytest.raises(InputError):
        Vertebra.load(path)


def test_truncated_binary_stl(tmp_path, vhm_dir):
    data = (vhm_dir / "L4_whole.stl").read_bytes()
    path = tmp_path / "cut.stl"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError):
        Vertebra.load(path)


def test_nan_vertices(vhm_dir):
    mesh = Vertebra.load(vhm_dir / "L4_whole.stl").mesh
    vertices = mesh.vertices.copy()
    vertices[5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        Vertebra.from_mesh(trimesh.Trimesh(vertices, mesh.faces, process=False))


def test_blown_up_coordinates_and_dangling_faces_are_refused(vhm_dir):
    """Flipped bits in a file: a coordinate of 1e30, a face naming a vertex that does not exist."""
    mesh = Vertebra.load(vhm_dir / "L4_whole.stl").mesh
    vertices = mesh.vertices.copy()
    vertices[5, 1] = 1e30
    with pytest.raises(InputError, match="damaged"):
        Vertebra.from_mesh(trimesh.Trimesh(vertices, mesh.faces, process=False))
    faces = mesh.faces.copy()
    faces[7, 2] = len(mesh.vertices) + 10
    with pytest.raises(InputError, match="damaged"):
        Vertebra.from_mesh(trimesh.Trimesh(mesh.vertices, faces, process=False))


def test_degenerate_faces_are_removed_with_a_warning(vhm_dir):
    mesh = Vertebra.load(vhm_dir / "L4_whole.stl").mesh
    faces = np.vstack([mesh.faces, [[0, 0, 1], [2, 2, 2]]])
    with pytest.warns(BvnPlanWarning, match="degenerate"):
        v = Vertebra.from_mesh(trimesh.Trimesh(mesh.vertices, faces, process=False))
    assert len(v.mesh.faces) == len(mesh.faces)


def test_two_vertebrae_in_one_file_are_refused(vhm_dir):
    a = Vertebra.load(vhm_dir / "L3_whole.stl").mesh
    b = Vertebra.load(vhm_dir / "L4_whole.stl").mesh
    with pytest.raises(InputError, match="several vertebrae"):
        Vertebra.from_mesh(trimesh.util.concatenate([a, b]))


def test_small_fragment_is_dropped(vhm_dir):
    a = Vertebra.load(vhm_dir / "L3_whole.stl").mesh
    speck = trimesh.creation.icosphere(radius=1.0)
    speck.apply_translation([200, 0, 0])
    with pytest.warns(BvnPlanWarning, match="fragment"):
        v = Vertebra.from_mesh(trimesh.util.concatenate([a, speck]), units="mm")
    assert abs(v.mesh.volume - a.volume) < 1e-6 * a.volume


@pytest.mark.parametrize("radius", [2.0, 500.0])
def test_mesh_far_too_small_or_large(radius):
    with pytest.raises(InputError, match="across"):
        Vertebra.from_mesh(trimesh.creation.icosphere(radius=radius), units="mm")


def test_unknown_level_and_frame(vhm_dir):
    with pytest.raises(InputError, match="unknown vertebral level"):
        Vertebra.load(vhm_dir / "L4_whole.stl", level="L9")
    with pytest.raises(InputError, match="unknown patient frame"):
        Vertebra.load(vhm_dir / "L4_whole.stl", frame="XYZ")
    assert Vertebra.load(vhm_dir / "L4_whole.stl", level="vertebrae_l4", frame="lps").level == "L4"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bvn_plan.cli", *args], capture_output=True, text=True)


def test_cli_info_reports_units_and_errors_cleanly(vhm_dir, tmp_path):
    ok = _cli("info", str(vhm_dir / "L4_whole_original_metres.obj"), "--json", str(tmp_path / "info.json"))
    assert ok.returncode == 0, ok.stderr
    record = json.loads((tmp_path / "info.json").read_text())
    assert record["input_units"] == "m" and record["genus"] == 1
    size = " x ".join(f"{x:.1f}" for x in record["extents_mm"])
    assert "units of the file" in ok.stdout and size in ok.stdout and "e-0" not in ok.stdout  # the summary, in mm
    assert "METRES" in ok.stderr
    missing = _cli("info", str(tmp_path / "nope.stl"))
    assert missing.returncode == 2
    assert "not found" in missing.stderr and "Traceback" not in missing.stderr
    bad_level = _cli("info", str(vhm_dir / "L4_whole.stl"), "--level", "X7")
    assert bad_level.returncode == 2 and "unknown vertebral level" in bad_level.stderr


def test_the_space_tag_of_an_exported_stl_is_read_back_by_every_command(vhm_dir, tmp_path):
    """bvn-plan's Slicer STL (LPS, header SPACE=LPS) reloads as LPS: the same bone in the same place."""
    from click.testing import CliRunner

    from bvn_plan.cli import main
    from bvn_plan.coordinates import convert_points
    from bvn_plan.mesh_io import file_patient_frame
    from bvn_plan.workflow.slicer_export import write_stl_lps

    ras = Vertebra.load(vhm_dir / "L4_whole.stl", level="L4", frame="RAS")
    exported = write_stl_lps(tmp_path / "L4_vertebra.stl", ras.mesh, "RAS")
    assert file_patient_frame(exported) == "LPS" and file_patient_frame(vhm_dir / "L4_whole.stl") is None
    again = Vertebra.load(exported, level="L4")
    assert again.patient_frame == "LPS"
    np.testing.assert_allclose(again.mesh.bounds, np.sort(convert_points(ras.mesh.bounds, "RAS", "LPS"), axis=0),
                               atol=1e-3)
    run = CliRunner().invoke(main, ["info", str(exported), "--level", "L4", "--json", str(tmp_path / "info.json")])
    assert run.exit_code == 0 and json.loads((tmp_path / "info.json").read_text())["patient_frame"] == "LPS"
    with pytest.raises(InputError, match="SPACE=LPS but the frame given is RAS"):
        Vertebra.load(exported, level="L4", frame="RAS")
    run = CliRunner().invoke(main, ["info", str(exported), "--level", "L4", "--frame", "RAS"])
    assert run.exit_code == InputError.exit_code and "SPACE=LPS" in run.output


def test_space_tags_in_text_headers_and_nowhere_else(vhm_dir, tmp_path):
    from bvn_plan.mesh_io import file_patient_frame

    mesh = trimesh.load(vhm_dir / "L4_whole.stl")
    ascii_stl = tmp_path / "a.stl"
    ascii_stl.write_text(trimesh.exchange.stl.export_stl_ascii(mesh).replace("solid", "solid SPACE=RAS", 1))
    obj = tmp_path / "a.obj"
    obj.write_text("# SPACE=RAS\n" + trimesh.exchange.obj.export_obj(mesh))
    assert file_patient_frame(ascii_stl) == "RAS" and file_patient_frame(obj) == "RAS"
    # a binary STL whose triangle data happens to hold the bytes is not tagged: only its header counts
    data = bytearray(trimesh.exchange.stl.export_stl(mesh))
    data[200:209] = b"SPACE=RAS"
    binary = tmp_path / "b.stl"
    binary.write_bytes(bytes(data))
    assert file_patient_frame(binary) is None
