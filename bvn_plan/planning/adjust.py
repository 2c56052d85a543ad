"""Seeing and moving a plan: ``bvn-plan show`` and the interactive planning window.

:func:`load_plan_file` reads a ``plan.json`` written by :func:`bvn_plan.planning.plan_file.write_plan`,
reloads the vertebra from the mesh path it names (with its units and patient frame), finds the
anatomy again and rebuilds every planned path in model coordinates (mm).

:class:`InteractivePlanner` holds one vertebra's safety zones, built once, and re-judges a path
each time its entry point or target moves, with the **same** checker the planner uses
(:func:`bvn_plan.planning.safety.check_path` with the device's ellipsoid lesion). It returns a
:class:`PlannerUpdate`: the path, its lesion, the check, and the meshes to draw. The window of
:func:`show_plan` only forwards sphere-widget moves and keys to it:

* the green sphere is the entry point (the path's skin-side start), the red one the target (tip);
* ``a`` cycles the approach, ``s`` switches the side, each showing that approach's plan from the
  plan file (or the LevelPlan) again.

How a moved path is rebuilt (mm, model coordinates): a straight plan stays a straight line from
entry to target. A curved plan keeps its introducer line through the plan's arc start (the pivot,
inside the pedicle-body passage): moving the entry swings the line about the pivot, and the
cannula arc of the device radius is fitted tangent to that line ending at the target (closed form
as in :mod:`bvn_plan.planning.planner`). When no arc of the device's radius and maximum angle reaches the
target from that line, the path is drawn straight from entry to target and the update says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..device import DeviceProfile
from ..errors import BvnPlanError, InputError
from ..lesion import EllipsoidLesion
from ..paths import InstrumentPath
from .safety import LESION_CHECK_SUBDIVISIONS, CheckResult, Rule, RuleSet, SafetyZones, check_path

#: Order in which ``a`` cycles the approaches (as in bvn_plan.planning.planner.APPROACHES).
APPROACH_ORDER = ("transpedicular", "transpedicular-straight", "extrapedicular")
#: A target nearer than this (mm) to the introducer line needs no arc: the path stays straight.
STRAIGHT_TOLERANCE_MM = 0.5
#: Radius (mm) of the entry and target sphere widgets in the window.
WIDGET_RADIUS_MM = 2.0


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
    enters the vertebra). ``tubes`` are (part name, pyvista tube, colour) as
    :func:`bvn_plan.viz.scene.instrument_tubes`; ``lesion_mesh`` the lesion surface (pyvista).
    """

    approach: str
    side: str
    path: InstrumentPath
    lesion: EllipsoidLesion
    check: CheckResult | None
    tubes: list
    lesion_mesh: object
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

    ``options``: the planned approaches and sides to start from (:class:`PlanOption`); the safety
    zones are built once here (or passed in as ``zones``) and every update calls
    :func:`bvn_plan.planning.safety.check_path` on them with the device's ellipsoid lesion.
    """

    def __init__(self, vertebra, options: list[PlanOption], device: DeviceProfile = DeviceProfile(),
                 rules: RuleSet = RuleSet(), zones: SafetyZones | None = None):
        if vertebra.landmarks is None:
            raise InputError("the vertebra has no landmarks: find the anatomy before planning interactively")
        if not options:
            raise InputError("no planned path to start from: every approach of the plan was blocked")
        self.vertebra, self.device, self.rules = vertebra, device, rules
        self.zones = zones if zones is not None else SafetyZones(vertebra.mesh, vertebra.landmarks)
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
        return cls(vertebra, options, level_plan.device, level_plan.rules, zones)

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
            update.notes.append(f"re-checked on the re-found anatomy the verdict is {update.verdict}, "
                                f"the plan was saved as {option.verdict}")
        return update

    def cycle_approach(self) -> PlannerUpdate:
        """The next planned approach (in APPROACH_ORDER) on the current side, else on either side."""
        order = [a for a in APPROACH_ORDER if any(k[0] == a for k in self.options)]
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
        """Build the current path, its lesion and meshes, and check them against the zones."""
        from ..viz.scene import instrument_tubes
        import pyvista as pv

        if self.current is None:
            raise InputError("select an approach and side first")
        path, notes = self.build_path()
        lesion = EllipsoidLesion.from_probe(path.tip, path.tip_direction, self.device)
        surface = lesion.surface_mesh(subdivisions=LESION_CHECK_SUBDIVISIONS)  # checked and drawn
        try:
            check, error = check_path(self.zones, path, surface, self.rules), None
        except BvnPlanError as exc:
            check, error = None, str(exc)
        return PlannerUpdate(self.current.approach, self.current.side, path, lesion, check, instrument_tubes(path),
                             pv.wrap(surface), notes, error)

    def build_path(self) -> tuple[InstrumentPath, list[str]]:
        """The path from the current entry to the current target (see the module docstring)."""
        radius = self.device.introducer_diameter_mm / 2
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
        w = self.target - self.pivot
        a0 = float(w @ d)
        perp = w - a0 * d
        p0 = float(np.linalg.norm(perp))
        if p0 < STRAIGHT_TOLERANCE_MM and a0 > 0:
            return InstrumentPath.straight(self.entry, self.target, radius), []
        chord = np.sqrt(max(p0 * (2 * R - p0), 0.0))
        s = a0 - chord                                  # arc start along the line, from the pivot
        reach = R * (1 - np.cos(np.radians(min(max_arc, 180.0))))
        if p0 > reach or s <= -np.linalg.norm(line) + 1.0:
            return InstrumentPath.straight(self.entry, self.target, radius), [
                f"no cannula arc of radius {R:.0f} mm and at most {max_arc:.0f} deg reaches the target from this "
                "introducer line: shown as a straight path"]
        angle = float(np.degrees(2 * np.arctan2(p0, chord)))
        path = InstrumentPath.straight_then_arc(self.entry, self.pivot + s * d, perp, R, angle, radius, R)
        return path, []


def _point(point, what: str) -> np.ndarray:
    p = np.asarray(point, dtype=float).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"the {what} must be 3 finite coordinates (mm, model coordinates), got {point!r}")
    return p


# -------------------------------------------------------------------------------------------------
# plan.json


@dataclass
class LoadedPlan:
    """A plan file reloaded: the vertebra (anatomy found again), its planned options (mm, model
    coordinates), the device, rules, the recommended (approach, side) and notes."""

    vertebra: object
    options: list[PlanOption]
    device: DeviceProfile
    rules: RuleSet
    recommended: tuple[str, str] | None
    notes: list[str]

    def planner(self) -> InteractivePlanner:
        """An interactive planner on these options (safety zones built here, once)."""
        return InteractivePlanner(self.vertebra, self.options, self.device, self.rules)


#: The re-found terminus may differ from the file's by this much (mm) before a note says so.
TERMINUS_MATCH_MM = 0.5


def load_plan_file(plan_file: str | os.PathLike) -> LoadedPlan:
    """Read ``plan.json``, reload its vertebra (mesh path relative to the working folder or to
    the plan file's folder; the file's units and patient frame) and find the anatomy again.
    Points of the file (input frame and units) become model coordinates (mm)."""
    from ..anatomy.find import find_anatomy
    from ..vertebra import Vertebra

    plan_file = Path(plan_file)
    try:
        doc = json.loads(plan_file.read_text())
        source, level = doc["source"], doc["level"]
        units, frame = doc["coordinates"]["units"], doc["coordinates"]["frame"]
        approaches = doc["approaches"]
    except OSError as exc:
        raise InputError(f"cannot read the plan file {plan_file}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{plan_file} is not a bvn-plan plan.json (write one with 'bvn-plan plan'): {exc!r}") from exc
    mesh_path = Path(source)
    if not mesh_path.is_absolute() and not mesh_path.exists():
        mesh_path = plan_file.parent / source
    if not mesh_path.exists():
        raise InputError(f"the plan's mesh {source} was not found (looked in the working folder and next to "
                         f"{plan_file}): run from the folder the plan was made in or fix 'source' in the file")
    vertebra = Vertebra.load(mesh_path, level=level, units=units, frame=frame if frame in ("RAS", "LPS") else None)
    landmarks = find_anatomy(vertebra)
    scale = vertebra.scale_to_mm
    notes = []
    shift = float(np.linalg.norm(np.asarray(doc["bvn_terminus"], float) * scale - landmarks.bvn_terminus))
    if shift > TERMINUS_MATCH_MM:
        notes.append(f"the re-found BVN terminus lies {shift:.1f} mm from the plan's (planned with other terminus "
                     "parameters?); the paths are drawn as planned")
    options = []
    for item in approaches:
        plan = item.get("plan")
        if plan is None:
            continue
        polyline = np.asarray(plan["path"]["polyline"], float) * scale
        arc_start = plan["path"]["arc_start"]
        options.append(PlanOption(item["approach"], item["side"], polyline[0],
                                  None if arc_start is None else np.asarray(arc_start, float) * scale,
                                  polyline[-1], plan["verdict"]))
    rec = doc.get("recommendation")
    return LoadedPlan(vertebra, options, DeviceProfile.from_dict(doc["device"]),
                      RuleSet(tuple(Rule(**r) for r in doc["rules"])),
                      (rec["approach"], rec["side"]) if rec else None, notes)


# -------------------------------------------------------------------------------------------------
# The window


def show_plan(plan_file: str | os.PathLike, png: str | os.PathLike | None = None, approach: str | None = None,
              side: str | None = None, camera: str = "oblique", window_size: tuple[int, int] = (1600, 900)):
    """Show a plan file's path (the recommendation unless ``approach``/``side`` say otherwise)
    with its lesion and clearances. With ``png`` the scene is rendered off-screen to that file
    (returns the image, H x W x 3); without, an interactive window opens (see the module docstring)."""
    loaded = load_plan_file(plan_file)
    if not loaded.options:
        raise InputError(f"{plan_file} holds no planned path (every approach was blocked): nothing to show")
    planner = loaded.planner()
    default = loaded.recommended or (loaded.options[0].approach, loaded.options[0].side)
    approach = approach or default[0]
    if side is None:  # the recommended side when that approach was planned there, else the other
        side = default[1] if (approach, default[1]) in planner.options else next(
            (s for a, s in planner.options if a == approach), default[1])
    update = planner.select(approach, side)
    if png is not None:
        plotter = scene_for_update(planner, update, loaded.notes, off_screen=True, window_size=window_size,
                                   camera=camera)
        try:
            return np.asarray(plotter.screenshot(os.fspath(png), return_img=True))[:, :, :3]
        finally:
            plotter.close()
    plotter = scene_for_update(planner, update, loaded.notes, off_screen=False, window_size=window_size,
                               camera=camera, labels=False)
    add_controls(plotter, planner, update)
    plotter.show()
    return None


def scene_for_update(planner: InteractivePlanner, update: PlannerUpdate, notes=(), off_screen: bool = True,
                     window_size=(1600, 900), camera: str = "oblique", labels: bool = True):
    """The scene of :func:`bvn_plan.viz.scene.build_scene` for an update, with the verdict text."""
    from ..viz.scene import build_scene

    plotter = build_scene(planner.vertebra, planner.vertebra.landmarks, [update.path], [update.lesion],
                          clearances=update.check, transparent=True, labels=labels, off_screen=off_screen,
                          window_size=window_size, camera=camera)
    _set_text(plotter, update, notes)
    return plotter


def apply_update(plotter, update: PlannerUpdate, notes=()) -> None:
    """Replace the instrument, lesion, markers, zone colours and text of a scene by an update's."""
    import pyvista as pv

    from ..viz.scene import LESION_COLOUR, MARKER_COLOURS, plan_clearance

    for name in [n for n in plotter.actors if n.startswith(("introducer ", "cannula ", "instrument ", "marker ", "label "))
                 and n not in ("marker BVN terminus", "marker basivertebral foramen")]:
        plotter.remove_actor(name, render=False)
    for name, tube, colour in update.tubes:
        plotter.add_mesh(tube, color=colour, smooth_shading=True, name=f"{name} 0", render=False)
    plotter.add_mesh(update.lesion_mesh, color=LESION_COLOUR, opacity=0.45, smooth_shading=True, name="lesion 0",
                     render=False)
    points = {"target": update.path.tip}
    if update.check is not None and update.check.bone_entry is not None:
        points["entry"] = update.check.bone_entry
    for kind, point in points.items():
        plotter.add_mesh(pv.Sphere(radius=1.0, center=np.asarray(point, float)), color=MARKER_COLOURS[kind],
                         name=f"marker {kind}", render=False)
    for zone in ("superior_endplate", "inferior_endplate", "posterior_wall", "canal"):
        actor = plotter.actors.get(zone)
        if actor is None or actor.mapper.GetInput() is None:
            continue
        source = actor.mapper.GetInput()
        dataset = pv.wrap(source)  # shares the point arrays: overwrite the clearances in place
        if "clearance (mm)" in dataset.point_data:
            dataset.point_data["clearance (mm)"][:] = plan_clearance(dataset.points, [update.path], [update.lesion])
            source.Modified()
    _set_text(plotter, update, notes)


def _set_text(plotter, update: PlannerUpdate, notes) -> None:
    from ..viz.scene import add_caption

    colour = {"pass": "darkgreen", "warn": "darkorange"}.get(update.verdict, "darkred")
    add_caption(plotter, update.title(), update.caption() + [f"note: {n}" for n in notes], colour=colour)


def add_controls(plotter, planner: InteractivePlanner, update: PlannerUpdate) -> None:
    """Sphere widgets for entry and target, keys 'a' (approach) and 's' (side)."""
    widgets = {}

    def moved(update):
        apply_update(plotter, update)
        widgets["entry"].SetCenter(*planner.entry)
        widgets["target"].SetCenter(*planner.target)
        plotter.render()

    widgets["entry"] = plotter.add_sphere_widget(lambda c: moved(planner.set_entry(c)), center=update.path.start,
                                                 radius=WIDGET_RADIUS_MM, color="green", test_callback=False)
    widgets["target"] = plotter.add_sphere_widget(lambda c: moved(planner.set_target(c)), center=update.path.tip,
                                                  radius=WIDGET_RADIUS_MM, color="red", test_callback=False)
    plotter.add_key_event("a", lambda: moved(planner.cycle_approach()))
    plotter.add_key_event("s", lambda: moved(planner.switch_side()))
    plotter.add_text("drag green = entry, red = target; 'a' approach, 's' side", position="lower_right",
                     font_size=9, name="help")
