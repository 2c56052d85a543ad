"""The clinical eligibility checklist for basivertebral nerve ablation of one case.

Every criterion comes from ``docs/sources.md`` ("The procedure in one paragraph"
and "Patient selection and risk") and each :class:`Finding` cites its source. The thresholds are
named, editable fields of :class:`EligibilityCriteria`.

Statuses of a finding: ``"met"`` (criterion satisfied), ``"not_met"`` (makes the request not
indicated), ``"review"`` (a clinician must decide), ``"risk"`` (a risk to tell the patient; it
does not change the verdict) and ``"info"`` (context only). Verdict: any ``not_met`` ->
"not indicated"; else any ``review`` -> "needs review"; else "indicated".

Levels are vertebral bodies (``L4``); a range ``"L4-L5"`` (or ``"L4–L5"``) means every body from
L4 to L5 inclusive, i.e. the two bodies whose endplates border the L4-L5 disc. Any level the anatomy
accepts may be named (T12, L1-L6, S1); those outside the label's L3-S1 make the request not indicated
(``treatable_level``), and planning them is shown for teaching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError
from ..levels import ACCEPTED_LEVELS, TREATABLE_LEVELS, normalise_level

INDICATED, NOT_INDICATED, NEEDS_REVIEW = "indicated", "not indicated", "needs review"
MET, NOT_MET, REVIEW, RISK, INFO = "met", "not_met", "review", "risk", "info"

#: Sources cited by the findings.
SOURCES = {
    "genant": "Genant HK et al. Vertebral fracture assessment using a semiquantitative technique. J Bone Miner "
              "Res 1993;8(9):1137-48 (grade 1: 20-25%, 2: 25-40%, 3: over 40% height loss)",
    "label": "FDA 510(k) K153272 (2016) and K213836 (Intracept) indications: levels L3-S1, chronic axial "
             "low back pain >= 6 months, >= 6 months failed conservative care, Modic type 1 or 2 "
             "(docs/sources.md 'The procedure')",
    "necessity_review": "medical-necessity review in the project seeds: not indicated when Modic changes are "
                        "absent at the requested levels, when the requested levels do not match the "
                        "symptomatic level, or when the current episode is acute (days) without a "
                        "conservative trial (docs/sources.md 'Patient selection and risk')",
    "conservative_care": "conservative care = physical therapy, NSAIDs/analgesics, activity modification; "
                         "diagnostic blocks not required (docs/sources.md 'Patient selection and risk')",
    "contraindications": "absolute contraindications in practice summaries [V-secondary]: unwilling patient, "
                         "active infection, coagulopathy, very short life expectancy, lack of technical "
                         "expertise; device-level: pregnancy, pacemaker/implants, skeletal immaturity "
                         "(docs/sources.md 'Patient selection and risk')",
    "trials": "trial inclusion thresholds ODI > 30 and NRS > 4 (docs/sources.md 'Patient selection and risk')",
    "payer": "one payer's policy: >= 12 months of symptoms and <= 3 adjacent vertebral bodies "
             "(docs/sources.md 'Patient selection and risk')",
    "fracture_risk": "vertebral compression fracture after BVNA (TriNetX, 2,387 patients): 1.55% overall "
                     "(95% CI 1.11-2.16); 4.64% with osteoporosis/osteopenia vs 0.37% without; adjusted "
                     "OR 6.5 (3.7-12.3) [Interv Pain Med 2025;4(4):100654]. Single-centre series of 134 "
                     "patients (32 with low bone density): no fractures over 18 months mean follow-up "
                     "[Bellow 2025, Interv Pain Med 4(3):100624]",
    "who_t_score": "WHO densitometric definition: T-score <= -2.5 osteoporosis, -2.5 < T < -1.0 osteopenia",
    "acute": "[A] acute low back pain is conventionally an episode shorter than 6 weeks (42 days)",
}

#: Absolute contraindications and the words that name them (lower case, matched as substrings).
ABSOLUTE_CONTRAINDICATIONS = {
    "unwilling patient": ("unwilling", "refus", "no consent", "declin"),
    "active infection": ("infection", "sepsis", "osteomyelitis", "discitis"),
    "coagulopathy": ("coagulopathy", "bleeding disorder", "anticoagula"),
    "very short life expectancy": ("life expectancy", "terminal"),
    "lack of technical expertise": ("expertise",),
    "pregnancy": ("pregnan",),
    "pacemaker or implanted device": ("pacemaker", "defibrillator", "implant", "stimulator"),
    "skeletal immaturity": ("skeletal immaturity", "skeletally immature", "immature skeleton"),
}

BONE_DENSITY_STATUSES = ("normal", "osteopenia", "osteoporosis", "unknown")
#: Modic types a case may give per level (``"1/2"`` is a mixed change).
MODIC_TYPES = ("none", "1", "2", "3", "1/2", "2/3")


@dataclass(frozen=True)
class EligibilityCriteria:
    """The checklist's thresholds (sources in :data:`SOURCES`).

    * ``treatable_levels``: label levels L3-S1 ("label");
    * ``qualifying_modic``: Modic types that qualify ("label": type 1 or 2);
    * ``min_symptom_months`` / ``min_conservative_months``: 6 and 6 ("label");
    * ``acute_episode_max_days``: an episode this short is acute [A, 42 days = 6 weeks];
    * ``trial_min_odi`` / ``trial_min_nrs``: ODI > 30, NRS > 4 ("trials"; below -> review);
    * ``payer_min_symptom_months`` / ``payer_max_levels``: 12 months, 3 bodies ("payer"; info only);
    * ``osteopenia_t_score``: T-score at or below this is low bone density (WHO -1.0).
    """

    treatable_levels: tuple[str, ...] = TREATABLE_LEVELS
    qualifying_modic: tuple[str, ...] = ("1", "2", "1/2")
    min_symptom_months: float = 6.0
    min_conservative_months: float = 6.0
    acute_episode_max_days: float = 42.0
    trial_min_odi: float = 30.0
    trial_min_nrs: float = 4.0
    payer_min_symptom_months: float = 12.0
    payer_max_levels: int = 3
    osteopenia_t_score: float = -1.0


@dataclass
class ClinicalData:
    """What the clinician reports about the patient (months, days, scores as in the case file).

    ``modic``: level -> Modic type (one of :data:`MODIC_TYPES`); ``symptomatic_levels``: levels
    the pain is attributed to (None when not stated); ``None`` anywhere means "not given".
    """

    modic: dict[str, str] = field(default_factory=dict)
    symptomatic_levels: list[str] | None = None
    symptom_duration_months: float | None = None
    acute_episode_days: float | None = None
    conservative_care_months: float | None = None
    conservative_treatments: list[str] = field(default_factory=list)
    odi: float | None = None
    nrs: float | None = None
    bone_density_status: str = "unknown"
    t_score: float | None = None
    contraindications: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict | None) -> "ClinicalData":
        """Build from the ``clinical`` section of a case file (already schema-checked)."""
        data = dict(data or {})
        care = data.get("conservative_care") or {}
        density = data.get("bone_density") or {}
        symptomatic = data.get("symptomatic_levels")
        return cls(
            modic={normalise_level(k): normalise_modic(v) for k, v in (data.get("modic") or {}).items()},
            symptomatic_levels=None if symptomatic is None else parse_levels(symptomatic),
            symptom_duration_months=data.get("symptom_duration_months"),
            acute_episode_days=data.get("acute_episode_days"),
            conservative_care_months=care.get("months"),
            conservative_treatments=[str(t) for t in care.get("treatments") or []],
            odi=data.get("odi"), nrs=data.get("nrs"),
            bone_density_status=str(density.get("status", "unknown")).lower(),
            t_score=density.get("t_score"),
            contraindications=[str(c) for c in data.get("contraindications") or []],
        )


@dataclass(frozen=True)
class Finding:
    """One checklist item: ``criterion`` id, ``status`` (see the module docstring), a message,
    the levels it concerns (empty: the whole case) and its source."""

    criterion: str
    status: str
    message: str
    source: str
    levels: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"criterion": self.criterion, "status": self.status, "message": self.message,
                "levels": list(self.levels), "source": self.source}


@dataclass
class Eligibility:
    """The checklist's outcome: the case verdict with its reasons, per-level verdicts, every finding."""

    verdict: str
    reasons: list[str]
    level_verdicts: dict[str, str]
    findings: list[Finding]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "level_verdicts": dict(self.level_verdicts),
                "findings": [f.to_dict() for f in self.findings]}


def parse_levels(spec) -> list[str]:
    """Vertebral bodies named by ``spec``: ``"L4"``, ``"L4-L5"``/``"L4–L5"`` (inclusive range), a
    comma-separated string or a list of those; superior to inferior, no repeats."""
    items = spec if isinstance(spec, (list, tuple)) else str(spec).split(",")
    order = list(ACCEPTED_LEVELS)
    found: list[str] = []
    for item in items:
        parts = [p for p in re.split(r"\s*[-–—]\s*|\s+to\s+", str(item).strip()) if p]
        if len(parts) == 1:
            names = [normalise_level(parts[0])]
        elif len(parts) == 2:
            lo, hi = (order.index(normalise_level(p)) for p in parts)
            if lo > hi:
                raise InputError(f"level range {item!r} runs upward: write the superior level first (e.g. L4-L5)")
            names = [n for n in order[lo:hi + 1] if n != "L6" or "L6" in (normalise_level(p) for p in parts)]
        else:
            raise InputError(f"cannot read level {item!r}: write L4, L4-L5 or a list of those")
        found += [n for n in names if n not in found]
    if not found:
        raise InputError(f"no vertebral level in {spec!r}: write e.g. L4-L5 or [L4, L5]")
    return sorted(found, key=order.index)


def normalise_modic(value) -> str:
    """A Modic type as one of :data:`MODIC_TYPES` (``0``/``None``/``"none"`` -> ``"none"``)."""
    text = "none" if value in (None, 0, "0") else str(value).strip().lower().replace("type", "").replace(" ", "")
    text = text.replace("mixed", "").replace("-", "/")
    if text in ("", "no", "absent"):
        text = "none"
    if text not in MODIC_TYPES:
        raise InputError(f"unknown Modic type {value!r}: use one of {', '.join(MODIC_TYPES)} (0 for none)")
    return text


def check_eligibility(clinical: ClinicalData, levels: list[str],
                      criteria: EligibilityCriteria = EligibilityCriteria(),
                      body_grades: dict[str, tuple[int, float]] | None = None) -> Eligibility:
    """Run the checklist for treating the vertebral bodies ``levels`` (see the module docstring).
    ``body_grades``: per level measured on the images, the body's Genant grade and height loss (%)
    (:mod:`bvn_plan.anatomy.morphometry`); a compressed body is flagged beside the bone density."""
    levels = parse_levels(levels)
    findings = _level_findings(clinical, levels, criteria)
    findings += _history_findings(clinical, criteria)
    findings += _contraindication_findings(clinical)
    findings += _score_findings(clinical, levels, criteria)
    findings += _bone_density_findings(clinical, criteria)
    findings += _existing_fracture_findings(body_grades or {})
    return _verdict(findings, levels)


def untreated_levels_message(levels: list[str], treatable: tuple[str, ...] = TREATABLE_LEVELS) -> str | None:
    """A sentence naming the ``levels`` outside the ``treatable`` ones (the device label), or None."""
    outside = [lv for lv in levels if lv not in treatable]
    if not outside:
        return None
    return (f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the treated levels "
            f"{_range_text(list(treatable))} (device label): planning is shown for teaching, not indicated")


def _level_findings(c: ClinicalData, levels: list[str], k: EligibilityCriteria) -> list[Finding]:
    out = []
    outside = [lv for lv in levels if lv not in k.treatable_levels]
    if outside:
        out.append(Finding("treatable_level", NOT_MET, untreated_levels_message(levels, k.treatable_levels),
                           SOURCES["label"], tuple(outside)))
    inside = [lv for lv in levels if lv in k.treatable_levels]
    if inside:
        out.append(Finding("treatable_level", MET, f"{', '.join(inside)} within the treated levels "
                           f"{_range_text(list(k.treatable_levels))} (device label)", SOURCES["label"], tuple(inside)))
    for level in levels:
        modic = c.modic.get(level)
        if modic is None:
            out.append(Finding("modic", REVIEW, f"Modic type at {level} not given: confirm Modic 1 or 2 on MRI",
                               SOURCES["label"], (level,)))
        elif modic == "none":
            out.append(Finding("modic", NOT_MET, f"no Modic change at the requested {level}", SOURCES["necessity_review"],
                               (level,)))
        elif modic in k.qualifying_modic:
            out.append(Finding("modic", MET, f"Modic type {modic} at {level}", SOURCES["label"], (level,)))
        elif "3" in modic and any(t in modic for t in ("1", "2")):
            out.append(Finding("modic", REVIEW, f"mixed Modic type {modic} at {level}: the label names types 1 and 2",
                               SOURCES["label"], (level,)))
        else:
            out.append(Finding("modic", NOT_MET, f"Modic type {modic} at {level}: the label names types 1 and 2 only",
                               SOURCES["label"], (level,)))
    if c.symptomatic_levels is None:
        out.append(Finding("symptomatic_match", REVIEW, "symptomatic levels not stated: confirm that the requested "
                           "levels are the symptomatic ones", SOURCES["necessity_review"]))
    else:
        unmatched = [lv for lv in levels if lv not in c.symptomatic_levels]
        symptomatic = _range_text(c.symptomatic_levels)
        if unmatched:
            out.append(Finding("symptomatic_match", NOT_MET, f"requested {_range_text(unmatched)} does not match the "
                               f"symptomatic {symptomatic}", SOURCES["necessity_review"], tuple(unmatched)))
        else:
            out.append(Finding("symptomatic_match", MET, f"requested levels match the symptomatic {symptomatic}",
                               SOURCES["necessity_review"], tuple(levels)))
    return out


def _history_findings(c: ClinicalData, k: EligibilityCriteria) -> list[Finding]:
    out = []
    months = c.symptom_duration_months
    if months is None:
        out.append(Finding("symptom_duration", REVIEW, "duration of the back pain not given", SOURCES["label"]))
    elif months < k.min_symptom_months:
        out.append(Finding("symptom_duration", NOT_MET, f"back pain for {months:g} months, under the "
                           f"{k.min_symptom_months:g} months required", SOURCES["label"]))
    else:
        out.append(Finding("symptom_duration", MET, f"back pain for {months:g} months (>= {k.min_symptom_months:g})",
                           SOURCES["label"]))
    days = c.acute_episode_days
    if days is not None and days <= k.acute_episode_max_days:
        out.append(Finding("acute_episode", NOT_MET, f"the current episode is acute ({days:g} days): treat it "
                           "conservatively and reassess", SOURCES["necessity_review"] + "; " + SOURCES["acute"]))
    care = c.conservative_care_months
    treatments = ", ".join(c.conservative_treatments) or "no treatments named"
    if care is None:
        out.append(Finding("conservative_care", REVIEW, "months of conservative care not given", SOURCES["label"]))
    elif care < k.min_conservative_months:
        out.append(Finding("conservative_care", NOT_MET, f"{care:g} months of conservative care ({treatments}), "
                           f"under the {k.min_conservative_months:g} months required", SOURCES["label"]))
    elif not c.conservative_treatments:
        out.append(Finding("conservative_care", REVIEW, f"{care:g} months of conservative care but no treatment "
                           "named: record what was tried", SOURCES["conservative_care"]))
    else:
        out.append(Finding("conservative_care", MET, f"{care:g} months of failed conservative care ({treatments})",
                           SOURCES["label"]))
    return out


def _contraindication_findings(c: ClinicalData) -> list[Finding]:
    out = []
    for item in c.contraindications:
        text = item.lower()
        known = [name for name, words in ABSOLUTE_CONTRAINDICATIONS.items() if any(w in text for w in words)]
        if known:
            out.append(Finding("contraindication", NOT_MET, f"absolute contraindication: {item} ({known[0]})",
                               SOURCES["contraindications"]))
        else:
            out.append(Finding("contraindication", REVIEW, f"{item}: not an absolute contraindication on the "
                               "list; weigh it", SOURCES["contraindications"]))
    if not c.contraindications:
        out.append(Finding("contraindication", MET, "no contraindication recorded", SOURCES["contraindications"]))
    return out


def _score_findings(c: ClinicalData, levels: list[str], k: EligibilityCriteria) -> list[Finding]:
    out = []
    for name, value, floor in (("ODI", c.odi, k.trial_min_odi), ("NRS", c.nrs, k.trial_min_nrs)):
        if value is None:
            out.append(Finding(name.lower(), INFO, f"{name} not given", SOURCES["trials"]))
        elif value <= floor:
            out.append(Finding(name.lower(), REVIEW, f"{name} {value:g} is not above the trials' {floor:g}",
                               SOURCES["trials"]))
        else:
            out.append(Finding(name.lower(), MET, f"{name} {value:g} > {floor:g}", SOURCES["trials"]))
    months = c.symptom_duration_months
    if (months is not None and months < k.payer_min_symptom_months) or len(levels) > k.payer_max_levels:
        out.append(Finding("payer_policy", INFO, f"one payer requires >= {k.payer_min_symptom_months:g} months of "
                           f"symptoms and <= {k.payer_max_levels} adjacent bodies (here {months if months is not None else '?'} "
                           f"months, {len(levels)} bodies)", SOURCES["payer"]))
    return out


def _bone_density_findings(c: ClinicalData, k: EligibilityCriteria) -> list[Finding]:
    status = c.bone_density_status
    if status not in BONE_DENSITY_STATUSES:
        raise InputError(f"bone density status {status!r}: use one of {', '.join(BONE_DENSITY_STATUSES)}")
    low_t = c.t_score is not None and c.t_score <= k.osteopenia_t_score
    if status in ("osteopenia", "osteoporosis") or low_t:
        what = status if status in ("osteopenia", "osteoporosis") else "low bone density"
        t = f", T-score {c.t_score:g}" if c.t_score is not None else ""
        return [Finding("fracture_risk", RISK, f"{what}{t}: higher risk of vertebral compression fracture after "
                        "BVNA: 4.64% with osteoporosis/osteopenia vs 0.37% without (1.55% overall; adjusted OR 6.5, "
                        "95% CI 3.7-12.3; TriNetX, Interv Pain Med 2025;4(4):100654); a series of 134 patients "
                        "(32 with low bone density) had no fractures (Bellow 2025). A risk to discuss, not a "
                        "contraindication", SOURCES["fracture_risk"] + "; " + SOURCES["who_t_score"])]
    if status == "unknown" and c.t_score is None:
        return [Finding("fracture_risk", INFO, "bone density not given: low bone density raises the fracture risk "
                        "after BVNA (4.64% vs 0.37%)", SOURCES["fracture_risk"])]
    return [Finding("fracture_risk", MET, f"bone density {status}" + (f", T-score {c.t_score:g}" if c.t_score is not None
                    else ""), SOURCES["fracture_risk"])]


def _existing_fracture_findings(body_grades: dict[str, tuple[int, float]]) -> list[Finding]:
    out = []
    for level, (grade, loss) in sorted(body_grades.items()):
        if grade >= 1:
            out.append(Finding("existing_fracture", RISK, f"{level}: the body reads compressed on the images (Genant "
                               f"grade {grade}, {loss:.0f}% height loss against the level's normal shape): an existing "
                               "vertebral fracture marks fragile bone; fractures after BVNA are more frequent with "
                               "osteoporosis/osteopenia (4.64% vs 0.37%). Confirm on the images and check bone density",
                               SOURCES["genant"] + "; " + SOURCES["fracture_risk"], (level,)))
    return out


def _verdict(findings: list[Finding], levels: list[str]) -> Eligibility:
    def verdict_of(items: list[Finding]) -> str:
        if any(f.status == NOT_MET for f in items):
            return NOT_INDICATED
        return NEEDS_REVIEW if any(f.status == REVIEW for f in items) else INDICATED

    verdict = verdict_of(findings)
    deciding = NOT_MET if verdict == NOT_INDICATED else REVIEW
    reasons = [f.message for f in findings if f.status == deciding]
    reasons += [f.message for f in findings if f.status == RISK]
    per_level = {level: verdict_of([f for f in findings if not f.levels or level in f.levels]) for level in levels}
    return Eligibility(verdict, reasons, per_level, findings)


def _range_text(levels: list[str]) -> str:
    return levels[0] if len(levels) == 1 else f"{levels[0]}-{levels[-1]}" if _contiguous(levels) else ", ".join(levels)


def _contiguous(levels: list[str]) -> bool:
    order = list(ACCEPTED_LEVELS)
    idx = [order.index(lv) for lv in levels]
    return all(b - a == 1 or (order[a] == "L5" and order[b] == "S1") for a, b in zip(idx, idx[1:]))
