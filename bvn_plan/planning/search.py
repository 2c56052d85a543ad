"""What every step of the planner's search reads: one vertebra's safety zones, the device, the rules
and the settings, with the geometry the steps share (mm, model coordinates; grids laid out in the
vertebra frame and mirrored between sides)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..anatomy.target_zone import TargetZone
from ..device import DeviceProfile
from ..geometry.crossings import interval_around, line_crossings
from ..lesion import spheroid_signed_distance, spheroid_surface_points
from ..paths import InstrumentPath, PathSamples
from .safety import RuleSet, SafetyZones
from .settings import PlannerSettings

#: Bisection steps for the terminus depth inside the spheroid (each halves a bracket of a few
#: units: 40 steps resolve it far below 1e-6 mm).
ELLIPSE_ITERATIONS = 40

#: Lever arm (mm) that turns the angle between an introducer and the pedicle axis into an
#: off-centre distance: about half an isthmus-to-body passage [A].
CENTRING_LEVER_MM = 10.0

#: Added (mm) to each face's bounding-sphere radius when picking the faces a line can cross, so that
#: rounding cannot drop a face the line grazes.
FACE_SPHERE_TOLERANCE_MM = 1e-6


@dataclass
class Candidates:
    """Candidate paths of one approach and side, sampled for screening (mm, model coordinates)."""

    samples: PathSamples      # (N, M, 3) points from the skin-side start to the tip, their depths, the radius
    in_bone_from: np.ndarray  # (N,) first sample index counted as inside bone (the bone entry)
    tip: np.ndarray           # (N, 3)
    tip_dir: np.ndarray       # (N, 3)
    build: Callable[[int], InstrumentPath]   # candidate index -> the path
    line_key: np.ndarray      # (N, 3) a point that identifies the introducer line (for diversity)
    centring: np.ndarray      # (N,) how far the pedicle passage is from centred (mm), 0 for extrapedicular


class SearchContext:
    """One vertebra's zones (built once), the device, rules and settings, and the shared geometry of
    the search: introducer directions, tip targets, isthmus points, skin starts, pedicle centring and
    the candidate lesions (mm, model coordinates).

    ``terminus`` is the point the search aims at: the nominal BVN terminus, or in a context made by
    :meth:`aimed` a point of the target ``zone`` (``target_kind`` "terminus" or "zone");
    ``zone_to_canal_mm``: the exact canal distance of each zone point (mm)."""

    def __init__(self, zones: SafetyZones, device: DeviceProfile, rules: RuleSet, settings: PlannerSettings,
                 zone: TargetZone | None = None):
        self.zones, self.device, self.settings = zones, device, settings
        self._take_rules(rules)
        self.lm = zones.landmarks
        self.frame = self.lm.frame
        self.radius_mm = device.introducer_radius_mm
        self.terminus = np.asarray(self.lm.bvn_terminus, float)
        self.target_kind = "terminus"
        self.terminus_to_canal = float(zones.canal.exact(self.terminus[None])[0])
        self.zone = zone if zone is not None else TargetZone.of(self.lm)
        self.zone_to_canal_mm = zones.canal.exact(self.zone.points)
        # each face's bounding sphere (centroid, farthest corner), so that a line's crossings are
        # sought only among the faces it can meet
        corners = zones.mesh.vertices[zones.mesh.faces]
        self._face_centres = corners.mean(axis=1)
        self._face_radii = np.linalg.norm(corners - self._face_centres[:, None], axis=2).max(axis=1)

    def aimed(self, target: np.ndarray) -> "SearchContext":
        """This context aiming at ``target`` (a zone point, mm, model coordinates) instead of the
        nominal terminus; everything else shared."""
        other = copy.copy(self)
        other.terminus = np.asarray(target, float)
        other.target_kind = "zone"
        other.terminus_to_canal = float(self.zones.canal.exact(other.terminus[None])[0])
        return other

    def with_rules(self, rules: RuleSet) -> "SearchContext":
        """This context searching under ``rules`` instead (their margins with them); everything else shared."""
        other = copy.copy(self)
        other._take_rules(rules)
        return other

    def _take_rules(self, rules: RuleSet) -> None:
        self.rules = rules
        self.margins = {r.name: r.margin_mm for r in rules.rules}
        #: the lesion's canal margin (mm): the rule's, or the default rule set's when the rules lack it
        self.canal_lesion_margin_mm = self.margin("canal_lesion", RuleSet()["canal_lesion"].margin_mm)

    def margin(self, name: str, default: float = 0.0) -> float:
        """The margin (mm) of rule ``name``, ``default`` when the rules lack it."""
        return self.margins.get(name, default)

    def local_dir(self, side: str, medial_deg, cc_deg) -> np.ndarray:
        """Unit directions (model coordinates) from medial / cranio-caudal angles in the vertebra frame."""
        a, b = np.radians(np.asarray(medial_deg, float)), np.radians(np.asarray(cc_deg, float))
        sign = 1.0 if side == "right" else -1.0
        local = np.stack([-sign * np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), np.sin(b)], axis=-1)
        return self.frame.direction_to_model(local)

    def tip_targets(self, side: str, even_only: bool = False) -> np.ndarray:
        """Tip candidates around the terminus (mm, model coordinates); ``even_only`` keeps the
        offsets on a 2 mm lattice (x and y even), for the costlier extrapedicular line search."""
        s = self.settings
        sign = 1.0 if side == "right" else -1.0
        t_local = self.frame.to_local(self.terminus)
        grid = np.array([[-sign * x, y, z] for x in s.tip_offsets_x_mm for y in s.tip_offsets_y_mm
                         for z in s.tip_offsets_z_mm
                         if not even_only or (x % 2 == 0 and y % 2 == 0)])
        tips = self.frame.to_model(t_local + grid)
        # a spheroid holds the ball of its smaller semi-axis about its centre, which lies lesion_offset_mm
        # behind the tip: a tip nearer the canal than this cannot keep the lesion's canal margin
        dev = self.device
        reach = min(dev.lesion_length_mm, dev.lesion_diameter_mm) / 2 - dev.lesion_offset_mm
        keep = self.zones.canal.approximate(tips) + self.zones.canal.band >= self.canal_lesion_margin_mm + reach
        return tips[keep]

    def isthmus_points(self, side: str) -> np.ndarray:
        """The isthmus centre and four points offset transversely and cranio-caudally (mm, model
        coordinates); transverse offsets shrink to a quarter of a narrow isthmus's width."""
        s = self.settings
        ped = self.lm.pedicles[side]
        sign = 1.0 if side == "right" else -1.0
        offsets = s.isthmus_offset_mm * np.array([[0, 0, 0], [sign, 0, 0], [-sign, 0, 0], [0, 0, 1], [0, 0, -1]], float)
        offsets[:, 0] *= min(1.0, ped.isthmus_width_mm / 4 / max(s.isthmus_offset_mm, 1e-9))
        return self.frame.to_model(self.frame.to_local(ped.isthmus_centre) + offsets)

    def skin_start(self, point: np.ndarray, direction: np.ndarray, t_guess: float) -> np.ndarray:
        """The path's skin-side start: ``approach_mm`` before the exact bone entry of the line
        ``point + t direction`` (mm, model coordinates), the mesh crossing nearest ``t_guess`` (the
        grid estimate) that starts the bone interval holding ``point``."""
        mesh = self.zones.mesh
        rel = self._face_centres - point
        along = rel @ direction / (direction @ direction)
        met = np.linalg.norm(rel - along[:, None] * direction, axis=1) <= self._face_radii + FACE_SPHERE_TOLERANCE_MM
        t = line_crossings(mesh.vertices, mesh.faces[met], point, direction)
        interval = interval_around(t, 0.0)
        entry = interval[0] if interval is not None and abs(interval[0] - t_guess) < 3.0 else t_guess
        return point + (entry - self.settings.approach_mm) * direction

    def centring(self, side: str, points: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """How far each introducer line (through ``points`` along ``dirs``) is from the centred one
        (through the isthmus centre along the pedicle axis): its distance from the isthmus centre plus
        CENTRING_LEVER_MM x the sine of its angle to the axis (mm)."""
        ped = self.lm.pedicles[side]
        rel = ped.isthmus_centre - points
        offset = np.linalg.norm(rel - np.einsum("nk,nk->n", rel, dirs)[:, None] * dirs, axis=1)
        sine = np.linalg.norm(np.cross(dirs, ped.axis_direction), axis=1)
        return offset + CENTRING_LEVER_MM * sine

    def lesion_centres(self, tip: np.ndarray, tip_dir: np.ndarray) -> np.ndarray:
        """Centres (N, 3; mm) of the device's lesions for probes with these tips and unit directions."""
        return tip - self.device.lesion_offset_mm * tip_dir

    def lesion_points(self, tip: np.ndarray, tip_dir: np.ndarray, subdivisions: int = 1) -> np.ndarray:
        """(N, K, 3) samples of each candidate's lesion surface (mm, model coordinates): the
        vertices of an icosphere (``subdivisions`` levels) mapped onto the spheroid."""
        dev = self.device
        return spheroid_surface_points(self.lesion_centres(tip, tip_dir), tip_dir, dev.lesion_length_mm / 2,
                                       dev.lesion_diameter_mm / 2, subdivisions)

    def coverage(self, tip: np.ndarray, tip_dir: np.ndarray) -> np.ndarray:
        """Exact depth (mm) of the terminus inside each candidate's spheroid lesion, negative outside
        (the meridian-plane distance used by EllipsoidLesion)."""
        dev = self.device
        terminus = np.broadcast_to(self.terminus, tip.shape)
        return -spheroid_signed_distance(terminus, self.lesion_centres(tip, tip_dir), tip_dir,
                                         dev.lesion_length_mm / 2, dev.lesion_diameter_mm / 2, ELLIPSE_ITERATIONS)
