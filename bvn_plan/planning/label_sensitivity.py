"""Level-label sensitivity: what the plan would be if the vertebra's level label were one level off.

A level label can be wrong by one (a transitional vertebra, a count from the wrong end). The label
chooses the anatomy's priors (the plausibility checks, the pedicle-height prior under the exiting
root corridor), the terminus (S1: the body centre, the lumbar levels: the posterior third) and the
segmental-artery prevalence of the warnings. :func:`label_sensitivity` finds the anatomy again
under each neighbouring label (trusting it, so that the shape's fit to another level does not
refuse it), plans with the same device, rules, settings (but no two-probe pair) and approaches,
and says whether the recommendation changes: another approach or side, another verdict, a plan
where there was none or none where there was one. The tip's shift (mm, model coordinates: the same mesh) is reported.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..anatomy.find import find_anatomy
from ..errors import BvnPlanError, BvnPlanWarning
from ..levels import LEVELS, TRANSITIONAL
from ..vertebra import Vertebra
from .planner import LevelPlan, plan_level


def neighbour_levels(level: str) -> list[str]:
    """The labels one level off ``level`` on the lumbosacral column L1-L5, S1 (a transitional L6
    stands between L5 and S1)."""
    if level in TRANSITIONAL:
        return ["L5", "S1"]
    if level not in LEVELS:
        return []
    i = LEVELS.index(level)
    return [LEVELS[j] for j in (i - 1, i + 1) if 0 <= j < len(LEVELS)]


@dataclass
class LabelAlternative:
    """The plan under another label: its recommendation (approach, side, verdict; None when no safe
    plan or the anatomy was refused), whether it differs from the labelled one, the tip's shift (mm)
    and the reasons (or the refusal) in words."""

    level: str
    approach: str | None
    side: str | None
    verdict: str | None
    changed: bool
    tip_shift_mm: float | None
    reasons: list[str]

    def words(self) -> str:
        if self.approach is None:
            return f"as {self.level}: no plan ({'; '.join(self.reasons[:1])})" + (" - CHANGED" if self.changed else "")
        shift = "" if self.tip_shift_mm is None else f", tip {self.tip_shift_mm:.1f} mm from the labelled plan's"
        return (f"as {self.level}: {self.side} {self.approach} ({self.verdict}{shift})"
                + (" - CHANGED" if self.changed else " - the same recommendation"))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tip_shift_mm"] = None if self.tip_shift_mm is None else round(self.tip_shift_mm, 3)
        return out


def label_sensitivity(vertebra: Vertebra, level_plan: LevelPlan) -> list[LabelAlternative]:
    """The plan of ``vertebra`` under each label one level off ``level_plan``'s (see the module)."""
    base = level_plan.recommendation
    approaches = tuple(dict.fromkeys(r.approach for r in level_plan.results))
    out = []
    for level in neighbour_levels(level_plan.level):
        relabelled = Vertebra(vertebra.mesh, level, vertebra.patient_frame, vertebra.input_units, vertebra.source,
                              trust_level=True)
        try:
            with warnings.catch_warnings():  # the notes of a label known to be off are not the plan's
                warnings.simplefilter("ignore", BvnPlanWarning)
                landmarks = find_anatomy(relabelled, level_plan.landmarks.terminus)
                # the single recommendation is compared: no pair planned (about a second at L5/S1)
                other = plan_level(relabelled, landmarks, level_plan.device, level_plan.rules,
                                   settings=replace(level_plan.settings, two_probe_levels=()), approaches=approaches)
        except BvnPlanError as exc:
            out.append(LabelAlternative(level, None, None, None, base is not None, None, [f"refused: {exc}"]))
            continue
        rec = other.recommendation
        if rec is None:
            out.append(LabelAlternative(level, None, None, None, base is not None, None,
                                        list(other.recommendation_reasons)))
            continue
        changed = base is None or (rec.approach, rec.side, rec.verdict) != (base.approach, base.side, base.verdict)
        shift = None if base is None else float(np.linalg.norm(rec.path.tip - base.path.tip))
        out.append(LabelAlternative(level, rec.approach, rec.side, rec.verdict, changed, shift,
                                    list(other.recommendation_reasons[:1])))
    return out
