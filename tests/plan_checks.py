"""Checks shared by the plan-file tests: a reloaded plan holds the landmarks and paths that wrote it."""

import dataclasses

import numpy as np

#: Landmark points survive the plan file to this (mm): JSON keeps every float64 digit, so only a
#: unit conversion's rounding remains.
LANDMARK_TOLERANCE_MM = 1e-6
#: Path points are written rounded to 6 decimals of the input's units (1e-5 mm in cm).
PATH_TOLERANCE_MM = 1e-4


def _arrays(value, prefix=""):
    """Every numeric leaf of a landmarks part as (name, array)."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _arrays(getattr(value, f.name), f"{prefix}{f.name}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays(item, f"{prefix}{key}.")
    elif isinstance(value, (np.ndarray, float, int)) and not isinstance(value, bool):
        yield prefix.rstrip("."), np.asarray(value, float)


def assert_same_landmarks(reloaded, written):
    """Every field of two Landmarks agrees: points within LANDMARK_TOLERANCE_MM, the rest exactly,
    and the canal and body meshes and face regions to the vertex. The level fit (``identity``) is
    not written (its verdict is in the notes)."""
    skip = ("canal_mesh", "body_mesh", "face_regions", "identity")
    left = {f.name: getattr(reloaded, f.name) for f in dataclasses.fields(reloaded) if f.name not in skip}
    right = {f.name: getattr(written, f.name) for f in dataclasses.fields(written) if f.name not in skip}
    assert [k for k, _ in _arrays(left)] == [k for k, _ in _arrays(right)]
    for (name, a), (_, b) in zip(_arrays(left), _arrays(right)):
        assert a.shape == b.shape and np.allclose(a, b, rtol=0, atol=LANDMARK_TOLERANCE_MM, equal_nan=True), name
    assert (reloaded.level, reloaded.notes, reloaded.terminus) == (written.level, written.notes, written.terminus)
    assert reloaded.frame.handedness_known == written.frame.handedness_known
    for name in ("canal_mesh", "body_mesh"):
        a, b = getattr(reloaded, name), getattr(written, name)
        np.testing.assert_array_equal(a.faces, b.faces)
        np.testing.assert_allclose(a.vertices, b.vertices, rtol=0, atol=LANDMARK_TOLERANCE_MM)
    assert list(reloaded.face_regions) == list(written.face_regions)
    for name, faces in written.face_regions.items():
        np.testing.assert_array_equal(reloaded.face_regions[name], faces)


def assert_same_paths(loaded, level_plan):
    """The reloaded options are the level plan's planned paths: entry, arc start, tip, verdict (mm)."""
    planned = {(r.approach, r.side): r.plan for r in level_plan.results if r.plan is not None}
    assert {(o.approach, o.side) for o in loaded.options} == set(planned)
    for option in loaded.options:
        plan = planned[option.approach, option.side]
        assert option.verdict == plan.verdict
        np.testing.assert_allclose(option.entry, plan.path.start, rtol=0, atol=PATH_TOLERANCE_MM)
        np.testing.assert_allclose(option.tip, plan.path.tip, rtol=0, atol=PATH_TOLERANCE_MM)
        assert (option.arc_start is None) == (plan.path.arc_start is None)
        if option.arc_start is not None:
            np.testing.assert_allclose(option.arc_start, plan.path.arc_start, rtol=0, atol=PATH_TOLERANCE_MM)
