"""Exact crossings of a straight line with a closed triangle surface (vectorised, no ray index).

Coordinates in any frame, mm. Used for chords through the vertebra: body depth and height on the
mid-sagittal line, pedicle width and height through the isthmus.
"""

from __future__ import annotations

import numpy as np

from .vectors import perpendicular_basis


def line_crossings(vertices: np.ndarray, faces: np.ndarray, point: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Sorted parameters t where the line ``point + t * direction`` crosses the surface (mm)."""
    tri = vertices[faces]
    a, b = perpendicular_basis(direction)
    p = np.stack([(tri - point) @ a, (tri - point) @ b], axis=-1)  # triangle corners seen along the line
    d = np.einsum("ijk,k->ij", tri - point, direction)
    s0, s1, s2 = p[:, 0], p[:, 1], p[:, 2]
    c0 = s1[:, 0] * s2[:, 1] - s2[:, 0] * s1[:, 1]
    c1 = s2[:, 0] * s0[:, 1] - s0[:, 0] * s2[:, 1]
    c2 = s0[:, 0] * s1[:, 1] - s1[:, 0] * s0[:, 1]
    total = c0 + c1 + c2
    inside = (np.abs(total) > 1e-12) & (np.sign(c0) == np.sign(total)) & (np.sign(c1) == np.sign(total)) & (
        np.sign(c2) == np.sign(total))
    w = np.stack([c0, c1, c2], axis=1)[inside] / total[inside, None]
    return np.sort((w * d[inside]).sum(axis=1))


def interval_around(t: np.ndarray, t0: float):
    """The inside interval (pair of consecutive crossings, even-odd) containing ``t0``, else the nearest one."""
    t = np.unique(np.round(t, 9))
    if len(t) < 2 or len(t) % 2:
        return None
    pairs = t.reshape(-1, 2)
    containing = (pairs[:, 0] <= t0) & (pairs[:, 1] >= t0)
    if containing.any():
        return tuple(pairs[np.argmax(containing)])
    dist = np.minimum(np.abs(pairs[:, 0] - t0), np.abs(pairs[:, 1] - t0))
    return tuple(pairs[int(np.argmin(dist))])


def gap_around(t: np.ndarray, t0: float):
    """The outside interval (between the last crossing before ``t0`` and the first after it)
    containing ``t0``; ``None`` if the line is not closed on both sides."""
    t = np.unique(np.round(t, 9))
    before, after = t[t < t0], t[t > t0]
    if len(before) == 0 or len(after) == 0 or len(before) % 2:
        return None
    return float(before[-1]), float(after[0])
