"""Instrument paths: a straight segment, a straight segment followed by a circular arc (the
curved cannula), or a free polyline, with the instrument's radius.

All points are millimetres in model coordinates. The path runs from its first point (the
skin-side start) to its last point (the tip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .geometry.vectors import as_point, as_points, unit_vector

#: Spacing (mm) at which paths are sampled for clearance checks.
SAMPLE_STEP_MM = 0.5


@dataclass(frozen=True)
class Arc:
    """A circular arc of ``radius_mm`` sweeping ``angle_deg``, starting tangent to the straight
    part and bending toward ``bend_direction`` (unit vector, perpendicular to the straight part)."""

    radius_mm: float
    angle_deg: float
    bend_direction: np.ndarray


@dataclass(frozen=True)
class PathSamples:
    """Points along one instrument path ((M, 3)) or a batch of paths ((N, M, 3)), start to tip (mm,
    model coordinates), with their depth (arc length from the start, mm) and the instrument radius
    (mm): what the safety checker and the planner's screening measure clearances on."""

    points: np.ndarray
    depth_mm: np.ndarray
    radius_mm: float

    @classmethod
    def along(cls, points: np.ndarray, radius_mm: float) -> "PathSamples":
        """The samples ``points`` ((..., M, 3), mm) with their depths summed segment by segment."""
        steps = np.linalg.norm(np.diff(points, axis=-2), axis=-1)
        depth = np.concatenate([np.zeros(steps.shape[:-1] + (1,)), np.cumsum(steps, axis=-1)], axis=-1)
        return cls(points, depth, radius_mm)


@dataclass(frozen=True)
class TangentArcs:
    """Closed-form cannula arcs of radius R tangent to introducer lines (point P, unit direction d)
    and ending at tips T (mm; one per line and tip, as arrays).

    With a0 = (T - P).d (``along_mm``) and p0 = |(T - P) - a0 d| (``offset_mm``), the arc covers
    ``chord_mm`` = sqrt(p0 (2R - p0)) along the line, starts at depth ``start_mm`` = a0 - chord past P
    and sweeps ``angle_rad`` = 2 atan2(p0, chord) (so sin = chord / R and cos = 1 - p0 / R).
    """

    along_mm: np.ndarray
    offset_mm: np.ndarray
    chord_mm: np.ndarray
    arc_radius_mm: float

    @classmethod
    def from_offsets(cls, along_mm, offset_mm, arc_radius_mm: float) -> "TangentArcs":
        """The arcs to tips ``along_mm`` along and ``offset_mm`` off the lines (mm)."""
        along, offset = np.asarray(along_mm, float), np.asarray(offset_mm, float)
        chord = np.sqrt(np.clip(offset * (2 * arc_radius_mm - offset), 0, None))
        return cls(along, offset, chord, float(arc_radius_mm))

    @classmethod
    def to_tips(cls, points: np.ndarray, directions: np.ndarray, tips: np.ndarray,
                arc_radius_mm: float) -> tuple["TangentArcs", np.ndarray]:
        """The arcs from lines through ``points`` along unit ``directions`` to ``tips`` ((N, 3) each,
        mm) and the unit bend directions (N, 3) (NaN where a tip lies on its line)."""
        w = tips - points
        along = np.einsum("nk,nk->n", w, directions)
        perp = w - along[:, None] * directions
        offset = np.linalg.norm(perp, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            bend = perp / offset[:, None]
        return cls.from_offsets(along, offset, arc_radius_mm), bend

    @property
    def start_mm(self) -> np.ndarray:
        return self.along_mm - self.chord_mm

    def arc_starts(self, points: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """The arcs' start points (N, 3; mm) on their lines through ``points`` along ``directions``."""
        return points + self.start_mm[:, None] * directions

    @property
    def angle_rad(self) -> np.ndarray:
        return 2 * np.arctan2(self.offset_mm, self.chord_mm)


def arc_points(arc_start: np.ndarray, direction: np.ndarray, bend: np.ndarray, arc_radius_mm: float,
               angles_rad: np.ndarray) -> np.ndarray:
    """Points (..., K, 3; mm) at ``angles_rad`` (..., K) along circular arcs of ``arc_radius_mm`` that
    start at ``arc_start`` (..., 3) tangent to the unit ``direction`` and bend toward the unit ``bend``
    perpendicular to it."""
    angles = np.asarray(angles_rad, float)
    return (arc_start[..., None, :] + arc_radius_mm * np.sin(angles)[..., None] * direction[..., None, :]
            + arc_radius_mm * (1 - np.cos(angles))[..., None] * bend[..., None, :])


def max_arc_offset_mm(arc_radius_mm: float, max_angle_deg: float) -> float:
    """The farthest (mm) a tangent arc of ``arc_radius_mm`` sweeping at most ``max_angle_deg`` takes
    the tip from its introducer line: R (1 - cos(angle)), the angle capped at 180 deg."""
    return arc_radius_mm * (1 - np.cos(np.radians(min(max_angle_deg, 180.0))))


@dataclass(frozen=True)
class InstrumentPath:
    """A path (mm, model coordinates) as a polyline from start to tip plus its construction.

    ``vertices`` are the polyline corners (for a straight+arc path: start, arc start and the arc
    sampled every ``SAMPLE_STEP_MM`` or finer); ``radius_mm`` is the instrument radius; ``arc_start``
    and ``arc`` are set for curved-cannula paths.
    """

    vertices: np.ndarray
    radius_mm: float
    kind: str
    arc_start: np.ndarray | None = None
    arc: Arc | None = None

    @property
    def start(self) -> np.ndarray:
        return self.vertices[0]

    @property
    def tip(self) -> np.ndarray:
        return self.vertices[-1]

    @property
    def length(self) -> float:
        return float(np.linalg.norm(np.diff(self.vertices, axis=0), axis=1).sum())

    @property
    def tip_direction(self) -> np.ndarray:
        """Unit direction of travel at the tip."""
        return unit_vector(self.vertices[-1] - self.vertices[-2], "last path segment")

    def sample(self, step: float = SAMPLE_STEP_MM) -> "PathSamples":
        """Points along the path at most ``step`` mm apart (mm, model coordinates) with their depth
        (arc length from the start, mm) and the instrument radius. Every polyline corner is included."""
        seg = np.diff(self.vertices, axis=0)
        seg_len = np.linalg.norm(seg, axis=1)
        counts = np.maximum(1, np.ceil(seg_len / step).astype(int))
        idx = np.repeat(np.arange(len(seg)), counts)
        # each segment's sample k of c at fraction k / c
        t = (np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)) / counts[idx]
        points = self.vertices[idx] + seg[idx] * t[:, None]
        depth = np.concatenate([[0.0], np.cumsum(seg_len)])[idx] + seg_len[idx] * t
        return PathSamples(np.vstack([points, self.vertices[-1]]), np.append(depth, seg_len.sum()), self.radius_mm)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def straight(cls, start, tip, radius_mm: float) -> "InstrumentPath":
        """A straight instrument of ``radius_mm`` from ``start`` to ``tip`` (mm)."""
        start = as_point(start, "path start")
        tip = as_point(tip, "path tip")
        _check_radius(radius_mm)
        if np.linalg.norm(tip - start) < 1e-6:
            raise InputError("the path has zero length: start and tip coincide")
        return cls(np.vstack([start, tip]), float(radius_mm), "straight")

    @classmethod
    def straight_then_arc(cls, start, arc_start, bend_direction, arc_radius_mm: float, arc_angle_deg: float,
                          radius_mm: float, min_arc_radius_mm: float | None = None) -> "InstrumentPath":
        """A straight introducer of ``radius_mm`` from ``start`` to ``arc_start``, then a circular
        arc (curved cannula) of ``arc_radius_mm`` over ``arc_angle_deg`` bending toward
        ``bend_direction`` (its component perpendicular to the straight part is used).

        ``min_arc_radius_mm``: the tightest radius the device allows; a smaller arc radius is refused.
        """
        start = as_point(start, "path start")
        arc_start = as_point(arc_start, "arc start")
        bend = as_point(bend_direction, "bend direction")
        _check_radius(radius_mm)
        arc_radius = arc_radius_mm
        if not np.isfinite(arc_radius) or arc_radius <= 0:
            raise InputError(f"arc radius must be a positive number of mm, got {arc_radius}")
        if min_arc_radius_mm is not None and arc_radius < min_arc_radius_mm - 1e-9:
            raise InputError(f"arc radius {arc_radius:.1f} mm is tighter than the device allows "
                             f"({min_arc_radius_mm:.1f} mm)")
        if not np.isfinite(arc_angle_deg) or not 0 <= arc_angle_deg <= 180:
            raise InputError(f"arc angle must be 0-180 degrees, got {arc_angle_deg}")
        axis = unit_vector(arc_start - start, "straight part of the path")
        bend = bend - (bend @ axis) * axis
        bend = unit_vector(bend, "bend direction (parallel to the straight part)")
        n = max(2, int(np.ceil(np.radians(arc_angle_deg) * arc_radius / (SAMPLE_STEP_MM / 2))) + 1)
        theta = np.linspace(0.0, np.radians(arc_angle_deg), n)
        arc_pts = arc_points(arc_start, axis, bend, arc_radius, theta)
        vertices = np.vstack([start, arc_pts]) if arc_angle_deg > 0 else np.vstack([start, arc_start])
        return cls(vertices, float(radius_mm), "straight+arc", arc_start,
                   Arc(float(arc_radius), float(arc_angle_deg), bend))

    @classmethod
    def polyline(cls, points, radius_mm: float) -> "InstrumentPath":
        """A path of ``radius_mm`` through ``points`` (N x 3, mm) in order, start first, tip last."""
        pts = as_points(points, "path points")
        if len(pts) < 2:
            raise InputError(f"a path needs at least 2 points of 3 coordinates, got shape {pts.shape}")
        _check_radius(radius_mm)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-9])
        pts = pts[keep]
        if len(pts) < 2:
            raise InputError("the path has zero length: all its points coincide")
        return cls(pts, float(radius_mm), "straight" if len(pts) == 2 else "polyline")


def _check_radius(radius: float) -> None:
    if not np.isfinite(radius) or radius < 0:
        raise InputError(f"instrument radius must be a non-negative number of mm, got {radius}")
