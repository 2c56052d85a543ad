"""A vertebra with known answers for the safety tests: a box 'body' and a box 'canal' (mm)."""

import numpy as np
import trimesh

from bvn_plan.coordinates import AnatomicalFrame
from bvn_plan.landmarks import Landmarks, Pedicle, Plane
from bvn_plan.planning import SafetyZones


def box(lo, hi, size=2.0):
    b = trimesh.creation.box(bounds=[lo, hi])
    v, f = trimesh.remesh.subdivide_to_size(b.vertices, b.faces, size)
    return trimesh.Trimesh(v, f)


def box_safety_zones(rotation=np.eye(3), shift=np.zeros(3)) -> SafetyZones:
    """A box 'body' (x -20..20 right, y -15..15 anterior, z -13..13 superior) with a box canal
    behind it, all moved by ``x -> rotation @ x + shift`` (mm)."""
    move = lambda p: np.asarray(p, float) @ rotation.T + shift  # noqa: E731
    turn = lambda d: np.asarray(d, float) @ rotation.T  # noqa: E731
    bone = box([-20, -15, -13], [20, 15, 13])
    canal = box([-10, -33, -13], [10, -16, 13])
    n = bone.face_normals
    regions = {
        "superior_endplate": np.flatnonzero(n[:, 2] > 0.9),
        "inferior_endplate": np.flatnonzero(n[:, 2] < -0.9),
        "anterior_cortex": np.flatnonzero(n[:, 1] > 0.9),
        "lateral_cortex": np.flatnonzero(np.abs(n[:, 0]) > 0.9),
        "posterior_wall": np.flatnonzero(n[:, 1] < -0.9),
    }
    bone.vertices = move(bone.vertices)
    canal.vertices = move(canal.vertices)
    pedicles = {side: Pedicle(side, move([x, -14.0, 3.0]), turn([0, 1.0, 0]), 8.0, 14.0, move([x, -15.0, 3.0]))
                for side, x in (("right", 12.0), ("left", -12.0))}
    frame = AnatomicalFrame(move([0, 0, 0]), *turn(np.eye(3)))
    landmarks = Landmarks(
        "L4", frame, Plane(move([0, 0, 0]), turn([1.0, 0, 0])),
        Plane(move([0, 0, 13.0]), turn([0, 0, 1.0])), Plane(move([0, 0, -13.0]), turn([0, 0, -1.0])),
        np.zeros((0, 3)), move([0, -24.5, 0]), pedicles, move([0, -15.0, 0]), move([0, -4.0, 0]),
        canal_mesh=canal, face_regions=regions)
    return SafetyZones(bone, landmarks)
