"""The command line: each subcommand end to end, its outputs' frames and its exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bvn_plan import Vertebra
from bvn_plan.anatomy import find_anatomy
from bvn_plan.workflow import Markup, write_markups

MESHES = Path(__file__).resolve().parents[1] / "meshes"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bvn_plan.cli", *map(str, args)], capture_output=True, text=True)


def test_help_lists_the_subcommands():
    out = _cli("--help")
    assert out.returncode == 0
    for name in ("anatomy", "check", "demo", "info", "labelmap", "plan", "render", "synth"):
        assert name in out.stdout, name
    assert _cli("check", "--help").returncode == 0


@pytest.mark.parametrize("command", ["anatomy", "check", "render", "plan", "case", "batch"])
def test_every_command_that_takes_a_level_can_trust_it(command):
    """--trust-level plans as labelled when the shape fits another level grossly better (exit 2
    otherwise: tests/test_identity.py runs it on real vertebrae)."""
    out = _cli(command, "--help")
    assert out.returncode == 0 and "--trust-level" in out.stdout


@pytest.fixture(scope="module")
def l4_path():
    """A straight path along the right pedicle axis of the bundled L4 (RAS mm) and its landmarks."""
    v = Vertebra.load(MESHES / "L4.ply", level="L4", frame="RAS")
    found = find_anatomy(v)
    ped = found.pedicles["right"]
    start = ped.isthmus_centre - 25 * ped.axis_direction
    tip = ped.isthmus_centre + 12 * ped.axis_direction
    return start, tip, found


def test_anatomy_json_states_frame_and_units(tmp_path, vhm_dir):
    out = tmp_path / "l4.json"
    res = _cli("anatomy", vhm_dir / "L4_whole_original_metres.obj", "--level", "L4", "--json", out)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert report["input_units"] == "m" and "no patient frame" in report["frame"]
    mm = np.array(report["landmarks_mm"]["bvn_terminus"])
    np.testing.assert_allclose(np.array(report["landmarks_input"]["bvn_terminus"]) * 1000, mm, atol=1e-3)


def test_check_points_and_markups_agree_across_frames(tmp_path, l4_path):
    start, tip, _ = l4_path
    by_points = tmp_path / "points.json"
    res = _cli("check", MESHES / "L4.ply", "--level", "L4", "--frame", "RAS", "--no-lesion",
               "--point", *start, "--point", *tip, "--json", by_points)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS" in res.stdout or "WARN" in res.stdout
    # the same line written by Slicer in LPS must give the same answer
    lps = np.array([start, tip]) * [-1, -1, 1]
    markups = write_markups(tmp_path / "traj.mrk.json", [Markup("Line", "L4_R", lps, coordinate_system="LPS")])
    by_markups = tmp_path / "markups.json"
    res2 = _cli("check", MESHES / "L4.ply", "--level", "L4", "--frame", "RAS", "--no-lesion",
                "--markups", markups, "--json", by_markups)
    assert res2.returncode == 0, res2.stderr
    a, b = json.loads(by_points.read_text()), json.loads(by_markups.read_text())
    assert a["verdict"] == b["verdict"]
    for zone, clearance in a["clearances"].items():
        assert b["clearances"][zone]["clearance_mm"] == pytest.approx(clearance["clearance_mm"], abs=1e-6)
    assert a["frame"].startswith("RAS")


def test_check_fails_a_breach_with_exit_code_4(l4_path):
    start, tip, found = l4_path
    # the same line moved medially by the pedicle's half width plus 4 mm: through the canal
    shift = -(found.pedicles["right"].isthmus_width_mm / 2 + 4.0) * found.frame.right
    res = _cli("check", MESHES / "L4.ply", "--level", "L4", "--frame", "RAS", "--no-lesion",
               "--point", *(start + shift), "--point", *(tip + shift))
    assert res.returncode == 4, res.stdout + res.stderr
    assert "FAIL" in res.stdout and "Gertzbein-Robbins grade" in res.stdout


def test_check_bad_input_exit_code_2(tmp_path):
    res = _cli("check", MESHES / "L4.ply", "--level", "L4")
    assert res.returncode == 2 and "no trajectory" in res.stderr and "Traceback" not in res.stderr
    res = _cli("check", MESHES / "L4.ply", "--level", "L4", "--point", 0, 0, 0, "--point", 0, 0, 0)
    assert res.returncode == 2 and "zero length" in res.stderr


def test_an_internal_error_is_one_line_with_exit_code_1(monkeypatch, vhm_dir):
    from click.testing import CliRunner

    import bvn_plan.anatomy.find
    from bvn_plan.cli import main

    monkeypatch.setattr(bvn_plan.anatomy.find, "find_anatomy", lambda *a, **k: 1 / 0)
    args = ["anatomy", str(vhm_dir / "L4_whole.stl"), "--level", "L4"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "internal error: ZeroDivisionError" in r.output and "Traceback" not in r.output
    assert isinstance(CliRunner().invoke(main, ["--debug"] + args).exception, ZeroDivisionError)


def test_a_dense_mesh_shows_a_progress_bar_of_the_anatomy_stages(monkeypatch, vhm_dir, tmp_path):
    """Above mesh_io.DENSE_MESH_FACES (lowered here to the VHM mesh's size) the anatomy shows a
    progress bar of its stages on stderr, which ends with all of them done (ANATOMY_STAGES, the
    stages find_anatomy reports, in order), and still answers on stdout."""
    from click.testing import CliRunner

    import bvn_plan.mesh_io
    from bvn_plan import Vertebra
    from bvn_plan.anatomy import find_anatomy
    from bvn_plan.anatomy.find import ANATOMY_STAGES
    from bvn_plan.cli import main

    stages = []
    find_anatomy(Vertebra.load(vhm_dir / "L4_whole.stl", level="L4"), progress=stages.append)
    assert stages == ["checking the surface is one piece", "mid-sagittal plane and canal axis", "anatomical frame",
                      "canal, body and endplates", "pedicles", "canal volume and morphometry"]
    assert len(stages) == ANATOMY_STAGES
    monkeypatch.setattr(bvn_plan.mesh_io, "DENSE_MESH_FACES", 1000)
    r = CliRunner().invoke(main, ["anatomy", str(vhm_dir / "L4_whole.stl"), "--level", "L4",
                                  "--json", str(tmp_path / "anatomy.json")])
    assert r.exit_code == 0, r.output
    assert "anatomy of L4_whole.stl" in r.stderr and f"{ANATOMY_STAGES}/{ANATOMY_STAGES}" in r.stderr
    assert "done: canal volume and morphometry" in r.stderr
    assert json.loads((tmp_path / "anatomy.json").read_text())["input_units"] == "mm"
    assert "bvn_terminus" not in r.stdout and "BVN terminus" in r.stdout  # people read labels, not keys


def test_lesion_output_format_is_checked(tmp_path):
    res = _cli("lesion", MESHES / "L4.ply", "--tip", 0, -5, 0, "--direction", -1, 0, 0, "--out", tmp_path / "x.xyz")
    assert res.returncode == 2 and ".stl, .ply or .obj" in res.stderr
    ok = _cli("lesion", MESHES / "L4.ply", "--tip", 0, -5, 0, "--direction", -1, 0, 0, "--out", tmp_path / "x.stl")
    assert ok.returncode == 0 and (tmp_path / "x.stl").stat().st_size > 1000


def test_t12_is_checked_for_teaching_and_never_silently(tmp_path, totalseg_dir):
    """The organ example's T12 (RAS mm): `check` along its right pedicle axis passes, and says on
    stderr that T12 lies outside the treated levels; T12 is no synthetic level, T11 no level at all."""
    import warnings

    from bvn_plan.workflow import load_labelmap

    v = load_labelmap(totalseg_dir.parent / "totalseg_organs_example" / "example_seg.nii.gz").vertebra("T12", cut_ok=True)
    mesh = tmp_path / "T12.ply"
    mesh.write_bytes(v.mesh.export(file_type="ply"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the labelmap's truncation and the morphometry notes
        ped = find_anatomy(v).pedicles["right"]
    start, tip = ped.isthmus_centre - 25 * ped.axis_direction, ped.isthmus_centre + 12 * ped.axis_direction
    out = _cli("check", mesh, "--level", "T12", "--frame", "RAS", "--units", "mm", "--point", *start, "--point", *tip,
               "--no-lesion")
    assert out.returncode == 0 and out.stdout.startswith("T12: PASS"), out.stdout + out.stderr
    assert "T12 is outside the treated levels L3-S1 (device label): planning is shown for teaching" in out.stderr
    synth = _cli("synth", "--level", "T12", "--out", tmp_path / "synth")
    assert synth.returncode == 2 and "T12 is not one of them" in synth.stderr, synth.stderr
    unknown = _cli("anatomy", mesh, "--level", "T11")
    assert unknown.returncode == 2 and "unknown vertebral level 'T11': use one of T12, L1" in unknown.stderr


def test_a_plan_outside_the_treated_levels_says_so_in_its_files(tmp_path):
    """`plan` at L1 (the toolkit's synthetic L1) runs, and its plan.json and summary.txt carry the
    note that L1 lies outside the treated levels L3-S1, not only the console."""
    import json

    out = _cli("plan", MESHES / "L1.ply", "--level", "L1", "--approach", "transpedicular",
               "--robustness-samples", "0", "--out", tmp_path)
    assert out.returncode in (0, 6), out.stdout + out.stderr
    message = "L1 is outside the treated levels L3-S1"
    assert message in out.stderr
    assert message in (tmp_path / "summary.txt").read_text()
    assert any(message in n for n in json.loads((tmp_path / "plan.json").read_text())["levels"]["L1"]["notes"])
