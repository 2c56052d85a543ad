"""The catalogue of bad inputs: each gets a clear error or a clearly flagged degraded result.

======================================  ===========================================  ==========================
bad input                               what happens                                 tested in
======================================  ===========================================  ==========================
missing file, folder, unknown format    InputError naming the file                   test_mesh_io.py
empty (0 bytes) / garbage file          InputError "is empty" / "cannot read"        test_mesh_io.py
truncated binary STL                    InputError "Is the file complete?"           test_mesh_io.py
any mesh file truncated / overwritten   InputError, or loads with a note if faces    test_properties.py (fuzzed,
(STL, OBJ, PLY, OFF, VTP)               were lost                                    real L4)
NaN / infinite vertices                 InputError with the count                    test_mesh_io.py
degenerate / duplicate faces            removed, noted                               test_mesh_io.py
non-manifold fin (3 faces on an edge)   fin dropped as a fragment, noted             here
two overlapping shells (self-           InputError "several vertebrae"               here
intersecting union of two copies)
one self-intersecting shell (endplate   noted at load ("crosses itself", where);     here (CLI: exit code 3)
pushed through the body)                the anatomy refuses it, AnatomyError
a small fold through the surface        noted at load ("crosses itself", where)     here
(real meshes: none found)
inverted normals                        fixed (outward)                              test_mesh_io.py
open mesh with a hole                   filled, noted                                test_mesh_io.py
mesh in metres                          detected and converted, noted                test_mesh_io.py
mesh in cm or inches, no --units        InputError asking for --units cm / in        test_mesh_io.py (cm), here (in)
several vertebrae in one file           InputError                                   test_mesh_io.py
small fragment beside a vertebra        dropped, noted                               test_mesh_io.py
far too small / large                   InputError                                   test_mesh_io.py
not a vertebra (sphere, torus, ...)     AnatomyError                                 test_anatomy.py
pedicle cut off (real VHM L4)           that pedicle's confidence 0, width flagged   here
very dense mesh (> 500k faces)          loads, noted (2.2M faces: 15 s + 51 s,       here (note, threshold
                                        2.6 GB measured); the CLI tells each         lowered), test_cli.py
                                        anatomy stage and the time so far            (stages)
wrong level label (L5 labelled L1)      morphometry outliers noted, body and         here
                                        terminus confidence lowered
frame mirrored front-to-back            AnatomyError                                 test_anatomy.py
labelmap: swapped / merged labels       plausibility findings                        test_labelmap.py
labelmap: flipped voxel order           same world surface                           test_labelmap.py
labelmap: affine mirroring left/right   "mirrored" finding when liver, spleen,       here
                                        kidneys, stomach or gallbladder are
                                        labelled; otherwise NOT detected (the
                                        vertebrae are symmetric)
labelmap: bad files, no names           InputError                                   test_labelmap.py
case file: empty, binary, not a mapping InputError about the case file                here
case file: missing / invalid fields     InputError naming the field                  test_case.py,
                                                                                     test_properties.py (fuzzed)
trajectory: bad points, no bone entry   InputError                                   test_safety.py, test_cli.py
output: a write fails on a re-run       old plan.json + summary.txt both kept        here
output: anatomy --json write fails      old file kept, exit code 2                   here
======================================  ===========================================  ==========================
"""

import json
import os
import warnings

import nibabel as nib
import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from bvn_plan import mesh_io
from bvn_plan.anatomy import find_anatomy
from bvn_plan.atomic import write_files_atomic
from bvn_plan.cli import main
from bvn_plan.errors import InputError, LevelMismatchError
from bvn_plan.workflow import load_labelmap
from bvn_plan.errors import BvnPlanWarning
from bvn_plan.vertebra import Vertebra

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def l4(vhm_dir):
    return trimesh.load(vhm_dir / "L4_whole.stl")


def _anatomy(vertebra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BvnPlanWarning)
        return find_anatomy(vertebra)


def test_non_manifold_fin_is_dropped_with_a_note(l4):
    edge = l4.edges_unique[0]
    apex = l4.vertices[edge].mean(axis=0) + [0, 0, 5.0]
    vertices = np.vstack([l4.vertices, apex])
    faces = np.vstack([l4.faces, [edge[0], edge[1], len(vertices) - 1]])
    with pytest.warns(BvnPlanWarning, match="dropped 1 small fragment"):
        v = Vertebra.from_mesh(trimesh.Trimesh(vertices, faces, process=False), level="L4")
    assert v.mesh.is_watertight and len(v.mesh.faces) == len(l4.faces)


def test_two_overlapping_copies_are_refused_as_several_vertebrae(l4):
    shifted = l4.copy()
    shifted.apply_translation([5.0, 0, 0])
    with pytest.raises(InputError, match="several vertebrae"):
        Vertebra.from_mesh(trimesh.util.concatenate([l4, shifted]), level="L4")


def test_a_self_intersecting_shell_is_refused_by_the_anatomy_with_exit_code_3(l4, tmp_path):
    """VHM frame: +x anterior, +z superior. The anterior top of L4 (x > 20, z > 75 mm) is pushed
    45 mm down, through the body and out below it: still one closed shell, crossing itself."""
    vertices = l4.vertices.copy()
    moved = (vertices[:, 0] > 20) & (vertices[:, 2] > 75)
    vertices[moved, 2] -= 45.0
    path = tmp_path / "crossed.stl"
    trimesh.Trimesh(vertices, l4.faces, process=False).export(path)
    with pytest.warns(BvnPlanWarning, match="crosses itself"):
        Vertebra.load(path, level="L4")
    result = CliRunner().invoke(main, ["anatomy", str(path), "--level", "L4"])
    assert result.exit_code == 3, result.output
    assert "\nerror: " in result.output and "Traceback" not in result.output
    assert "vertebral body" in result.output


def test_a_small_fold_through_the_surface_is_noted_where_it_is(l4):
    """VHM frame (+x anterior, +z superior): a 3 mm patch of the anterior rim of the superior endplate
    (on the midline) pushed 35 mm down, through the inferior endplate: one closed shell crossing
    itself in a small region, noted with where. The unaltered real mesh loads without the note."""
    assert not any("crosses itself" in n for n in Vertebra.from_mesh(l4.copy(), level="L4").notes)
    vertices = l4.vertices.copy()
    front = (vertices[:, 0] > vertices[:, 0].max() - 6) & (np.abs(vertices[:, 1]) < 4) & (vertices[:, 2] > 60)
    patch = front & (vertices[:, 2] > vertices[front, 2].max() - 3)
    vertices[patch, 2] -= 35.0
    with pytest.warns(BvnPlanWarning, match="crosses itself") as caught:
        Vertebra.from_mesh(trimesh.Trimesh(vertices, l4.faces, process=False), level="L4")
    message = next(str(w.message) for w in caught if "crosses itself" in str(w.message))
    where = np.array(json.loads(message.split("around ")[1].split(" mm")[0]))
    assert where[0] > vertices[:, 0].max() - 10 and abs(where[1]) < 10  # at the anterior midline


def test_mesh_in_inches_asks_for_the_units_and_reads_with_them(l4):
    inches = l4.copy()
    inches.apply_scale(1 / 25.4)
    with pytest.raises(InputError, match="--units in"):
        Vertebra.from_mesh(inches, units=None)
    v = Vertebra.from_mesh(inches, units="in")
    np.testing.assert_allclose(v.mesh.extents, l4.extents, rtol=1e-9)


def test_a_pedicle_cut_off_is_flagged_on_its_side_only(l4):
    """VHM frame: +x anterior, +y left, +z superior; the right pedicle sits near y = -20 mm."""
    cut = l4.difference(trimesh.creation.box(bounds=[[-16, -32, 55], [-2, -13, 84]]), engine="manifold")
    with pytest.warns(BvnPlanWarning):
        v = Vertebra.from_mesh(cut, level="L4")
    found = _anatomy(v)
    intact = _anatomy(Vertebra.from_mesh(l4, level="L4"))
    assert found.confidence["right_pedicle"] == 0.0
    assert any(n.startswith("pedicle_width_right") and "L4 prior" in n for n in found.notes)
    assert not any(n.startswith("pedicle_width_left") for n in found.notes)
    assert not any(n.startswith("pedicle_width_right") for n in intact.notes)
    # the rest of the anatomy (and so the terminus) is unharmed
    assert np.linalg.norm(found.bvn_terminus - intact.bvn_terminus) < 1.0


def test_a_dense_mesh_is_noted(l4, monkeypatch):
    """The real threshold is 500k faces; a 2.2M-face subdivided L4 took 15 s to clean and 51 s for
    the anatomy (2.6 GB peak) and gave the same terminus: too slow for a test, so lower it here."""
    monkeypatch.setattr(mesh_io, "DENSE_MESH_FACES", len(l4.faces) - 1)
    with pytest.warns(BvnPlanWarning, match=f"{len(l4.faces)} faces, far more than planning needs"):
        Vertebra.from_mesh(l4, level="L4")


def test_a_wrong_level_label_is_refused_and_flagged_when_trusted(vhm_dir):
    """The VHM L5 called L1 is refused with the level message (exit 2); trusted, it is planned as L1
    with the mismatch and the implausible sizes in its notes and lowered confidences."""
    with pytest.raises(LevelMismatchError, match="not L1.*pass --level L[45], or --trust-level") as refused:
        _anatomy(Vertebra.load(vhm_dir / "L5_whole.stl", level="L1"))
    assert refused.value.exit_code == 2
    as_l1 = _anatomy(Vertebra(Vertebra.load(vhm_dir / "L5_whole.stl").mesh, level="L1", trust_level=True))
    as_l5 = _anatomy(Vertebra.load(vhm_dir / "L5_whole.stl", level="L5"))
    assert any("planned as labelled (L1)" in n for n in as_l1.notes)
    assert any(n.startswith("body_") and "L1 prior" in n for n in as_l1.notes)
    assert not any(n.startswith("body_") for n in as_l5.notes)
    assert as_l1.confidence["body"] < as_l5.confidence["body"]
    assert as_l1.confidence["bvn_terminus"] < as_l5.confidence["bvn_terminus"]
    assert as_l1.confidence["morphometry"] < as_l5.confidence["morphometry"]


def _mirrored_affine(image) -> np.ndarray:
    affine = image.affine.copy()
    affine[:, 0] *= -1  # the voxel i axis now runs to the left: the world is mirrored left/right
    return affine


def test_a_left_right_mirroring_affine_is_flagged_by_the_liver(totalseg_dir, tmp_path):
    """The real TotalSegmentator labels plus a liver block (label 5 in its numbering) 60 mm to the
    right of the spine (+i is +x = right in this file's affine): fine as given, flagged as
    mirrored when the affine's x column is negated."""
    image = nib.load(totalseg_dir / "totalseg.nii.gz")
    data = np.asanyarray(image.dataobj).astype(np.int16)
    spine = np.argwhere(data > 0)
    i, j, k = np.rint(spine.mean(axis=0)).astype(int)
    data[i + 15:i + 25, j - 5:j + 5, k - 5:k + 5] = 5
    for name, affine in (("as_given", image.affine), ("mirrored", _mirrored_affine(image))):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{name}.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BvnPlanWarning)
        as_given = load_labelmap(tmp_path / "as_given.nii.gz", scheme="totalseg").plausibility()
        with pytest.warns(BvnPlanWarning, match="mirrors left and right"):
            mirrored = load_labelmap(tmp_path / "mirrored.nii.gz", scheme="totalseg").plausibility()
    assert not [f for f in as_given if f.kind == "mirrored"]
    assert [f.kind for f in mirrored if "liver" in f.message] == ["mirrored"]


def test_a_left_right_mirroring_affine_without_organs_is_not_detected(totalseg_dir, tmp_path):
    """With vertebrae alone (left/right symmetric) only the determinant's sign hints at it. This
    documents the remaining gap: if a finding ever flags it, turn this into a test of that."""
    image = nib.load(totalseg_dir / "totalseg.nii.gz")
    mirrored = tmp_path / "mirrored.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), _mirrored_affine(image), image.header), mirrored)
    original, flipped = load_labelmap(totalseg_dir / "totalseg.nii.gz"), load_labelmap(mirrored)
    assert flipped.determinant_sign == -original.determinant_sign
    assert not [f for f in flipped.plausibility() if f.kind == "mirrored"]


@pytest.mark.parametrize("name, content", [
    ("case.yaml", b""), ("case.yaml", b"just some words"), ("case.yaml", b"- a\n- list\n"),
    ("case.json", b"{not json"), ("case.yaml", b"levels: [L4\n"), ("case.yaml", bytes(range(256)) * 4),
])
def test_a_case_file_that_is_not_a_case_says_so(tmp_path, name, content):
    from bvn_plan.workflow.case import load_case

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match="case"):
        load_case(path)


def test_a_failed_write_keeps_both_old_plan_files(tmp_path, monkeypatch):
    plan, summary = tmp_path / "plan.json", tmp_path / "summary.txt"
    plan.write_text("old plan")
    summary.write_text("old summary")
    calls = []

    def fsync_failing_on_the_second_file(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync_failing_on_the_second_file)
    with pytest.raises(InputError, match="none of them was changed"):
        write_files_atomic({plan: b"new plan", summary: b"new summary"})
    assert plan.read_text() == "old plan" and summary.read_text() == "old summary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "summary.txt"]  # no temp files left


def test_plan_cli_rerun_with_a_failing_write_leaves_the_old_outputs(tmp_path, monkeypatch):
    mesh = os.path.join(PROJECT, "meshes", "L4.ply")
    args = ["plan", mesh, "--level", "L4", "--frame", "RAS", "--approach", "transpedicular-straight",
            "--out", str(tmp_path)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"plan.json", "summary.txt"}
    calls = []

    def fsync_failing_on_the_second_file(fd):  # plan.json staged whole, then the disk fills up
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync_failing_on_the_second_file)
    second = CliRunner().invoke(main, args[:-1] + [str(tmp_path)] + ["--depth-fraction", "0.45"])
    assert second.exit_code == 2 and "none of them was changed" in second.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_anatomy_json_write_failure_keeps_the_old_file(tmp_path, vhm_dir, monkeypatch):
    out = tmp_path / "anatomy.json"
    out.write_text('{"old": true}')
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    result = CliRunner().invoke(main, ["anatomy", str(vhm_dir / "L4_whole.stl"), "--level", "L4", "--json", str(out)])
    assert result.exit_code == 2 and "nothing was written" in result.output
    assert json.loads(out.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["anatomy.json"]
