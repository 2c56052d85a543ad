"""Pedicles at every complete real lumbar level in ../shared/data (issue 15's acceptance) and on the
harder synthetic family (asymmetric pedicles, labelmaps at 1 and 3 mm), against the published angles
and the generator's exact ground truth.

What today's pedicle finder does not yet meet is not tested here (issue 15 stays open on it, with the
numbers; benchmarks/pedicle_table.py measures it): VHM L5 reads 11.0 / 12.4 degrees against the 12-45
window (published ~30); a 3 mm labelmap of L4 (left axis 6.4 degrees and centre 1.9 mm off),
shrink-wrapped L4 and L5 (4 mm closing of a 1 mm labelmap: axes 5.3 and 8.6 degrees off on one side)
and a transverse-process root along the whole L5 pedicle (centres 2.8-3.0 mm lateral) miss the harder
family's 5 degree / 1 mm bounds. A centreline axis (the line through the centroids of sections normal
to it) fixed the shrink-wrapped members (<= 2.1 degrees) but read 10 of the 11 real pedicles with a
narrowing about 3 degrees further below the published means (VHM L1 12.5 -> 7.4, TS L1 12.9/9.1 ->
6.5/5.0, VerSe 013 13.8/16.4 -> 4.4/7.9): not taken.

The template route (benchmarks/template_pedicles.py: the level's synthetic vertebra registered by a
per-axis moment match and coherent point drift, its isthmus, posterior entry and a point in the body
carried across) is not taken yet. With 6 / 4 mm sampling cells (template / mesh) it reads all 16
real levels inside their windows (VHM L5 17.4/17.4 degrees, VHM left-right within 4.5), but the same
method with 4.5 / 3 mm cells reads TotalSegmentator L5 46.6/37.9 (out) and with 7 / 5 mm VerSe 022
1.6/4.7 (out): its axes move by up to 15 degrees with the sampling, so passing here would be tuning.
Its surface RMS is 1.6-2.9 mm (1.5 expected) and the registration alone costs 0.1-4.2 s CPU per level
(the anatomy's budget is 2 s at 20k faces). Carrying the axis by the field's central difference or
its local affine fit was worse (5-35 degrees off, 11 of 16 in the windows).
On the harder family (6 / 4 mm cells) its centres land 0.7-2.1 mm from the truth (today 0.1-0.6 mm
on the asserted members) and one axis 5.7 degrees off (asymmetric L5), though it brings the
shrink-wrapped axes within 3.8 degrees (today 5.3 and 8.6).
"""

from functools import lru_cache

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from bvn_plan import Vertebra
from bvn_plan.anatomy import find_anatomy
from bvn_plan.geometry import voxelize
from bvn_plan.planning import PEDICLE_CONFIDENCE_MIN
from bvn_plan.synthetic import synthesize
from bvn_plan.workflow import Labelmap, load_labelmap

from conftest import SHARED_DATA

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: Transverse-angle windows (degrees, medial positive) around the published means of about 11, 12,
#: 14, 18 and 30 degrees for L1-L5: fixed by issue 15, deliberately not read from levels.py.
ANGLE_WINDOW_DEG = {"L1": (2.0, 25.0), "L2": (2.0, 25.0), "L3": (4.0, 30.0), "L4": (6.0, 35.0), "L5": (12.0, 45.0)}
#: Left and right transverse angles agree within this (degrees) on the mirror-symmetrised VHM meshes.
SYMMETRIC_DEG = 5.0
#: Each isthmus centre lies at least this deep (mm) inside the bone.
MIN_DEPTH_MM = 1.0

VERSE = sorted(p.stem for p in (SHARED_DATA / "verse_L1").glob("L1_sub-verse*.stl") if "landmarks" not in p.stem)
REAL = ([f"vhm_{level}" for level in ("L1", "L2", "L3", "L4", "L5")]
        + [f"totalseg_{level}" for level in ("L1", "L2", "L3", "L4", "L5")] + ["tptbox_L3"] + VERSE)
#: The levels whose angles fall in the windows today (VHM L5 does not: module docstring).
IN_WINDOW = [case for case in REAL if case != "vhm_L5"]


@lru_cache(maxsize=None)
def _real(case: str):
    """(vertebra, landmarks) of one real level, computed once per session."""
    source, level = case.rsplit("_", 1) if not case.startswith("L1_sub") else ("verse", "L1")
    if source == "vhm":
        vertebra = Vertebra.load(SHARED_DATA / "vhm_lumbar" / f"{level}_whole.stl", level=level)
    elif source == "totalseg":
        vertebra = _totalseg().vertebra(level)
    elif source == "tptbox":
        vertebra = Vertebra.load(SHARED_DATA / "tptbox_L3" / "L3.stl", level="L3")
    else:
        vertebra = Vertebra.load(SHARED_DATA / "verse_L1" / f"{case}.stl", level="L1")
    return level, vertebra, find_anatomy(vertebra)


@lru_cache(maxsize=None)
def _totalseg():
    return load_labelmap(SHARED_DATA / "totalseg_example" / "totalseg.nii.gz")


def _angles(found) -> dict[str, float]:
    return {side: found.morphometry[f"pedicle_transverse_angle_{side}_deg"] for side in ("right", "left")}


def _meeting_depth_mm(found) -> float:
    """How far (mm) in front of the isthmus centres the two axes cross in the axial plane of the
    vertebra frame: positive when they converge anteriorly."""
    local = {side: (found.frame.to_local(p.isthmus_centre[None])[0], found.frame.direction_to_local(p.axis_direction))
             for side, p in found.pedicles.items()}
    (pr, ar), (pl, al) = local["right"], local["left"]
    s, _ = np.linalg.solve(np.array([[ar[0], -al[0]], [ar[1], -al[1]]]), (pl - pr)[:2])
    return float(s * ar[1])


@pytest.mark.parametrize("case", REAL)
def test_real_pedicles_found_converging_and_inside_bone(case):
    level, vertebra, found = _real(case)
    assert set(found.pedicles) == {"left", "right"}, case
    for side in ("left", "right"):
        assert found.confidence[f"{side}_pedicle"] >= PEDICLE_CONFIDENCE_MIN, (case, side)
        centre = found.pedicles[side].isthmus_centre
        assert vertebra.mesh.contains(centre[None])[0], (case, side)
        depth = trimesh.proximity.closest_point(vertebra.mesh, centre[None])[1][0]
        assert depth >= MIN_DEPTH_MM, (case, side, depth)
    assert _meeting_depth_mm(found) > 0.0, case
    if case.startswith("vhm"):
        angles = _angles(found)
        assert abs(angles["right"] - angles["left"]) <= SYMMETRIC_DEG, (case, angles)


@pytest.mark.parametrize("case", IN_WINDOW)
def test_real_pedicle_transverse_angles_within_published_windows(case):
    level, _, found = _real(case)
    low, high = ANGLE_WINDOW_DEG[level]
    for side, angle in _angles(found).items():
        assert low <= angle <= high, (case, side, angle)


@lru_cache(maxsize=None)
def _synthetic(level: str, **overrides):
    return synthesize(level, **overrides)


def _synthetic_labelmap(truth, voxel_mm: float, wrap_mm: float = 0.0) -> Vertebra:
    """The synthetic vertebra as a one-label labelmap of ``voxel_mm`` voxels (same frame), through the
    labelmap's own surface extraction; ``wrap_mm`` > 0 first closes the solid with a ball of that
    radius (mm), filling its notches like a shrink-wrapped surface (the VHM meshes are shrink-wrapped)."""
    grid = voxelize(truth.mesh.vertices, truth.mesh.faces, voxel_mm, margin=4.0 + wrap_mm)
    if wrap_mm > 0:
        r = int(round(wrap_mm / voxel_mm))
        ball = np.linalg.norm(np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1], axis=0) <= r
        grid.solid = ndimage.binary_closing(grid.solid, structure=ball)
    affine = np.eye(4)
    affine[:3, :3] *= grid.spacing
    affine[:3, 3] = grid.origin
    level = truth.parameters.level
    labelmap = Labelmap(grid.solid.astype(np.uint8), affine, {1: f"vertebrae_{level}"}, f"synthetic {level}")
    return labelmap.vertebra(level)


def _pedicle_errors(found, truth):
    """Per side: (axis error in degrees, isthmus-centre distance in mm, width error in mm)."""
    out = {}
    for side in ("left", "right"):
        p, t = found.pedicles[side], truth.landmarks.pedicles[side]
        angle = float(np.degrees(np.arccos(np.clip(p.axis_direction @ t.axis_direction, -1.0, 1.0))))
        out[side] = (angle, float(np.linalg.norm(p.isthmus_centre - t.isthmus_centre)),
                     abs(p.isthmus_width_mm - t.isthmus_width_mm))
    return out


#: Harder family members: (level, generator overrides, labelmap voxel (mm) or None for the mesh,
#: shrink-wrap closing radius (mm) of the labelmap, 0 for none).
HARDER = {
    "asymmetric_L4": ("L4", (("pedicle_width_asymmetry_mm", 3.0), ("pedicle_transverse_asymmetry_deg", 10.0)), None, 0.0),
    "asymmetric_L5": ("L5", (("pedicle_width_asymmetry_mm", -2.0), ("pedicle_transverse_asymmetry_deg", -8.0)), None, 0.0),
    "labelmap_1mm_L4": ("L4", (), 1.0, 0.0),
    "labelmap_1mm_L5": ("L5", (), 1.0, 0.0),
    "labelmap_3mm_L5": ("L5", (), 3.0, 0.0),
}


@pytest.mark.parametrize("member", HARDER)
def test_harder_synthetic_family_pedicles(member):
    """Pedicle axes within 5 degrees and isthmus centres within 1 mm of the generator's truth."""
    level, overrides, voxel, wrap = HARDER[member]
    truth = _synthetic(level, **dict(overrides))
    vertebra = truth.vertebra if voxel is None else _synthetic_labelmap(truth, voxel, wrap)
    found = find_anatomy(vertebra)
    for side, (angle, centre, _) in _pedicle_errors(found, truth).items():
        assert angle <= 5.0 and centre <= 1.0, (member, side, angle, centre)


def test_asymmetric_pedicles_keep_todays_accuracy():
    """Left and right that differ by 3 mm and 10 degrees are measured each on its own: axes within 3
    degrees and isthmus widths within 0.5 mm (the symmetric family's accuracy)."""
    level, overrides, _, _ = HARDER["asymmetric_L4"]
    truth = _synthetic(level, **dict(overrides))
    widths = {side: p.isthmus_width_mm for side, p in truth.landmarks.pedicles.items()}
    assert widths["right"] - widths["left"] == pytest.approx(3.0, abs=0.5)
    found = find_anatomy(truth.vertebra)
    for side, (angle, _, width) in _pedicle_errors(found, truth).items():
        assert angle <= 3.0 and width <= 0.5, (side, angle, width)
    angles = _angles(found)
    assert angles["right"] - angles["left"] == pytest.approx(10.0, abs=3.0)
