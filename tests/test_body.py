"""Vertebral body heights, Genant grades and body width: on synthetic compressions with exact
ground truth, on TotalSegmentator's example CT against its own spine report, on the five real
VerSe L1s against their hand-placed landmarks, and on the TPTBox L3 against its body label."""

import json
import warnings

import numpy as np
import pytest
import trimesh

from bvn_plan.anatomy import HEIGHT_POSITIONS, find_anatomy, genant_grade, height_loss, normal_heights
from bvn_plan.anatomy.frame import LocalVertebra, find_frame
from bvn_plan.anatomy.morphometry import body_heights
from bvn_plan.errors import BvnPlanWarning
from bvn_plan.planning.plan_file import body_record, body_summary_line
from bvn_plan.synthetic import synthesize
from bvn_plan.vertebra import Vertebra
from bvn_plan.workflow import RISK, ClinicalData, check_eligibility, load_labelmap

from conftest import SHARED_DATA

VERSE = SHARED_DATA / "verse_L1"
TPTBOX = SHARED_DATA / "tptbox_L3"
POSITIONS = tuple(HEIGHT_POSITIONS)


def _found(vertebra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BvnPlanWarning)
        return find_anatomy(vertebra)


def _heights(morphometry) -> dict:
    return {where: morphometry[f"body_height_{where}_mm"] for where in POSITIONS}


def test_normal_shape_follows_the_level_priors():
    # Lower lumbar bodies are taller in front: L5 anterior/posterior 30.3/26.3 mm [V, IJSS].
    assert normal_heights("L5")["anterior"] / normal_heights("L5")["posterior"] > 1.1
    assert normal_heights("L1")["anterior"] < normal_heights("L1")["posterior"]
    for level in ("L1", "L3", "L5"):
        assert height_loss(normal_heights(level), level)[0] == pytest.approx(0.0)
    assert [genant_grade(x) for x in (0.0, 0.199, 0.2, 0.249, 0.25, 0.399, 0.401)] == [0, 0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("loss, grade", [(0.15, 0), (0.22, 1), (0.32, 2), (0.45, 3)])
def test_synthetic_wedges_get_their_genant_grades(loss, grade):
    sv = synthesize("L4", wedge_compression=loss)
    truth = _heights(sv.landmarks.morphometry)
    found = _found(sv.vertebra)
    measured = _heights(found.morphometry)
    for where in POSITIONS:       # chords found on the mesh, against ray casts on the body alone
        assert measured[where] == pytest.approx(truth[where], abs=0.9), where
    assert found.morphometry["body_height_loss_percent"] == pytest.approx(100 * loss, abs=1.5)
    assert found.morphometry["body_genant_grade"] == grade
    assert any("reads compressed" in n for n in found.notes) == (grade >= 1)
    assert body_record(found)["compressed"] == (grade >= 1)


@pytest.mark.parametrize("level, overrides", [
    ("L3", dict(biconcave_compression=0.3)),
    ("L4", dict(biconcave_compression=0.6)),
    ("L5", dict(wedge_compression=0.6)),
    ("L3", dict(wedge_compression=0.45, biconcave_compression=0.4)),
    ("L5", dict(endplate_concavity_superior_mm=4.0, endplate_concavity_inferior_mm=4.0, endplate_concave_zone=0.9)),
])
def test_compressed_and_deeply_concave_bodies_keep_their_endplates_and_width(level, overrides):
    """Sunken, wedged and deeply concave endplates, also smoothed: both endplates found confidently,
    the width read under the endplate surface (under its fitted plane it read 14.6 mm at L3 with a
    30 % biconcave loss), the middle height as the truth."""
    sv = synthesize(level, **overrides)
    smoothed = sv.mesh.copy()
    trimesh.smoothing.filter_taubin(smoothed, iterations=60)
    for mesh in (sv.mesh, smoothed):
        found = _found(Vertebra(mesh, level=level))
        assert min(found.confidence["superior_endplate"], found.confidence["inferior_endplate"]) > 0.75
        assert found.morphometry["body_width_mm"] == pytest.approx(sv.landmarks.morphometry["body_width_mm"], abs=1.0)
        assert found.morphometry["body_height_middle_mm"] == pytest.approx(
            sv.landmarks.morphometry["body_height_middle_mm"], abs=1.0)


def test_totalsegmentator_heights_against_its_spine_report(totalseg_dir):
    """TotalSegmentator measures the same chords (15/50/85 % of the AP chord, spine_report/
    measure_verte_height.py) but on its voxel grid, from the last voxel-interior sample to the last
    one (0.5-voxel steps): on this 3 mm CT that reads 0.5-1 voxel short of the bone's extent, and it
    takes the sagittal slice with the largest spread. Measured here on the mesh surface: 0.2-4.7 mm
    longer, mean +2.4 mm; never shorter by more than 1 mm. Both give every level the same grade."""
    report = json.loads((totalseg_dir / "spine_report.json").read_text())["results"]
    labels = load_labelmap(totalseg_dir / "totalseg.nii.gz")
    differences = []
    for level in ("L1", "L2", "L3", "L4", "L5"):
        found = _found(labels.vertebra(level))
        ours = _heights(found.morphometry)
        theirs = {where: report[f"vertebrae_{level}_height_{where}_mm"] for where in POSITIONS}
        differences += [ours[w] - theirs[w] for w in POSITIONS]
        assert found.morphometry["body_genant_grade"] == genant_grade(height_loss(theirs, level)[0]), level
    differences = np.array(differences)
    assert differences.min() > -1.0 and differences.max() < 3.0 * 1.7    # within 1.7 voxels
    assert 0.0 < differences.mean() < 3.0                                  # less than one voxel


def _voxel_run_mm(labels, mask: np.ndarray, point: np.ndarray, direction: np.ndarray, step_mm: float = 0.05) -> float:
    """Length (mm) of the run of the label's voxels (nearest voxel) along the line through ``point``
    (model coordinates) in ``direction`` that holds ``point`` or the labelled sample nearest it."""
    t = np.arange(-40.0, 40.0, step_mm)
    ijk = np.round(labels.world_to_voxel(point + t[:, None] * direction)).astype(int)
    inside = np.zeros(len(t), bool)
    ok = np.all((ijk >= 0) & (ijk < mask.shape), axis=1)
    inside[ok] = mask[tuple(ijk[ok].T)]
    hits = np.flatnonzero(inside)
    centre = hits[np.argmin(abs(hits - len(t) // 2))]
    edges = np.flatnonzero(np.diff(inside.astype(int)))
    start = edges[edges < centre].max(initial=-1) + 1
    end = edges[edges >= centre].min(initial=len(t) - 1)
    return (end - start + 1) * step_mm


def test_totalsegmentator_heights_against_its_own_label(totalseg_dir):
    """Ground truth for the heights on real data: the label's own voxels along the same chords (the
    mid-sagittal AP chord through the body centre, 15/50/85 % of it from the back, along the frame's
    superior axis). Issue 15's bound, applied to the label: mean signed difference within 1 mm, each
    within 2 mm (measured: mean +0.3 mm, -1.4 to +1.8 mm; our chords run along the provisional
    frame's canal axis, these along the final frame's). The spine report reads 2.1 mm shorter than
    this label on average (-5.0 to +1.4 mm), which is why the report test above allows more."""
    labels = load_labelmap(totalseg_dir / "totalseg.nii.gz")
    differences = []
    for level in ("L1", "L2", "L3", "L4", "L5"):
        vertebra = labels.vertebra(level)
        found = _found(vertebra)
        origin, anterior, superior = found.frame.origin, found.frame.anterior, found.frame.superior
        hits, _, _ = vertebra.mesh.ray.intersects_location([origin - 60 * anterior], [anterior])
        depth = np.sort((hits - origin) @ anterior)
        back, front = depth[depth < 0].max(), depth[depth > 0].min()
        mask = labels.mask(level)
        for where, share in HEIGHT_POSITIONS.items():
            voxels = _voxel_run_mm(labels, mask, origin + (back + share * (front - back)) * anterior, superior)
            differences.append(found.morphometry[f"body_height_{where}_mm"] - voxels)
    differences = np.array(differences)
    assert abs(differences.mean()) <= 1.0 and np.abs(differences).max() <= 2.0, differences


def _verse_cases():
    return sorted(VERSE.glob("L1_sub-verse*.stl"))


@pytest.fixture(scope="module")
def verse_found():
    assert VERSE.is_dir(), f"real test data missing: {VERSE}"
    return {path.stem: (_found(Vertebra.load(path, level="L1")),
                        json.loads(path.with_name(path.stem + "_landmarks.json").read_text()))
            for path in _verse_cases()}


def test_verse_l1_bodies_read_like_real_l1s(verse_found):
    """Five real L1s: the body width reads 40-45 mm (measured 40.1-45.1; L1_sub-verse013 read 16.6 mm
    under its fitted endplate plane), and the hand-placed anterior midline points H, I, J (top to
    bottom) lie on our mid-sagittal plane (measured 0.6-2.4 mm) with H and J at our endplate planes
    (measured within 3.5 mm)."""
    assert len(verse_found) == 5
    for name, (found, marks) in verse_found.items():
        assert 39.5 <= found.morphometry["body_width_mm"] <= 46.0, name
        top, middle, bottom = (np.array(marks[k]) for k in "HIJ")
        plane = found.midsagittal_plane
        for point in (top, middle, bottom):
            assert abs((point - plane.point) @ plane.normal) < 3.0, name
        for point, endplate in ((top, found.superior_endplate), (bottom, found.inferior_endplate)):
            assert abs((point - endplate.point) @ endplate.normal) < 4.0, name
        # The body centre (our origin) lies behind the anterior cortex the hand points mark.
        assert 8.0 < (middle - found.frame.origin) @ found.frame.anterior < 22.0, name


def test_verse013_reads_as_an_anterior_wedge_and_the_hand_points_agree(verse_found):
    found, marks = verse_found["L1_sub-verse013"]
    m = found.morphometry
    assert m["body_genant_grade"] >= 2 and m["body_height_anterior_mm"] < 0.8 * m["body_height_posterior_mm"]
    # Independent: the hand-placed anterior top and bottom points are as close as our anterior height.
    hand_height = (np.array(marks["H"]) - np.array(marks["J"])) @ found.frame.superior
    assert hand_height < 0.8 * m["body_height_posterior_mm"]
    assert hand_height == pytest.approx(m["body_height_anterior_mm"], abs=2.0)
    others = [f.morphometry["body_genant_grade"] for n, (f, _) in verse_found.items() if n != "L1_sub-verse013"]
    assert others == [0, 0, 0, 0]


def test_tptbox_l3_heights_and_width_match_its_body_label():
    """The L3 with sub-region labels: our chords on the whole vertebra against the same chords on the
    body label alone (labels 49+50), in the frame found on the whole vertebra."""
    whole = Vertebra.load(TPTBOX / "L3.stl", level="L3")
    body = Vertebra.load(TPTBOX / "L3_body.stl").mesh
    found = _found(whole)
    frame = find_frame(whole.mesh, None, [], lambda stage: None).frame
    local_body = LocalVertebra.of(body, frame, 1.0)
    truth = body_heights(local_body, frame.to_local(body.center_mass[None])[0])
    for where in POSITIONS:
        assert found.morphometry[f"body_height_{where}_mm"] == pytest.approx(truth[f"body_height_{where}_mm"], abs=1.0)
    assert found.morphometry["body_genant_grade"] == 0


def test_a_compressed_level_is_flagged_in_eligibility_and_the_summary_line():
    clinical = ClinicalData.from_dict({
        "modic": {"L4": 1}, "symptomatic_levels": "L4", "symptom_duration_months": 9,
        "conservative_care": {"months": 9, "treatments": ["physical therapy"]}, "odi": 40, "nrs": 7,
        "bone_density": {"status": "normal", "t_score": 0.0}})
    flagged = check_eligibility(clinical, "L4", body_grades={"L4": (2, 31.0)})
    risks = [f for f in flagged.findings if f.criterion == "existing_fracture"]
    assert len(risks) == 1 and risks[0].status == RISK and risks[0].levels == ("L4",)
    assert "Genant grade 2" in risks[0].message and "Genant" in risks[0].source
    assert any("Genant grade 2" in r for r in flagged.reasons)
    quiet = check_eligibility(clinical, "L4", body_grades={"L4": (0, 8.0)})
    assert not [f for f in quiet.findings if f.criterion == "existing_fracture"]
    found = _found(synthesize("L4", wedge_compression=0.32).vertebra)
    assert "Genant grade 2 (COMPRESSED" in body_summary_line(found)
