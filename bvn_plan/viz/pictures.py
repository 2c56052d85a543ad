"""The pictures of a plan written to a folder: the 3D scene from each camera and the simulated AP,
lateral and en-face fluoroscopy, each annotated (labels, orientation marker, scale bar). The one
home of what ``bvn-plan render``, ``bvn-plan plan --images``, the HTML report and the README
pictures draw. Geometry in mm, model coordinates.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..landmarks import Landmarks
from .fluoro import FluoroSettings, simulate_fluoro_views
from .scene import ScenePlan, SceneView, render_scene_png

#: Scene cameras drawn by default (see bvn_plan.viz.scene.CAMERAS).
SCENE_CAMERAS = ("oblique", "axial")


def write_pictures(vertebra, landmarks: Landmarks, shown: ScenePlan, folder: str | os.PathLike,
                   cameras=SCENE_CAMERAS, settings: FluoroSettings = FluoroSettings(),
                   transparent: bool | None = None) -> dict[str, Path]:
    """Write ``scene_<camera>.png`` for each of ``cameras`` and ``fluoro_<view>.png`` for the three
    fluoroscopic views (``settings``) of ``shown`` on ``vertebra`` into ``folder`` (created if
    missing). The bone is translucent when ``transparent`` says so, by default whenever an
    instrument or a lesion is drawn (opaque bone would hide them). Returns caption -> file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if transparent is None:
        transparent = bool(shown.paths or shown.lesions)
    written = {}
    for camera in cameras:
        file = folder / f"scene_{camera}.png"
        render_scene_png(vertebra, landmarks, file, shown, SceneView(camera, transparent))
        written[f"3D scene, {camera} view"] = file
    for view, image in simulate_fluoro_views(vertebra, landmarks, shown.paths, settings).items():
        file = folder / f"fluoro_{view}.png"
        image.save_png(file)
        written[f"simulated fluoroscopy, {view.replace('_', '-')} view"] = file
    return written


def plan_file_pictures(plan_file: str | os.PathLike, folder: str | os.PathLike, level: str | None = None,
                       cameras=SCENE_CAMERAS, pixel_mm: float = 0.5, transparent: bool | None = None) -> dict[str, Path]:
    """:func:`write_pictures` of a plan file's recommended path (``level``: default the first
    planned; bvn_plan.planning.plan_file.read_plan) with its lesion and safety check, or of the
    bare anatomy when no approach was planned; ``transparent`` as :func:`write_pictures`."""
    from ..planning.plan_file import read_plan

    loaded = read_plan(plan_file, level)
    shown, pedicle = ScenePlan(), "right"
    if loaded.options:
        planner = loaded.planner()
        approach, side = loaded.recommended or (loaded.options[0].approach, loaded.options[0].side)
        update = planner.select_checked(approach, side, str(plan_file))
        shown, pedicle = ScenePlan([update.path], [update.lesion], update.check), side
    return write_pictures(loaded.vertebra, loaded.landmarks, shown, folder, cameras,
                          FluoroSettings(pedicle=pedicle, pixel_mm=pixel_mm), transparent)
