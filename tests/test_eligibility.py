"""The eligibility checklist reproduces the reasoning of a medical-necessity review (bvn_facts.md
"Patient selection and risk") and flags the published fracture risk."""

import pytest

from bvn_plan.workflow import (ClinicalData, EligibilityCriteria, INDICATED, NEEDS_REVIEW, NOT_INDICATED, NOT_MET,
                               RISK, check_eligibility, normalise_modic, parse_levels)
from bvn_plan.errors import InputError

TEXTBOOK = {
    "modic": {"L4": 1, "L5": 1},
    "symptomatic_levels": "L4-L5",
    "symptom_duration_months": 9,
    "conservative_care": {"months": 9, "treatments": ["physical therapy", "NSAIDs"]},
    "odi": 44, "nrs": 7,
    "bone_density": {"status": "normal", "t_score": 0.2},
}


def test_textbook_case_is_indicated():
    result = check_eligibility(ClinicalData.from_dict(TEXTBOOK), "L4-L5")
    assert result.verdict == INDICATED
    assert result.level_verdicts == {"L4": INDICATED, "L5": INDICATED}
    assert not [f for f in result.findings if f.status in (NOT_MET, RISK)]
    assert all(f.source for f in result.findings)


def test_medical_necessity_denial_gives_the_three_reasons():
    """No Modic change at the requested L4-L5, symptoms at L1-L2, a 5-day acute episode (chronic
    history and a conservative trial otherwise on record, so exactly these three reasons)."""
    clinical = dict(TEXTBOOK, modic={"L4": "none", "L5": 0}, symptomatic_levels="L1–L2", acute_episode_days=5)
    result = check_eligibility(ClinicalData.from_dict(clinical), "L4-L5")
    assert result.verdict == NOT_INDICATED
    excluded = {f.criterion for f in result.findings if f.status == NOT_MET}
    assert excluded == {"modic", "symptomatic_match", "acute_episode"}
    text = " | ".join(result.reasons)
    assert "no Modic change at the requested L4" in text and "L5" in text
    assert "does not match the symptomatic L1-L2" in text
    assert "acute (5 days)" in text
    assert all(f.source for f in result.findings if f.status == NOT_MET)


@pytest.mark.parametrize("density, t_score", [("osteoporosis", -3.1), ("unknown", -1.8), ("osteopenia", None)])
def test_low_bone_density_gets_the_fracture_risk_note_but_stays_indicated(density, t_score):
    clinical = dict(TEXTBOOK, bone_density={"status": density, "t_score": t_score})
    result = check_eligibility(ClinicalData.from_dict(clinical), ["L4", "L5"])
    risk = [f for f in result.findings if f.status == RISK]
    assert len(risk) == 1 and risk[0].criterion == "fracture_risk"
    for figure in ("4.64%", "0.37%", "1.55%", "6.5", "3.7-12.3", "100654", "Bellow 2025", "134"):
        assert figure in risk[0].message + risk[0].source
    assert result.verdict == INDICATED  # a risk to flag, not a contraindication
    assert any("4.64%" in reason for reason in result.reasons)


def test_normal_t_score_gets_no_risk_note():
    clinical = dict(TEXTBOOK, bone_density={"status": "normal", "t_score": -0.9})
    result = check_eligibility(ClinicalData.from_dict(clinical), "L4-L5")
    assert not [f for f in result.findings if f.status == RISK]


def test_label_thresholds_and_levels():
    short = dict(TEXTBOOK, symptom_duration_months=5, conservative_care={"months": 4, "treatments": ["PT"]})
    result = check_eligibility(ClinicalData.from_dict(short), "L4-L5")
    assert {f.criterion for f in result.findings if f.status == NOT_MET} == {"symptom_duration", "conservative_care"}
    # the thresholds are parameters: a 4-month rule admits the same history on care, not on duration
    relaxed = check_eligibility(ClinicalData.from_dict(short), "L4-L5",
                                EligibilityCriteria(min_conservative_months=4))
    assert {f.criterion for f in relaxed.findings if f.status == NOT_MET} == {"symptom_duration"}
    # L2 is outside the label: that level is not indicated, the others keep their own verdict
    upper = dict(TEXTBOOK, modic={"L2": 2, "L3": 2}, symptomatic_levels="L2-L3")
    result = check_eligibility(ClinicalData.from_dict(upper), "L2-L3")
    assert result.level_verdicts == {"L2": NOT_INDICATED, "L3": INDICATED}
    assert result.verdict == NOT_INDICATED
    assert any(f.status == NOT_MET and f.levels == ("L2",) and "L2 is outside the treated levels L3-S1" in f.message
               for f in result.findings)
    l1 = check_eligibility(ClinicalData.from_dict(dict(TEXTBOOK, modic={"L1": 1}, symptomatic_levels="L1")), ["L1"])
    assert l1.level_verdicts == {"L1": NOT_INDICATED}
    assert "L1 is outside the treated levels L3-S1" in " ".join(f.message for f in l1.findings)
    # T12, a level the anatomy accepts, is never a treated one
    t12 = check_eligibility(ClinicalData.from_dict(dict(TEXTBOOK, modic={"T12": 1, "L1": 1}, symptomatic_levels="T12-L1")),
                            "T12-L1")
    assert t12.level_verdicts == {"T12": NOT_INDICATED, "L1": NOT_INDICATED} and t12.verdict == NOT_INDICATED
    assert any(f.status == NOT_MET and f.levels == ("T12", "L1") and "T12, L1 are outside the treated levels L3-S1"
               in f.message for f in t12.findings)


def test_contraindications_and_review_items():
    clinical = dict(TEXTBOOK, contraindications=["Active infection (UTI)"])
    assert check_eligibility(ClinicalData.from_dict(clinical), "L4-L5").verdict == NOT_INDICATED
    unusual = dict(TEXTBOOK, contraindications=["prior L4 laminectomy"])
    result = check_eligibility(ClinicalData.from_dict(unusual), "L4-L5")
    assert result.verdict == NEEDS_REVIEW and "prior L4 laminectomy" in result.reasons[0]
    missing = {k: v for k, v in TEXTBOOK.items() if k not in ("modic", "symptomatic_levels")}
    result = check_eligibility(ClinicalData.from_dict(missing), "L4-L5")
    assert result.verdict == NEEDS_REVIEW
    assert {f.criterion for f in result.findings if f.status == "review"} == {"modic", "symptomatic_match"}
    mixed = dict(TEXTBOOK, modic={"L4": "2/3", "L5": "type 1"})
    result = check_eligibility(ClinicalData.from_dict(mixed), "L4-L5")
    assert result.level_verdicts == {"L4": NEEDS_REVIEW, "L5": INDICATED}
    low = dict(TEXTBOOK, odi=22)
    assert check_eligibility(ClinicalData.from_dict(low), "L4-L5").verdict == NEEDS_REVIEW


def test_level_and_modic_parsing():
    assert parse_levels("L3-S1") == ["L3", "L4", "L5", "S1"]
    assert parse_levels(["L5", "l4", "L4–L5"]) == ["L4", "L5"]
    assert parse_levels("L5-L6") == ["L5", "L6"]
    assert parse_levels("T12-L2") == ["T12", "L1", "L2"] and parse_levels(["L1", "t12"]) == ["T12", "L1"]
    assert normalise_modic("Mixed 1-2") == "1/2" and normalise_modic(0) == "none"
    for bad in ("L5-L3", "L4-L5-S1", "X9", "", "T11", "T11-L1", "L1-T12"):
        with pytest.raises(InputError):
            parse_levels(bad)
    with pytest.raises(InputError, match="Modic"):
        normalise_modic(4)
