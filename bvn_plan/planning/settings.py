"""The planner's tunable numbers (mm, degrees) in one frozen record, read by every step of the search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..anatomy.target_zone import TargetZoneParameters
from ..errors import InputError
from .robustness import RobustnessSettings


@dataclass(frozen=True)
class PlannerSettings:
    """Every tunable number of the planner (mm, degrees). [A] = assumption, see the field notes.

    * ``target_tolerance_mm``: wanted tip-to-terminus distance (issue 5 default 2 mm); a preference
      traded against clearance, reported per plan, never allowed to break a safety rule.
    * ``coverage_margin_mm``: the point aimed at (the terminus, or the zone point the canal margin
      allows) lies at least this deep inside the lesion [A, 1 mm].
    * ``target_zone``: the bounds of the BVN target zone
      (:class:`bvn_plan.anatomy.target_zone.TargetZoneParameters`, each with its source); a case
      file may give them as a mapping.
    * ``pedicle_margin_mm``: bone wanted on each side of the introducer in the isthmus; an isthmus
      narrower than introducer + 2 x margin blocks the transpedicular route [A, 1 mm].
    * ``approach_mm``: soft-tissue length drawn before the bone entry (the path's skin-side start).
    * ``arc_start_past_wall_mm``: where the cannula may start bending, measured anteriorly from the
      pedicle-body junction ("just past the posterior wall") [A, 0-12 mm].
    * ``medial_angles_deg`` / ``craniocaudal_angles_deg``: introducer angle grid in the vertebra
      frame (medial positive toward the midline, cranial positive) [A: covers the L1-S1 transverse
      pedicle angles 11-43 deg of docs/sources.md 'Morphometry' with room either side].
    * ``isthmus_offset_mm``: offset of the four off-centre line points in the isthmus section.
    * ``screened_candidates``: (line, tip) pairs screened on sampled paths, the most promising by a
      cheap pre-score (line depth in the pedicle, coverage, lesion reach toward the canal); the best
      ranked of them, down to the last one judged exactly, get exact lesion-to-canal distances.
      (1500 and 3000 give the same plans on VHM L3-L5, TotalSegmentator L3-L5 and synthetic L4.)
    * ``tip_offsets_*_mm``: tip grid around the terminus in the vertebra frame; x toward the far
      side (positive past the midline), y anterior, z superior.
    * ``extrapedicular_medial_angles_deg`` / ``extrapedicular_craniocaudal_angles_deg``: grid of
      straight extrapedicular directions; it reaches 10 deg beyond the rule's window
      (:class:`bvn_plan.planning.approach.EntryWindows`, 15-50 deg medial, -15 to +15 deg cranio-caudal)
      on every side, and only directions strictly inside the window are searched, so that a plan's
      angles never sit at a grid edge or on the window's edge. The window and the bone-entry window
      anterior of the pedicle-body junction belong to the rule (``SafetyZones.approach.windows``).
    * ``clear_behind_entry_mm``: no bone may lie this far behind an extrapedicular bone entry (the
      trajectory would go through the transverse process or facet) [A].
    * ``clearance_cap_mm``: clearance above this many mm beyond every margin earns nothing more; the
      tip distance beyond tolerance costs ``tip_weight`` mm of clearance per mm [A].
    * ``exact_checks``: this many distinct candidates, best screened first, judged exactly per
      approach and side; ``alternatives``: runner-ups reported beside the plan.
    * ``robustness``: assess every approach and side's plan under a placement-error model and rank
      by it too (:class:`bvn_plan.planning.robustness.RobustnessSettings`); None: not assessed (the
      commands plan, case and demo turn it on, ``--robustness-samples``).
    * ``two_probe_levels``: the levels at which a right + left pair of probes is planned beside the
      single probe (:mod:`bvn_plan.planning.two_probes`; an L6 counts as L5) [A: the bi-pedicular
      two-probe variant is reported at L5/S1, bvn_facts.md "Anatomy of the target" 6; the large
      L5/S1 bodies are where one lesion covers least of the zone]; each pair costs about a second,
      so it is not planned everywhere; () plans none.
    """

    target_tolerance_mm: float = 2.0
    coverage_margin_mm: float = 1.0
    pedicle_margin_mm: float = 1.0
    approach_mm: float = 15.0
    arc_start_past_wall_mm: tuple[float, float] = (0.0, 12.0)
    medial_angles_deg: tuple[float, ...] = tuple(np.arange(-10.0, 52.5, 2.5))
    craniocaudal_angles_deg: tuple[float, ...] = tuple(np.arange(-15.0, 17.5, 2.5))
    isthmus_offset_mm: float = 1.5
    screened_candidates: int = 1500
    tip_offsets_x_mm: tuple[float, ...] = tuple(np.arange(-4.0, 5.0, 1.0))
    tip_offsets_y_mm: tuple[float, ...] = tuple(np.arange(0.0, 8.5, 0.5))
    tip_offsets_z_mm: tuple[float, ...] = (-2.0, 0.0, 2.0)
    extrapedicular_medial_angles_deg: tuple[float, ...] = tuple(np.arange(5.0, 62.5, 2.5))
    extrapedicular_craniocaudal_angles_deg: tuple[float, ...] = tuple(np.arange(-25.0, 27.5, 2.5))
    clear_behind_entry_mm: float = 40.0
    clearance_cap_mm: float = 2.0
    tip_weight: float = 1.0
    exact_checks: int = 3
    alternatives: int = 1
    target_zone: TargetZoneParameters = TargetZoneParameters()
    robustness: RobustnessSettings | None = None
    two_probe_levels: tuple[str, ...] = ("L5", "S1")

    def __post_init__(self):
        if isinstance(self.target_zone, dict):
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.target_zone.items()}
            try:
                object.__setattr__(self, "target_zone", TargetZoneParameters(**values))
            except TypeError as e:
                raise InputError(f"planner setting target_zone: {e}") from None
        if not isinstance(self.target_zone, TargetZoneParameters):
            raise InputError(f"planner setting target_zone must be TargetZoneParameters, got {self.target_zone!r}")
        for name in ("target_tolerance_mm", "coverage_margin_mm", "pedicle_margin_mm", "approach_mm",
                     "isthmus_offset_mm", "clear_behind_entry_mm", "clearance_cap_mm", "tip_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise InputError(f"planner setting {name} must be a non-negative number, got {value!r}")
        if self.exact_checks < 1 or self.alternatives < 0:
            raise InputError("planner settings: exact_checks must be >= 1 and alternatives >= 0")
        if not isinstance(self.two_probe_levels, tuple) or not all(isinstance(x, str) for x in self.two_probe_levels):
            raise InputError(f"planner setting two_probe_levels must be a list of level names (e.g. L5, S1), got "
                             f"{self.two_probe_levels!r}")
        lo, hi = self.arc_start_past_wall_mm
        if not lo <= hi:
            raise InputError(f"arc_start_past_wall_mm {self.arc_start_past_wall_mm}: min must not exceed max")

