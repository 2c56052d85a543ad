"""The interactive planning window of ``bvn-plan show``: the view of
:class:`bvn_plan.planning.adjust.InteractivePlanner` (pyvista).

* the green sphere is the entry point (the path's skin-side start), the red one the target (tip);
* ``a`` cycles the approach, ``s`` switches the side, each showing that approach's plan from the
  plan file (or the LevelPlan) again.

Every move or key goes to the planner, which rebuilds and re-judges the path; the window draws the
:class:`~bvn_plan.planning.adjust.PlannerUpdate` it returns: instrument tubes, lesion surface (the
one the checker sampled), markers, zone colours and the verdict's words (mm, model coordinates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyvista as pv

from ..errors import InputError
from ..planning.adjust import InteractivePlanner, PlannerUpdate
from ..planning.plan_file import read_plan
from ..planning.safety import LESION_CHECK_SUBDIVISIONS
from .fluoro import write_png
from .scene import (LESION_COLOUR, MARKER_COLOURS, ScenePlan, SceneView, add_caption, build_scene, instrument_tubes,
                    plan_clearance, scene_markers, scene_picture)

#: Radius (mm) of the entry and target sphere widgets in the window.
WIDGET_RADIUS_MM = 2.0


@dataclass
class Shown:
    """What :func:`show_plan` showed: the level, the approach and side, the checker's verdict on
    the path as drawn, and the picture (H x W x 3, with ``png``; None for a window)."""

    level: str
    approach: str
    side: str
    verdict: str
    picture: np.ndarray | None = None
    reasons: tuple[str, ...] = ()


def show_plan(plan_file: str | os.PathLike, png: str | os.PathLike | None = None, approach: str | None = None,
              side: str | None = None, camera: str = "oblique", window_size: tuple[int, int] = (1600, 900),
              level: str | None = None) -> Shown:
    """Show a plan file's path (``level``: default the first planned; the recommendation unless
    ``approach``/``side`` say otherwise) with its lesion and clearances. With ``png`` the scene is
    rendered off-screen to that file (the picture in the returned record); without, an
    interactive window opens (see the module docstring)."""
    loaded = read_plan(plan_file, level)
    if not loaded.options:
        raise InputError(f"{plan_file} holds no planned path (every approach was blocked): nothing to show")
    planner = loaded.planner()
    default = loaded.recommended or (loaded.options[0].approach, loaded.options[0].side)
    approach = approach or default[0]
    if side is None:  # the recommended side when that approach was planned there, else the other
        side = default[1] if (approach, default[1]) in planner.options else next(
            (s for a, s in planner.options if a == approach), default[1])
    update = planner.select_checked(approach, side, str(plan_file))
    reasons = tuple(update.check.reasons)
    if png is not None:
        plotter = scene_for_update(planner, update, off_screen=True, window_size=window_size, camera=camera)
        try:
            shown = ScenePlan([update.path], [update.lesion], update.check)
            picture = scene_picture(plotter, planner.landmarks, scene_markers(planner.vertebra, planner.landmarks, shown))
        finally:
            plotter.close()
        write_png(picture, png)
        return Shown(loaded.level, approach, side, update.verdict, picture, reasons)
    plotter = scene_for_update(planner, update, off_screen=False, window_size=window_size, camera=camera,
                               labels=False)
    add_controls(plotter, planner, update)
    plotter.show()
    return Shown(loaded.level, approach, side, update.verdict, reasons=reasons)


def scene_for_update(planner: InteractivePlanner, update: PlannerUpdate, notes=(), off_screen: bool = True,
                     window_size=(1600, 900), camera: str = "oblique", labels: bool = True):
    """The scene of :func:`bvn_plan.viz.scene.build_scene` for an update, with the verdict text."""
    plotter = build_scene(planner.vertebra, planner.landmarks, ScenePlan([update.path], [update.lesion], update.check),
                          SceneView(camera, transparent=True, labels=labels, off_screen=off_screen,
                                    window_size=window_size))
    _set_text(plotter, update, notes)
    return plotter


def apply_update(plotter, update: PlannerUpdate, notes=()) -> None:
    """Replace the instrument, lesion, markers, zone colours and text of a scene by an update's."""
    for name in [n for n in plotter.actors if n.startswith(("introducer ", "cannula ", "instrument ", "marker ", "label "))
                 and n not in ("marker BVN terminus", "marker basivertebral foramen")]:
        plotter.remove_actor(name, render=False)
    for name, tube, colour in instrument_tubes(update.path):
        plotter.add_mesh(tube, color=colour, smooth_shading=True, name=f"{name} 0", render=False)
    lesion_mesh = pv.wrap(update.lesion.surface_mesh(LESION_CHECK_SUBDIVISIONS))  # the surface the checker sampled
    plotter.add_mesh(lesion_mesh, color=LESION_COLOUR, opacity=0.45, smooth_shading=True, name="lesion 0",
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
