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


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors (or (N, 3) rows), term for term: the same values without its
    generic set-up (tens of microseconds, more than mapping a lesion's 642 surface samples)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def perpendicular_basis(axis: np.ndarray, reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors ``e1 = axis x reference`` (normalised) and ``e2 = axis x e1`` that complete the
    unit ``axis`` ((3,) or (N, 3)) to a right-handed orthonormal basis (axis, e1, e2 cyclic: e1 x e2 = axis).
    ``reference`` defaults to the x axis, or the y axis where the axis lies within ~25 deg of x."""
    axis = np.asarray(axis, float)
    if reference is None:
        reference = np.where(np.abs(axis[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    e1 = cross3(axis, reference)
    e1 = e1 / np.linalg.norm(e1, axis=-1, keepdims=True)
    return e1, cross3(axis, e1)


def perpendicular_part(vector: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The part of ``vector`` ((3,) or (N, 3)) perpendicular to the unit ``axis``, not normalised."""
    vector = np.asarray(vector, float)
    return vector - np.sum(vector * axis, axis=-1, keepdims=True) * axis
