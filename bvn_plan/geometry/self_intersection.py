"""Where a closed surface crosses itself: pairs of faces that intersect without sharing a vertex.

Works in any frame and unit (the mesh's own). Candidate pairs are faces whose bounding boxes
overlap (an r-tree); a pair intersects when an edge of one face passes through the other (exact
segment-triangle tests, vectorised). Touching or coplanar overlaps
are not reported.
"""

from __future__ import annotations

import numpy as np
import trimesh

#: Candidate pairs are tested in chunks of this many, to bound memory on dense meshes.
CHUNK_PAIRS = 200_000


def self_intersections(mesh: trimesh.Trimesh) -> np.ndarray:
    """Pairs of face indices (K, 2) of ``mesh`` that cross each other and share no vertex."""
    triangles = mesh.triangles
    # Candidate pairs: faces whose bounding boxes overlap (the mesh's r-tree of face boxes).
    ids, counts = mesh.triangles_tree.intersection_v(triangles.min(axis=1), triangles.max(axis=1))
    pairs = np.column_stack([np.repeat(np.arange(len(triangles)), counts.astype(np.int64)), ids.astype(np.int64)])
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    faces = mesh.faces
    shared = (faces[pairs[:, 0]][:, :, None] == faces[pairs[:, 1]][:, None, :]).any(axis=(1, 2))
    pairs = pairs[~shared]
    found = [pairs[k:k + CHUNK_PAIRS][_cross(triangles[pairs[k:k + CHUNK_PAIRS, 0]],
                                            triangles[pairs[k:k + CHUNK_PAIRS, 1]])]
             for k in range(0, len(pairs), CHUNK_PAIRS)]
    return np.vstack(found) if found else np.zeros((0, 2), int)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For triangles ``a`` and ``b`` (N, 3, 3): whether an edge of either passes through the other."""
    hit = np.zeros(len(a), bool)
    for first, second in ((a, b), (b, a)):
        for i in range(3):
            hit |= _segment_hits_triangle(first[:, i], first[:, (i + 1) % 3], second)
    return hit


def _segment_hits_triangle(p: np.ndarray, q: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Whether segments ``p``-``q`` (N, 3) pass through the interiors of triangles ``tri`` (N, 3, 3)
    (Moller-Trumbore, strict inequalities: touching does not count)."""
    d = q - p
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = p - tri[:, 0]
    u = inv * np.einsum("ij,ij->i", s, h)
    qv = np.cross(s, e1)
    v = inv * np.einsum("ij,ij->i", d, qv)
    t = inv * np.einsum("ij,ij->i", e2, qv)
    eps = 1e-9
    return ok & (u > eps) & (v > eps) & (u + v < 1 - eps) & (t > eps) & (t < 1 - eps)
