"""Validated points and directions: user-given coordinates become float arrays, or an InputError
that names what was wrong. Any frame; points in mm."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def as_points(points, what: str = "points") -> np.ndarray:
    """``points`` as a float (N, 3) array (a single point becomes (1, 3)); InputError otherwise."""
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numbers (mm): {exc}") from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{what} must be an (N, 3) array of mm coordinates, got shape {np.shape(points)}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} contain NaN or infinite coordinates")
    return arr


def as_point(point, what: str = "point") -> np.ndarray:
    """One point (3,) in mm; InputError if it is not exactly one finite 3-vector."""
    arr = as_points(point, what)
    if len(arr) != 1:
        raise InputError(f"{what} must be one point (3 coordinates in mm), got {len(arr)}")
    return arr[0]


def unit_vector(vector, what: str = "direction") -> np.ndarray:
    """``vector`` normalised to length 1; InputError if it is not a finite 3-vector of non-zero length."""
    v = as_point(vector, what)
    norm = float(np.linalg.norm(v))
    if norm < 1e-9:
        raise InputError(f"{what} has zero length")
    return v / norm
