"""Pictures of a plan: the 3D scene (pyvista, :mod:`bvn_plan.viz.scene`) and simulated
fluoroscopy (:mod:`bvn_plan.viz.fluoro`), both annotated in screen space (labels that never
overlap, orientation marker, scale bar: :mod:`bvn_plan.viz.annotate`). Importing this package
loads pyvista; ``import bvn_plan`` does not import it. Geometry in mm, model coordinates.

    render_scene_png(vertebra, landmarks, "scene.png", ScenePlan([plan.path], [plan.lesion], plan.check))
    simulate_fluoro_views(vertebra, landmarks, [plan.path], FluoroSettings(pedicle=plan.side))
"""

from .annotate import Overlay, PointLabel, annotate, scale_bar_mm
from .fluoro import (BONE_MU_PER_MM, MIN_LONG_SIDE_PX, STEEL_MU_PER_MM, TIP_RING_COLOUR, TIP_RING_GAP_MM,
                     TIP_RING_WIDTH_MM, VIEWS, FluoroImage, FluoroSettings, Projection, hu_to_mu, simulate_fluoro, simulate_fluoro_views,
                     view_axes, write_png)
from .pictures import SCENE_CAMERAS, plan_file_pictures, write_pictures
from .scene import (CAMERAS, MARKER_COLOUR_NAMES, MARKER_COLOURS, NO_FORAMEN_LEVELS, ScenePlan, SceneView, add_caption,
                    build_scene, instrument_tubes, plan_clearance, render_scene_png, scene_markers, scene_picture,
                    set_camera, world_to_pixel)

__all__ = [
    "MARKER_COLOUR_NAMES", "MARKER_COLOURS", "MIN_LONG_SIDE_PX", "NO_FORAMEN_LEVELS", "Overlay", "PointLabel",
    "SCENE_CAMERAS", "annotate", "plan_file_pictures", "scale_bar_mm", "scene_markers", "scene_picture",
    "write_pictures", "BONE_MU_PER_MM", "CAMERAS", "FluoroImage", "FluoroSettings", "Projection", "STEEL_MU_PER_MM", "ScenePlan",
    "SceneView", "TIP_RING_COLOUR", "TIP_RING_GAP_MM", "TIP_RING_WIDTH_MM", "VIEWS", "add_caption", "build_scene",
    "hu_to_mu", "instrument_tubes", "plan_clearance", "render_scene_png", "set_camera", "simulate_fluoro",
    "simulate_fluoro_views", "view_axes", "world_to_pixel", "write_png",
]
