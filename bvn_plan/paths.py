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
    """A circular arc of ``radius`` (mm) sweeping ``angle_deg``, starting tangent to the straight
    part and bending toward ``bend_direction`` (unit vector, perpendicular to the straight part)."""

    radius: float
    angle_deg: float
    bend_direction: np.ndarray


@dataclass(frozen=True)
class InstrumentPath:
    """A path (mm, model coordinates) as a polyline from start to tip plus its construction.

    ``vertices`` are the polyline corners (for a straight+arc path: start, arc start and the arc
    sampled every ``SAMPLE_STEP_MM`` or finer); ``radius`` is the instrument radius; ``arc_start``
    and ``arc`` are set for curved-cannula paths.
    """

    vertices: np.ndarray
    radius: float
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

    def sample(self, step: float = SAMPLE_STEP_MM) -> tuple[np.ndarray, np.ndarray]:
        """Points along the path at most ``step`` mm apart (mm, model coordinates) and their depth
        (arc length from the start, mm). Every polyline corner is included."""
        seg = np.diff(self.vertices, axis=0)
        seg_len = np.linalg.norm(seg, axis=1)
        counts = np.maximum(1, np.ceil(seg_len / step).astype(int))
        idx = np.repeat(np.arange(len(seg)), counts)
        # each segment's sample k of c at fraction k / c
        t = (np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)) / counts[idx]
        points = self.vertices[idx] + seg[idx] * t[:, None]
        depth = np.concatenate([[0.0], np.cumsum(seg_len)])[idx] + seg_len[idx] * t
        return np.vstack([points, self.vertices[-1]]), np.append(depth, seg_len.sum())

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def straight(cls, start, tip, radius: float) -> "InstrumentPath":
        """A straight instrument from ``start`` to ``tip`` (mm)."""
        start = as_point(start, "path start")
        tip = as_point(tip, "path tip")
        _check_radius(radius)
        if np.linalg.norm(tip - start) < 1e-6:
            raise InputError("the path has zero length: start and tip coincide")
        return cls(np.vstack([start, tip]), float(radius), "straight")

    @classmethod
    def straight_then_arc(cls, start, arc_start, bend_direction, arc_radius: float, arc_angle_deg: float,
                          radius: float, min_arc_radius: float | None = None) -> "InstrumentPath":
        """A straight introducer from ``start`` to ``arc_start``, then a circular arc (curved
        cannula) of ``arc_radius`` mm over ``arc_angle_deg`` degrees bending toward
        ``bend_direction`` (its component perpendicular to the straight part is used).

        ``min_arc_radius``: the tightest radius the device allows; a smaller ``arc_radius`` is
        refused.
        """
        start = as_point(start, "path start")
        arc_start = as_point(arc_start, "arc start")
        bend = as_point(bend_direction, "bend direction")
        _check_radius(radius)
        if not np.isfinite(arc_radius) or arc_radius <= 0:
            raise InputError(f"arc radius must be a positive number of mm, got {arc_radius}")
        if min_arc_radius is not None and arc_radius < min_arc_radius - 1e-9:
            raise InputError(f"arc radius {arc_radius:.1f} mm is tighter than the device allows "
                             f"({min_arc_radius:.1f} mm)")
        if not np.isfinite(arc_angle_deg) or not 0 <= arc_angle_deg <= 180:
            raise InputError(f"arc angle must be 0-180 degrees, got {arc_angle_deg}")
        axis = unit_vector(arc_start - start, "straight part of the path")
        bend = bend - (bend @ axis) * axis
        bend = unit_vector(bend, "bend direction (parallel to the straight part)")
        n = max(2, int(np.ceil(np.radians(arc_angle_deg) * arc_radius / (SAMPLE_STEP_MM / 2))) + 1)
        theta = np.linspace(0.0, np.radians(arc_angle_deg), n)
        arc_pts = (arc_start + arc_radius * np.sin(theta)[:, None] * axis
                   + arc_radius * (1 - np.cos(theta))[:, None] * bend)
        vertices = np.vstack([start, arc_pts]) if arc_angle_deg > 0 else np.vstack([start, arc_start])
        return cls(vertices, float(radius), "straight+arc", arc_start,
                   Arc(float(arc_radius), float(arc_angle_deg), bend))

    @classmethod
    def polyline(cls, points, radius: float) -> "InstrumentPath":
        """A path through ``points`` (N x 3, mm) in order, start first, tip last."""
        pts = as_points(points, "path points")
        if len(pts) < 2:
            raise InputError(f"a path needs at least 2 points of 3 coordinates, got shape {pts.shape}")
        _check_radius(radius)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-9])
        pts = pts[keep]
        if len(pts) < 2:
            raise InputError("the path has zero length: all its points coincide")
        return cls(pts, float(radius), "straight" if len(pts) == 2 else "polyline")


def _check_radius(radius: float) -> None:
    if not np.isfinite(radius) or radius < 0:
        raise InputError(f"instrument radius must be a non-negative number of mm, got {radius}")
