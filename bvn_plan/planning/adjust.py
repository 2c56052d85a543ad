"""Moving a plan and re-judging it: the model behind ``bvn-plan show`` and the interactive window
(:mod:`bvn_plan.viz.window` draws it; nothing here imports pyvista).

:func:`bvn_plan.planning.plan_file.read_plan` reads one level of a ``plan.json`` into the vertebra,
its landmarks (as saved: the anatomy is not found again) and the planned paths in model
coordinates (mm) that :func:`show_plan` starts from.

:class:`InteractivePlanner` holds one vertebra's safety zones, built once, and re-judges a path
each time its entry point or target moves, with the **same** checker the planner uses
(:func:`bvn_plan.planning.safety.check_path` with the device's ellipsoid lesion). It returns a
:class:`PlannerUpdate`: the path, its lesion, the check and the verdict's words. The window of
:func:`bvn_plan.viz.window.show_plan` only forwards sphere-widget moves and keys to it:

* the green sphere is the entry point (the path's skin-side start), the red one the target (tip);
* ``a`` cycles the approach, ``s`` switches the side, each showing that approach's plan from the
  plan file (or the LevelPlan) again.

How a moved path is rebuilt (mm, model coordinates): a straight plan stays a straight line from
entry to target. A curved plan keeps its introducer line through the plan's arc start (the pivot,
inside the pedicle-body passage): moving the entry swings the line about the pivot, and the
cannula arc of the device radius is fitted tangent to that line ending at the target (closed form,
:class:`bvn_plan.paths.TangentArcs`, as in the planner). When no arc of the device's radius and maximum angle reaches the
target from that line, the path is drawn straight from entry to target and the update says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..device import DeviceProfile
from ..errors import BvnPlanError, InputError
from ..landmarks import Landmarks
from ..lesion import EllipsoidLesion
from ..paths import InstrumentPath, TangentArcs, max_arc_offset_mm
from .planner import APPROACHES
from .safety import CheckResult, RuleSet, SafetyZones, check_path

#: A target nearer than this (mm) to the introducer line needs no arc: the path stays straight.
STRAIGHT_TOLERANCE_MM = 0.5


@dataclass
class PlanOption:
    """One planned approach and side, as the starting point of the interactive path (mm, model
    coordinates): skin-side entry, arc start (None for a straight path) and tip."""

    approach: str
    side: str
    entry: np.ndarray
    arc_start: np.ndarray | None
    tip: np.ndarray
    verdict: str = ""   # the verdict the plan was saved with ("" when unknown)


@dataclass
class PlannerUpdate:
    """The result of one move or selection (mm, model coordinates).

    ``check`` is None and ``error`` says why when the checker refuses the path (e.g. it never
    enters the vertebra).
    """

    approach: str
    side: str
    path: InstrumentPath
    lesion: EllipsoidLesion
    check: CheckResult | None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def verdict(self) -> str:
        return self.check.verdict if self.check is not None else "invalid"

    def caption(self) -> list[str]:
        """The verdict's reasons, the three smallest clearances and the breach grade, one per line."""
        if self.check is None:
            return [self.error or ""] + [f"note: {n}" for n in self.notes]
        # a passing check's single reason lists every rule: the smallest clearances say enough
        lines = [f"- {r.split(':')[0] if self.check.verdict == 'pass' else r}" for r in self.check.reasons]
        ranked = sorted(self.check.clearances.values(), key=lambda c: c.clearance_mm)[:3]
        lines += [f"{c.zone.replace('_', ' ')} ({c.applies_to}): {c.clearance_mm:.1f} mm" for c in ranked]
        lines.append(f"Gertzbein-Robbins grade {self.check.gertzbein_robbins_grade} "
                     f"(medial breach {self.check.medial_breach_mm:.1f} mm)")
        return lines + [f"note: {n}" for n in self.notes]

    def title(self) -> str:
        return f"{self.side} {self.approach}: verdict {self.verdict.upper()}"

    def text(self) -> str:
        """Title and caption as one text."""
        return "\n".join([self.title(), *self.caption()])


class InteractivePlanner:
    """Move a plan's entry point and target and re-judge it (mm, model coordinates).

    ``landmarks``: the vertebra's (found or ground truth); ``options``: the planned approaches and
    sides to start from (:class:`PlanOption`); the safety zones are built once here (or passed in as
    ``zones``) and every update calls :func:`bvn_plan.planning.safety.check_path` on them with the
    device's ellipsoid lesion.
    """

    def __init__(self, vertebra, landmarks: Landmarks, options: list[PlanOption],
                 device: DeviceProfile = DeviceProfile(), rules: RuleSet = RuleSet(), zones: SafetyZones | None = None):
        if not options:
            raise InputError("no planned path to start from: every approach of the plan was blocked")
        self.vertebra, self.landmarks, self.device, self.rules = vertebra, landmarks, device, rules
        self.zones = zones if zones is not None else SafetyZones(vertebra.mesh, landmarks)
        self.options = {(o.approach, o.side): o for o in options}
        self.current: PlanOption | None = None
        self.entry = self.target = self.pivot = None

    @classmethod
    def from_level_plan(cls, vertebra, level_plan, zones: SafetyZones | None = None) -> "InteractivePlanner":
        """Start from every planned approach and side of a :class:`~bvn_plan.planning.planner.LevelPlan`."""
        options = [PlanOption(r.approach, r.side, r.plan.path.start,
                              r.plan.path.arc_start if r.plan.path.arc is not None else None, r.plan.path.tip,
                              r.plan.verdict)
                   for r in level_plan.results if r.plan is not None]
        return cls(vertebra, level_plan.landmarks, options, level_plan.device, level_plan.rules, zones)

    # -- choosing a plan --------------------------------------------------------------------
    def select(self, approach: str, side: str) -> PlannerUpdate:
        """Show the planned path of ``approach`` on ``side`` again (undoing any moves)."""
        option = self.options.get((approach, side))
        if option is None:
            planned = ", ".join(f"{s} {a}" for a, s in self.options)
            raise InputError(f"no planned {side} {approach} path; planned: {planned}")
        self.current = option
        self.entry, self.target = np.array(option.entry, float), np.array(option.tip, float)
        self.pivot = None if option.arc_start is None else np.array(option.arc_start, float)
        update = self.update()
        if option.verdict and update.verdict != option.verdict:
            update.notes.append(f"re-checked, the verdict is {update.verdict}, "
                                f"the plan was saved as {option.verdict}")
        return update

    def select_checked(self, approach: str, side: str, source: str) -> PlannerUpdate:
        """:meth:`select`, refusing (InputError naming ``source``, the plan file) a saved path the
        checker cannot judge on this vertebra: it never enters the bone, or its tip lies outside it."""
        update = self.select(approach, side)
        if update.check is None:
            raise InputError(f"{source}: the {side} {approach} path of {self.landmarks.level} cannot be checked on "
                             f"its mesh: {update.error}. The file's points, its mesh or their frame/units do not fit "
                             "together")
        return update

    def cycle_approach(self) -> PlannerUpdate:
        """The next planned approach (in the planner's APPROACHES order) on the current side, else on either side."""
        order = [a for a in APPROACHES if any(k[0] == a for k in self.options)]
        start = order.index(self.current.approach)
        for step in range(1, len(order) + 1):
            approach = order[(start + step) % len(order)]
            for side in (self.current.side, "left" if self.current.side == "right" else "right"):
                if (approach, side) in self.options:
                    return self.select(approach, side)
        return self.update()

    def switch_side(self) -> PlannerUpdate:
        """The same approach on the other side, when it was planned (else the update says so)."""
        other = "left" if self.current.side == "right" else "right"
        if (self.current.approach, other) in self.options:
            return self.select(self.current.approach, other)
        update = self.update()
        update.notes.append(f"no {other} {self.current.approach} plan to switch to")
        return update

    # -- moving --------------------------------------------------------------------------------
    def set_entry(self, point) -> PlannerUpdate:
        """Move the skin-side entry point (mm, model coordinates) and re-judge the path."""
        return self._move("entry", _point(point, "entry point"))

    def set_target(self, point) -> PlannerUpdate:
        """Move the target (the tip, mm, model coordinates) and re-judge the path."""
        return self._move("target", _point(point, "target"))

    def _move(self, which: str, point: np.ndarray) -> PlannerUpdate:
        """Set the entry or target; a refused path leaves the previous one in place."""
        previous = getattr(self, which)
        setattr(self, which, point)
        try:
            return self.update()
        except InputError:
            setattr(self, which, previous)
            raise

    def update(self) -> PlannerUpdate:
        """Build the current path and its lesion, and check them against the zones."""
        if self.current is None:
            raise InputError("select an approach and side first")
        path, notes = self.build_path()
        lesion = EllipsoidLesion.from_probe(path.tip, path.tip_direction, self.device)
        try:
            check, error = check_path(self.zones, path, lesion, self.rules), None
        except BvnPlanError as exc:
            check, error = None, str(exc)
        return PlannerUpdate(self.current.approach, self.current.side, path, lesion, check, notes, error)

    def build_path(self) -> tuple[InstrumentPath, list[str]]:
        """The path from the current entry to the current target (see the module docstring)."""
        radius = self.device.introducer_radius_mm
        if np.linalg.norm(self.target - self.entry) < 1.0:
            raise InputError("the entry point and the target are less than 1 mm apart: move one of them")
        if self.pivot is None:
            return InstrumentPath.straight(self.entry, self.target, radius), []
        R, max_arc = self.device.cannula_radius_mm, self.device.cannula_max_arc_deg
        line = self.pivot - self.entry
        if np.linalg.norm(line) < 1.0:
            return InstrumentPath.straight(self.entry, self.target, radius), [
                "the entry sits on the arc start: shown as a straight path"]
        d = line / np.linalg.norm(line)
        arcs, bend = TangentArcs.to_tips(self.pivot[None], d[None], self.target[None], R)
        a0, p0 = float(arcs.along_mm[0]), float(arcs.offset_mm[0])
        if p0 < STRAIGHT_TOLERANCE_MM and a0 > 0:
            return InstrumentPath.straight(self.entry, self.target, radius), []
        # the arc starts start_mm along the line from the pivot
        if p0 > max_arc_offset_mm(R, max_arc) or arcs.start_mm[0] <= -np.linalg.norm(line) + 1.0:
            return InstrumentPath.straight(self.entry, self.target, radius), [
                f"no cannula arc of radius {R:.0f} mm and at most {max_arc:.0f} deg reaches the target from this "
                "introducer line: shown as a straight path"]
        angle = float(np.degrees(arcs.angle_rad[0]))
        path = InstrumentPath.straight_then_arc(self.entry, arcs.arc_starts(self.pivot[None], d[None])[0], bend[0],
                                                R, angle, radius, R)
        return path, []


def _point(point, what: str) -> np.ndarray:
    p = np.asarray(point, dtype=float).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"the {what} must be 3 finite coordinates (mm, model coordinates), got {point!r}")
    return p
