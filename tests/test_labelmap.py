"""NIfTI labelmaps -> vertebra surfaces: real TotalSegmentator CT labels and synthetic grids."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from bvn_plan.errors import InputError
from bvn_plan.imaging import sample_ct
from bvn_plan.workflow import Labelmap, VOLUME_RANGE_CM3, load_labelmap, load_labelmap_folder
from bvn_plan.errors import BvnPlanWarning

LUMBOSACRAL = ["L1", "L2", "L3", "L4", "L5", "S1"]


@pytest.fixture(scope="module")
def totalseg(totalseg_dir):
    return load_labelmap(totalseg_dir / "totalseg.nii.gz")


@pytest.fixture(scope="module")
def lumbar_vertebrae(totalseg):
    return {level: totalseg.vertebra(level) for level in LUMBOSACRAL}


def _save(data, affine, path, extension_xml=None):
    image = nib.Nifti1Image(np.asarray(data), affine)
    image.header.set_sform(affine, code=2)
    if extension_xml is not None:
        image.header.extensions.append(nib.nifti1.Nifti1Extension(0, extension_xml.encode()))
    nib.save(image, str(path))
    return path


def test_header_names_are_read_and_all_lumbosacral_levels_found(totalseg):
    assert totalseg.labels()["vertebrae_L4"] == 28
    assert totalseg.labels()["vertebrae_S1"] == 26
    assert totalseg.levels() == LUMBOSACRAL
    assert totalseg.spine_levels()[:2] == ["T11", "T12"]
    assert totalseg.determinant_sign == 1


@pytest.mark.parametrize("level", LUMBOSACRAL)
def test_each_level_is_one_watertight_surface_with_the_voxel_volume(totalseg, lumbar_vertebrae, level):
    vertebra = lumbar_vertebrae[level]
    mesh = vertebra.mesh
    assert vertebra.level == level and vertebra.patient_frame == "RAS" and vertebra.input_units == "mm"
    assert "totalseg.nii.gz" in vertebra.source and str(totalseg.label_value(level)) in vertebra.source
    assert mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1
    assert mesh.volume > 0  # outward normals
    volume_cm3 = mesh.volume / 1000
    low, high = VOLUME_RANGE_CM3[level[0]]
    assert low <= volume_cm3 <= high
    voxel_volume = totalseg.voxel_count(level) * totalseg.voxel_volume_mm3
    assert abs(mesh.volume / voxel_volume - 1) < 0.10


def test_levels_run_superior_to_inferior_and_pass_the_plausibility_check(totalseg, lumbar_vertebrae):
    heights = [lumbar_vertebrae[level].mesh.center_mass[2] for level in LUMBOSACRAL]
    assert all(upper > lower for upper, lower in zip(heights, heights[1:]))
    spacing = -np.diff(heights)
    assert np.all((20 < spacing) & (spacing < 50))  # lumbar segment height incl. disc ~ 30-40 mm
    assert totalseg.plausibility(LUMBOSACRAL) == []


@pytest.mark.parametrize("level", ["L1", "L4", "S1"])
def test_surface_vertices_map_back_onto_their_label(totalseg, lumbar_vertebrae, level):
    mask = totalseg.mask(level)
    distance_to_label = ndi.distance_transform_edt(~mask)  # voxels
    ijk = totalseg.world_to_voxel(lumbar_vertebrae[level].mesh.vertices)
    distance = ndi.map_coordinates(distance_to_label, ijk.T, order=1, mode="nearest")
    assert np.mean(distance <= 1.5) >= 0.95
    assert distance.max() < 1.25  # measured <= 0.92 voxel on this example


def test_the_thoracic_levels_cut_by_the_scan_are_flagged(totalseg):
    with pytest.warns(BvnPlanWarning):
        findings = totalseg.plausibility()
    assert {f.levels for f in findings if f.kind == "truncated"} == {("T11",), ("T12",)}


def test_swapped_level_labels_are_flagged(totalseg):
    data = totalseg.data.copy()
    l3, l4 = totalseg.label_value("L3"), totalseg.label_value("L4")
    data[totalseg.data == l3], data[totalseg.data == l4] = l4, l3
    swapped = Labelmap(data, totalseg.affine, totalseg.names, "swapped")
    with pytest.warns(BvnPlanWarning, match="not above"):
        findings = swapped.plausibility(LUMBOSACRAL)
    assert [(f.kind, f.levels) for f in findings] == [("order", ("L3", "L4"))]


def test_two_levels_merged_into_one_label_are_flagged(totalseg):
    data = totalseg.data.copy()
    data[totalseg.data == totalseg.label_value("L3")] = totalseg.label_value("L4")
    merged = Labelmap(data, totalseg.affine, totalseg.names, "merged")
    with pytest.warns(BvnPlanWarning):
        findings = merged.plausibility(["L1", "S1"])
    kinds = {(f.kind, f.levels) for f in findings}
    assert ("gap", ("L3",)) in kinds
    assert ("jump", ("L2", "L4")) in kinds and ("jump", ("L4", "L5")) in kinds


def test_a_flipped_voxel_order_gives_the_same_world_surface(totalseg, lumbar_vertebrae):
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, totalseg.data.shape[0] - 1
    mirrored = Labelmap(totalseg.data[::-1].copy(), totalseg.affine @ flip, totalseg.names, "flipped")
    assert mirrored.determinant_sign == -1
    mesh = mirrored.vertebra("L4").mesh
    reference = lumbar_vertebrae["L4"].mesh
    assert mesh.volume > 0 and mesh.is_watertight
    assert mesh.volume == pytest.approx(reference.volume, rel=0.005)
    assert np.allclose(mesh.center_mass, reference.center_mass, atol=0.1)


def test_headerless_file_needs_a_named_scheme(totalseg, tmp_path):
    path = _save(totalseg.data.astype(np.uint8), totalseg.affine, tmp_path / "plain.nii.gz")
    with pytest.raises(InputError, match="scheme='totalseg'"):
        load_labelmap(path)
    plain = load_labelmap(path, scheme="totalseg")
    assert plain.levels() == LUMBOSACRAL
    assert plain.label_value("L1") == 31


# --- synthetic grid with a mirrored axis, anisotropic voxels and an offset origin ---------

AFFINE = np.array([[-2.0, 0, 0, 100.0], [0, 1.5, 0, -50.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
# VerSe label value -> voxel box (inclusive index ranges i, j, k)
BOXES = {20: ((5, 14), (5, 14), (31, 45)), 21: ((5, 14), (5, 14), (13, 27)), 26: ((2, 19), (5, 14), (2, 9))}


def _box_labelmap():
    data = np.zeros((22, 20, 50), dtype=np.uint8)
    for value, ((i0, i1), (j0, j1), (k0, k1)) in BOXES.items():
        data[i0:i1 + 1, j0:j1 + 1, k0:k1 + 1] = value
    return data


def _box_world_bounds(value):
    corners = np.array(np.meshgrid(*[[lo - 0.5, hi + 0.5] for lo, hi in BOXES[value]])).reshape(3, -1).T
    world = corners @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def test_verse_boxes_land_at_their_world_positions_with_outward_normals(tmp_path):
    path = _save(_box_labelmap(), AFFINE, tmp_path / "verse.nii.gz")
    labelmap = load_labelmap(path, scheme="verse")
    assert labelmap.levels() == ["L1", "L2", "S1"] and labelmap.determinant_sign == -1
    for level, value in (("L1", 20), ("L2", 21)):
        mesh = labelmap.vertebra(level, smoothing=0).mesh
        low, high = _box_world_bounds(value)
        assert np.allclose(mesh.bounds, [low, high], atol=1e-6)
        to_face = mesh.triangles_center - (low + high) / 2
        assert np.all(np.einsum("ij,ij->i", mesh.face_normals, to_face) > 0)
        smooth = labelmap.vertebra(level).mesh
        assert np.allclose(smooth.center_mass, (low + high) / 2, atol=0.05)
        assert np.all(smooth.bounds[0] > low - 0.5) and np.all(smooth.bounds[1] < high + 0.5)
    assert labelmap.vertebra("L1").mesh.center_mass[2] > labelmap.vertebra("L2").mesh.center_mass[2]


def test_verse_sacrum_stands_in_for_s1_and_missing_levels_are_flagged(tmp_path):
    labelmap = load_labelmap(_save(_box_labelmap(), AFFINE, tmp_path / "verse.nii.gz"), scheme="verse")
    with pytest.warns(BvnPlanWarning, match="whole sacrum"):
        s1 = labelmap.vertebra("S1")
    assert "sacrum" in s1.source
    with pytest.warns(BvnPlanWarning):
        findings = labelmap.plausibility()
    assert {f.levels[0] for f in findings if f.kind == "gap"} == {"L3", "L4", "L5"}
    assert not [f for f in findings if f.kind == "order"]


def test_folder_of_per_class_masks(totalseg, totalseg_dir, lumbar_vertebrae, tmp_path):
    for level in ("L1", "L2"):
        _save(totalseg.mask(level).astype(np.uint8), totalseg.affine, tmp_path / f"vertebrae_{level}.nii.gz")
    cord = nib.load(str(totalseg_dir / "spinal_cord_in_example_ct_frame.nii.gz"))
    _save(np.asarray(cord.dataobj), cord.affine, tmp_path / "spinal_cord.nii.gz")
    _save(np.zeros((4, 4, 4), np.uint8), np.eye(4), tmp_path / "liver.nii.gz")  # ignored class
    folder = load_labelmap(tmp_path)
    assert folder.levels() == ["L1", "L2"]
    mesh = folder.vertebra("L1").mesh
    assert mesh.volume == pytest.approx(lumbar_vertebrae["L1"].mesh.volume, rel=1e-9)
    canal = folder.canal_mesh()
    assert canal.metadata["label_name"] == "spinal_cord" and canal.is_watertight
    # The cord runs in the midline behind the vertebral bodies (RAS: smaller y is posterior).
    assert canal.center_mass[1] < mesh.center_mass[1]
    assert abs(canal.center_mass[0] - mesh.center_mass[0]) < 10
    assert totalseg.canal_mesh() is None


def test_folder_masks_on_different_grids_are_refused(totalseg, tmp_path):
    _save(totalseg.mask("L1").astype(np.uint8), totalseg.affine, tmp_path / "vertebrae_L1.nii.gz")
    _save(np.zeros((4, 4, 4), np.uint8), np.eye(4), tmp_path / "vertebrae_L2.nii.gz")
    with pytest.raises(InputError, match="different voxel grid"):
        load_labelmap_folder(tmp_path)


def test_bad_inputs_raise_specific_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_labelmap(tmp_path / "missing.nii.gz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a NIfTI"):
        load_labelmap(tmp_path / "notes.txt")
    (tmp_path / "broken.nii.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="cannot read broken.nii.gz"):
        load_labelmap(tmp_path / "broken.nii.gz")
    with pytest.raises(InputError, match="no vertebra masks"):
        load_labelmap(tmp_path)
    spleen_only = np.zeros((10, 10, 10), np.uint8)
    spleen_only[2:5, 2:5, 2:5] = 1
    with pytest.raises(InputError, match="no vertebra labels"):
        load_labelmap(_save(spleen_only, AFFINE, tmp_path / "spleen.nii.gz"), scheme="totalseg")
    data = _box_labelmap()
    data[16:18, 16:18, 40:42] = 22  # an 8-voxel "L3"
    labelmap = load_labelmap(_save(data, AFFINE, tmp_path / "verse.nii.gz"), scheme="verse")
    with pytest.raises(InputError, match="only 8 voxels"):
        labelmap.vertebra("L3")
    with pytest.raises(InputError, match="L4 is not labelled"):
        labelmap.vertebra("L4")
    with pytest.raises(InputError, match="unknown label scheme"):
        load_labelmap(tmp_path / "verse.nii.gz", scheme="spineps")


def test_sample_ct_is_exact_for_a_linear_field_and_matches_real_voxels(totalseg_dir):
    shape = (8, 9, 10)
    i, j, k = np.indices(shape, dtype=float)
    image = nib.Nifti1Image((3 * i - 2 * j + 0.5 * k).astype(np.float32), AFFINE)
    rng = np.random.default_rng(0)
    ijk = rng.uniform(0, np.array(shape) - 1, size=(50, 3))
    world = ijk @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    expected = 3 * ijk[:, 0] - 2 * ijk[:, 1] + 0.5 * ijk[:, 2]
    assert np.allclose(sample_ct(image, world), expected, atol=1e-4)
    outside = AFFINE[:3, :3] @ np.array([-3.0, 0, 0]) + AFFINE[:3, 3]
    assert np.isnan(sample_ct(image, outside))

    ct = nib.load(str(totalseg_dir / "example_ct.nii.gz"))
    voxels = np.array([[60, 50, 56], [10, 20, 30], [100, 80, 90]])
    world = voxels @ ct.affine[:3, :3].T + ct.affine[:3, 3]
    hu = np.asarray(ct.dataobj)[tuple(voxels.T)]
    assert np.array_equal(sample_ct(totalseg_dir / "example_ct.nii.gz", world), hu.astype(float))


def test_a_vertebra_the_field_of_view_cuts_is_refused(totalseg_dir, tmp_path):
    """Issue 16: the organ example's L2 is cut by the crop. Its surface is refused for anatomy,
    plans and checks (a case asking for it stops with exit 2 and the reason); it can still be
    exported to look at, and the complete L1 of the same labelmap loads."""
    import subprocess
    import sys

    folder = totalseg_dir.parent / "totalseg_organs_example"
    labels = load_labelmap(folder / "example_seg.nii.gz")
    with pytest.raises(InputError, match="touches the image border: the field of view cuts it"):
        labels.vertebra("L2")
    assert labels.vertebra("L2", cut_ok=True).mesh.is_watertight
    assert labels.vertebra("L1").level == "L1"
    case = tmp_path / "case.yaml"
    case.write_text(f"case_id: cut\nlevels: L2\nplan: {{images: false, approaches: [transpedicular]}}\n"
                    f"input:\n  labelmap: {folder / 'example_seg.nii.gz'}\n")
    out = subprocess.run([sys.executable, "-m", "bvn_plan.cli", "case", str(case), "--out", str(tmp_path / "out"),
                          "--workers", "1"], capture_output=True, text=True)
    assert out.returncode == 2 and "touches the image border" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "out" / "plan.json").exists()
