"""Pedicles: isthmus (narrowest cross-section), axis and junction with the vertebral body.

Works in the vertebra frame (x right, y anterior, z superior, mm). Coronal slices of the solid
voxel grid, walked from the posterior wall back to the lamina, show each pedicle as the bone
beside the canal; the slice where it is smallest is the isthmus, and the centroids of the
pedicle's slices near it give the axis. Width and height are the exact bone chords through
the isthmus centre, perpendicular to that axis (transverse and cranio-caudal).

A pedicle without a narrowing (the transverse process joins it over its whole height: L4, L5 and
smoothed surfaces) has no section to follow. Its axis is then the straight corridor of largest
clearance from the back of the pedicle into the body (the line an introducer would take, found on
the inside distance map), its isthmus the lowest section along that corridor, and its width the
narrowest transverse chord near the centre, so that the process is not counted as pedicle.

An S1 segment without its alae (a segmentation label of S1 alone, such as TotalSegmentator's
vertebrae_S1) has nothing joining its pedicles laterally and no narrowing either: its short, wide
pedicle grows taller toward the body, so the lowest section near the corridor's middle is its
rounded back end. Its isthmus is then the corridor's middle section itself and its width the
transverse chord through the centre (``lateral_mass=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..coordinates import SIDE_SIGNS
from ..geometry.crossings import interval_around, line_crossings
from ..geometry.vectors import cross3, perpendicular_part, unit_vector
from ..geometry.voxelize import VoxelGrid
from .canal import Lumen
from .frame import LocalVertebra

#: Width (mm) of the band beside the canal lumen whose bone is taken to be the pedicle.
PEDICLE_BAND_MM = 6.0
#: The pedicle's coronal sections are looked at only within this distance (mm) outwards from the
#: canal and this half-height around the pedicle's centre where it leaves the body, so that the
#: transverse and articular processes do not count [A: lumbar pedicles are 7-18 mm wide and
#: 13-15 mm high, docs/sources.md 'Morphometry'].
PEDICLE_BOX_WIDTH_MM = 20.0
PEDICLE_BOX_HALF_HEIGHT_MM = 10.0
#: Slices whose pedicle section is at most this multiple of the isthmus area are used to fit the
#: axis (further back the pedicle merges with the lamina and the processes) [A].
AXIS_AREA_RATIO = 1.5
#: Depth (mm) of the part of a pedicle without a narrowing over which its width is measured [A].
NO_NECK_DEPTH_MM = 6.0
#: The corridor of a pedicle without a narrowing runs from CORRIDOR_BACK_FRACTION of the way from
#: the back of the canal to the posterior wall, to CORRIDOR_FRONT_MM into the body; lines are
#: tried every CORRIDOR_STEP_DEG within the transverse and sagittal angle ranges (degrees, medial
#: and cranial positive; lumbar pedicle angles are about 10-30 and -5-20 degrees, docs/sources.md 'Morphometry'),
#: and the corridor is the clearance-weighted mean of all lines within CORRIDOR_NEAR_BEST_MM of
#: the best clearance (the best line alone is ill-defined: many lines are nearly as good) [A:
#: chosen on the VHM and TotalSegmentator meshes, which give mirror-image angles left and right].
CORRIDOR_BACK_FRACTION = 0.5
CORRIDOR_FRONT_MM = 10.0
CORRIDOR_TRANSVERSE_DEG = (-10.0, 55.0)
CORRIDOR_SAGITTAL_DEG = (-16.0, 24.0)
CORRIDOR_STEP_DEG = 3.0
CORRIDOR_NEAR_BEST_MM = 0.7
#: Corridor lines start at points of the middle section this deep in bone (mm), at most this far
#: (mm) outwards from the canal, sampled every CORRIDOR_POINT_STEP_MM.
CORRIDOR_MIN_DEPTH_MM = 2.0
CORRIDOR_MAX_OUTWARD_MM = 16.0
CORRIDOR_POINT_STEP_MM = 1.0
CORRIDOR_SAMPLES = 24
#: Bone this far (mm) beyond the corridor's ends is kept when its clearance map is computed, on
#: voxels of CORRIDOR_VOXEL_MM (the mean over near-best lines smooths their steps).
CORRIDOR_CROP_MARGIN_MM = 10.0
CORRIDOR_VOXEL_MM = 1.0
#: Without a narrowing the transverse process usually joins the pedicle at the height of its centre
#: (smoothed real surfaces: VHM L4/L5, TotalSegmentator L3-L5), so the transverse chord through the
#: centre runs out along the process. The width is then the narrowest transverse chord over the
#: central part of the section, within +-NO_NECK_WIDTH_BAND times the measured height of the centre
#: and +-NO_NECK_DEPTH_MM / 2 along the axis, sampled every NO_NECK_WIDTH_STEP_MM: a lower bound of
#: the bony width, i.e. conservative for fitting an introducer (an elliptic section reads up to 13%
#: narrow) [A: chosen on the VHM and TotalSegmentator meshes].
NO_NECK_WIDTH_BAND = 0.25
NO_NECK_WIDTH_STEP_MM = 1.0
#: The lowest section of such a pedicle: heights sampled every LOWEST_SECTION_STEP_MM along the
#: axis, and the sections within LOWEST_SECTION_TOLERANCE_MM of the lowest averaged [A].
LOWEST_SECTION_STEP_MM = 0.5
LOWEST_SECTION_TOLERANCE_MM = 0.5
#: Sliding the isthmus along the axis: how far either way (mm), and the half-size (mm) of the
#: section looked at [A: lumbar pedicles are at most ~18 mm wide].
ISTHMUS_SLIDE_MM = 5.0
ISTHMUS_WINDOW_MM = 12.0
SECTION_AXIS_RATIO = 1.5
SECTION_ITERATIONS = 4
#: Fewest slices needed to fit an axis through their centroids.
MIN_AXIS_SLICES = 4
#: Confidence of a pedicle without a visible narrowing (isthmus), found by its corridor of largest
#: clearance: its position and width are measured, its axis is an estimate [A].
NO_NECK_CONFIDENCE = 0.6
#: Pedicle faces: within this margin (mm) of the isthmus section's larger half-size around the axis.
PEDICLE_FACE_MARGIN_MM = 1.5
X_AXIS, Z_AXIS = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])


@dataclass
class PedicleFinding:
    """One pedicle in the vertebra frame (mm). ``side_sign`` +1 = right (+x), -1 = left."""

    side_sign: int
    isthmus_centre: np.ndarray
    axis: np.ndarray            # unit, posterior -> anterior (y > 0)
    width_mm: float
    height_mm: float
    body_junction: np.ndarray
    slices_used: int
    neck_found: bool            # False: no narrowing seen; the axis is the corridor of largest clearance


@dataclass
class Pedicles:
    """Both pedicles (vertebra frame, mm): the findings per side found ("right", "left"), the
    mesh faces of each, their morphometry (sided names, mm and degrees) and confidences."""

    found: dict[str, PedicleFinding]
    faces: dict[str, np.ndarray]
    morphometry: dict[str, float]
    confidence: dict[str, float]


def find_pedicles(vertebra: LocalVertebra, lumen: Lumen, lateral_mass: bool, notes: list[str]) -> Pedicles:
    """Both pedicles beside the canal ``lumen``, with a note in ``notes`` for each one missing or
    without a narrowing. ``lateral_mass``: as :func:`find_pedicle`."""
    centroids = vertebra.centroids
    found, faces, morph, confidence = {}, {}, {}, {}
    for side, sign in SIDE_SIGNS:
        p = find_pedicle(vertebra, lumen, sign, lateral_mass)
        if p is None:
            confidence[f"{side}_pedicle"] = 0.0
            notes.append(f"no {side} pedicle found")
            continue
        found[side] = p
        morph[f"pedicle_width_{side}_mm"] = p.width_mm
        morph[f"pedicle_height_{side}_mm"] = p.height_mm
        morph[f"pedicle_transverse_angle_{side}_deg"] = float(np.degrees(np.arctan2(-sign * p.axis[0], p.axis[1])))
        morph[f"pedicle_sagittal_angle_{side}_deg"] = float(np.degrees(np.arctan2(p.axis[2], p.axis[1])))
        radial = np.linalg.norm(perpendicular_part(centroids - p.isthmus_centre, p.axis), axis=1)
        faces[side] = np.nonzero((radial < max(p.width_mm, p.height_mm) / 2 + PEDICLE_FACE_MARGIN_MM)
                                 & (centroids[:, 1] < lumen.wall_y) & (centroids[:, 1] > lumen.y_range[0]))[0]
        confidence[f"{side}_pedicle"] = float(min(1.0, p.slices_used / 8)) if p.neck_found else NO_NECK_CONFIDENCE
        if not p.neck_found and not lateral_mass:
            notes.append(f"{side} pedicle: no narrowing (isthmus) found (a short S1 pedicle); its axis is "
                         "the corridor of largest clearance through it, its isthmus that corridor's "
                         "middle section, its width the transverse chord through its centre")
        elif not p.neck_found:
            notes.append(f"{side} pedicle: no narrowing (isthmus) found (a transverse process joins it); "
                         "its axis is the corridor of largest clearance through it, its width the "
                         "narrowest transverse chord near its centre")
    return Pedicles(found, faces, morph, confidence)


def find_pedicle(vertebra: LocalVertebra, lumen: Lumen, side_sign: int,
                 lateral_mass: bool = True) -> PedicleFinding | None:
    """The pedicle on one side (``side_sign`` +1 right, -1 left) of the canal ``lumen``, or
    ``None`` if none is found. The search runs from the back of the canal to the posterior wall.

    ``lateral_mass``: False when nothing joins the pedicle laterally (an S1 segment without its
    alae): a pedicle without a narrowing then keeps the corridor's middle section as its isthmus
    and the transverse chord through its centre as its width (module docstring).
    """
    grid, vertices, faces = vertebra.grid, vertebra.vertices, vertebra.faces
    y_range = (lumen.y_range[0], lumen.wall_y)
    xs, ys, zs = (grid.axis_coordinates(k) for k in range(3))
    edge = lumen.x_range[1] if side_sign > 0 else lumen.x_range[0]
    outward = (xs - edge) * side_sign
    band = (outward >= -0.5) & (outward <= PEDICLE_BAND_MM)
    lateral = outward >= -0.5
    lateral &= outward <= PEDICLE_BOX_WIDTH_MM
    slices = np.nonzero((ys >= y_range[0]) & (ys <= y_range[1]))[0][::-1]  # from the body backwards
    rows, z_centre = [], None
    for j in slices:
        section = grid.solid[:, j, :] & lateral[:, None]
        if z_centre is not None:
            section &= (np.abs(zs - z_centre) <= PEDICLE_BOX_HALF_HEIGHT_MM)[None, :]
        labels, count = ndimage.label(section)
        if count == 0:
            continue
        hits = np.bincount(labels[band].ravel(), minlength=count + 1)
        hits[0] = 0
        if hits.max() == 0:
            continue
        ix, iz = np.nonzero(labels == int(np.argmax(hits)))
        if z_centre is None:
            z_centre = zs[iz].mean()
            continue
        rows.append((len(ix), xs[ix].mean(), ys[j], zs[iz].mean()))
    if len(rows) < MIN_AXIS_SLICES:
        return None
    rows = np.array(rows)  # ordered from the body backwards
    k = int(np.argmin(rows[:, 0]))
    small = rows[:, 0] <= AXIS_AREA_RATIO * rows[k, 0]
    lo = hi = k
    while lo > 0 and small[lo - 1]:
        lo -= 1
    while hi < len(rows) - 1 and small[hi + 1]:
        hi += 1
    neck = hi - lo + 1 >= MIN_AXIS_SLICES and k < len(rows) - 1
    if not neck:
        # No narrowing before the search ran out (the pedicle merges with a transverse process,
        # or a coarse segmentation): follow the corridor of largest clearance instead.
        found = _largest_clearance_corridor(grid, edge, y_range, side_sign)
        if found is None:
            return None
        centre, axis = found
        if lateral_mass:
            centre = _lowest_section(vertices, faces, centre, axis)
        else:
            centre = _centred_on_height(vertices, faces, centre, axis)
        if centre is None:
            return None
        lo, hi = 0, len(rows) - 1
    else:
        centre, axis = refine_on_sections(grid, *_fit_axis(rows[lo:hi + 1, 1:4], rows[k, 1:4]))
    return measure_pedicle(vertebra, side_sign, centre, axis, y_range[1], hi - lo + 1,
                           neck, narrowest_width=not neck and lateral_mass)


def refine_on_sections(grid: VoxelGrid, centre: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(isthmus centre, unit axis) refined on sections of ``grid`` normal to the axis: the centroid of
    the narrowest section near ``centre``, the axis refitted through its neighbours' centroids; keeps
    the axis whose narrowest section is smallest (a section is smallest when it is perpendicular to
    the pedicle), over SECTION_ITERATIONS rounds."""
    best = (np.inf, centre, axis)
    for _ in range(SECTION_ITERATIONS):
        found = _narrowest_along(grid, centre, axis)
        if found is None:
            break
        area, section_centre, next_axis = found
        if area < best[0]:
            best = (area, section_centre, axis)
        centre, axis = section_centre, next_axis
    return best[1], best[2]


def measure_pedicle(vertebra: LocalVertebra, side_sign: int, centre: np.ndarray, axis: np.ndarray, wall_y: float,
                    slices_used: int, neck: bool, narrowest_width: bool) -> PedicleFinding | None:
    """The pedicle with isthmus ``centre`` and unit ``axis`` (vertebra frame, mm) measured: width and
    height as the exact bone chords through the centre (the narrowest transverse chord near it when
    ``narrowest_width``: a transverse process joins the pedicle), the body junction where the axis
    reaches the posterior wall ``wall_y``; ``None`` when the centre is not in bone."""
    vertices, faces = vertebra.vertices, vertebra.faces
    width = _chord(vertices, faces, centre, _perpendicular(X_AXIS, axis))
    height = _chord(vertices, faces, centre, _perpendicular(Z_AXIS, axis))
    if width is None or height is None:
        return None
    if narrowest_width:
        width = _narrowest_width(vertices, faces, centre, axis, width, height)
    junction = centre + axis * ((wall_y - centre[1]) / axis[1])
    return PedicleFinding(side_sign, centre, axis, width, height, junction, slices_used, neck)


def _fit_axis(centres: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line through section centroids: (its point nearest ``near``, unit direction with y > 0)."""
    mean = centres.mean(axis=0)
    _, _, vt = np.linalg.svd(centres - mean)
    axis = vt[0] * np.sign(vt[0][1] or 1.0)
    return mean + ((near - mean) @ axis) * axis, axis


def _largest_clearance_corridor(grid: VoxelGrid, edge: float, y_range: tuple[float, float],
                                side_sign: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The straight corridor of largest clearance through one pedicle (CORRIDOR_* above).

    ``edge``: x (mm) of the canal lumen's edge on that side; ``y_range``: (back of the canal,
    posterior wall) y (mm). Returns (a point of the corridor's middle section, unit axis with
    y > 0) in the vertebra frame (mm), or ``None`` when no line runs through bone."""
    back, wall = y_range
    y0, y1 = back + CORRIDOR_BACK_FRACTION * (wall - back), wall + CORRIDOR_FRONT_MM
    y_mid = (y0 + wall) / 2
    xs, ys = grid.axis_coordinates(0), grid.axis_coordinates(1)
    ix = np.nonzero(xs * side_sign >= -CORRIDOR_CROP_MARGIN_MM)[0]
    iy = np.nonzero((ys >= y0 - CORRIDOR_CROP_MARGIN_MM) & (ys <= y1 + CORRIDOR_CROP_MARGIN_MM))[0]
    if len(ix) < 2 or len(iy) < 2:
        return None
    step = max(1, int(round(CORRIDOR_VOXEL_MM / grid.spacing)))
    spacing = step * grid.spacing
    crop = (slice(ix[0], ix[-1] + 1, step), slice(iy[0], iy[-1] + 1, step), slice(None, None, step))
    depth = ndimage.distance_transform_edt(grid.solid[crop]) * spacing
    origin = grid.origin + np.array([ix[0], iy[0], 0]) * grid.spacing

    def clearance_at(points):
        index = ((points.reshape(-1, 3) - origin) / spacing).T
        return ndimage.map_coordinates(depth, index, order=1, cval=0.0).reshape(points.shape[:-1])

    # Start points: the middle section's bone beside the canal, deep enough to hold a line.
    x = edge + side_sign * np.arange(0.0, CORRIDOR_MAX_OUTWARD_MM + 1e-9, CORRIDOR_POINT_STEP_MM)
    z = np.arange(grid.origin[2], grid.axis_coordinates(2)[-1], CORRIDOR_POINT_STEP_MM)
    gx, gz = np.meshgrid(x, z, indexing="ij")
    starts = np.column_stack([gx.ravel(), np.full(gx.size, y_mid), gz.ravel()])
    depth_at_start = clearance_at(starts)
    keep = depth_at_start >= CORRIDOR_MIN_DEPTH_MM
    starts, depth_at_start = starts[keep], depth_at_start[keep]
    if len(starts) == 0:
        return None
    order = np.argsort(-depth_at_start)  # deepest first: no line is deeper than its start point
    starts, depth_at_start = starts[order], depth_at_start[order]
    transverse = np.radians(np.arange(*CORRIDOR_TRANSVERSE_DEG, CORRIDOR_STEP_DEG))
    sagittal = np.radians(np.arange(*CORRIDOR_SAGITTAL_DEG, CORRIDOR_STEP_DEG))
    t, f = (a.ravel() for a in np.meshgrid(transverse, sagittal, indexing="ij"))
    # Directions per unit of y: medial (towards -side) going anteriorly for a positive angle.
    slopes = np.column_stack([-side_sign * np.tan(t), np.ones_like(t), np.tan(f)])
    offsets = np.linspace(y0 - y_mid, y1 - y_mid, CORRIDOR_SAMPLES)
    clear = np.zeros((len(starts), len(slopes)))
    for k in range(0, len(starts), 64):  # in chunks, to bound memory
        if depth_at_start[k] <= clear.max() - CORRIDOR_NEAR_BEST_MM:
            break  # no line from here on can come within CORRIDOR_NEAR_BEST_MM of the best
        points = (starts[k:k + 64, None, None, :]
                  + offsets[None, None, :, None] * slopes[None, :, None, :])
        clear[k:k + 64] = clearance_at(points).min(axis=2)
    if clear.max() <= 0:
        return None
    floor = clear.max() - CORRIDOR_NEAR_BEST_MM
    i, j = np.nonzero(clear > floor)
    weight = clear[i, j] - floor
    centre = (starts[i] * weight[:, None]).sum(axis=0) / weight.sum()
    slope = (slopes[j] * weight[:, None]).sum(axis=0) / weight.sum()
    return centre, slope / np.linalg.norm(slope)


def _lowest_section(vertices, faces, centre, axis):
    """The middle of the pedicle's lowest sections within +-NO_NECK_DEPTH_MM / 2 of ``centre`` along
    ``axis`` (those within LOWEST_SECTION_TOLERANCE_MM of the lowest, sampled every
    LOWEST_SECTION_STEP_MM: a flat run of heights has no single lowest point), centred
    cranio-caudally on its chord; ``None`` if the axis leaves bone."""
    up = _perpendicular(Z_AXIS, axis)
    # Only faces reaching the band the vertical chords run in can be crossed by them.
    faces = _faces_in_slab(vertices, faces, centre, axis, NO_NECK_DEPTH_MM / 2)
    heights = {}
    for t in np.arange(-NO_NECK_DEPTH_MM / 2, NO_NECK_DEPTH_MM / 2 + 1e-9, LOWEST_SECTION_STEP_MM):
        height = _chord(vertices, faces, centre + t * axis, up)
        if height is not None:
            heights[t] = height
    if not heights:
        return None
    lowest = min(heights.values())
    t = float(np.mean([t for t, h in heights.items() if h <= lowest + LOWEST_SECTION_TOLERANCE_MM]))
    return _centred_on_height(vertices, faces, centre + t * axis, axis)


def _centred_on_height(vertices, faces, point, axis):
    """``point`` moved cranio-caudally (normal to ``axis``) to the middle of its bone chord (mm,
    vertebra frame); ``None`` if ``point`` is not in bone."""
    up = _perpendicular(Z_AXIS, axis)
    span = _span(vertices, faces, point, up)
    return None if span is None else point + up * (span[0] + span[1]) / 2


def _narrowest_along(grid: VoxelGrid, centre: np.ndarray, axis: np.ndarray):
    """Sections of the voxel grid normal to ``axis`` within +-ISTHMUS_SLIDE_MM of ``centre``,
    compared by the area of the bone piece around the axis.

    Returns (smallest area in voxels, centroid of that section, refitted axis): the axis through
    the centroids of the neighbouring sections at most SECTION_AXIS_RATIO times as large (the
    given axis when there are too few). ``None`` when no section holds bone at the axis."""
    step = grid.spacing
    u = _perpendicular(X_AXIS, axis)
    v = cross3(axis, u)
    offsets = np.arange(-ISTHMUS_SLIDE_MM, ISTHMUS_SLIDE_MM + step / 2, step)
    s = np.arange(-ISTHMUS_WINDOW_MM, ISTHMUS_WINDOW_MM + step / 2, step)
    points = (centre + offsets[:, None, None, None] * axis + s[None, :, None, None] * u
              + s[None, None, :, None] * v)
    index = ((points - grid.origin) / grid.spacing).reshape(-1, 3).T
    sections = ndimage.map_coordinates(grid.solid.view(np.uint8), index, order=0, mode="constant", cval=0)
    sections = sections.reshape(len(offsets), len(s), len(s)).astype(bool)
    middle = len(s) // 2
    areas, centroids = np.full(len(offsets), np.inf), np.tile(centre, (len(offsets), 1))
    for k, section in enumerate(sections):
        labels, _ = ndimage.label(section)
        if labels[middle, middle]:
            iu, iv = np.nonzero(labels == labels[middle, middle])
            areas[k] = len(iu)
            centroids[k] = centre + offsets[k] * axis + s[iu].mean() * u + s[iv].mean() * v
    k = int(np.argmin(areas))
    if not np.isfinite(areas[k]):
        return None
    small = areas <= SECTION_AXIS_RATIO * areas[k]
    lo = hi = k
    while lo > 0 and small[lo - 1]:
        lo -= 1
    while hi < len(areas) - 1 and small[hi + 1]:
        hi += 1
    new_axis = _fit_axis(centroids[lo:hi + 1], centroids[k])[1] if hi - lo + 1 >= MIN_AXIS_SLICES else axis
    return areas[k], centroids[k], new_axis


def _narrowest_width(vertices, faces, centre, axis, width, height) -> float:
    """Narrowest transverse chord (mm) of a pedicle without a narrowing, over the central part of its
    section near ``centre`` (NO_NECK_WIDTH_* above), no wider than ``width`` (the chord through the centre)."""
    across = _perpendicular(X_AXIS, axis)
    up = _perpendicular(Z_AXIS, axis)
    half, band = NO_NECK_DEPTH_MM / 2, NO_NECK_WIDTH_BAND * height
    # Only triangles reaching into the slab the chords run in can be crossed by them (the slab is
    # bounded along the axis and along the normal to the axis and the chords).
    normal = cross3(axis, across)
    faces = _faces_in_slab(vertices, faces, centre, axis, half)
    faces = _faces_in_slab(vertices, faces, centre, normal, band * abs(up @ normal))
    for t in np.arange(-half, half + 1e-9, NO_NECK_WIDTH_STEP_MM):
        for v in np.linspace(-band, band, 5):
            chord = _chord(vertices, faces, centre + t * axis + v * up, across)
            if chord is not None:
                width = min(width, chord)
    return width


def _faces_in_slab(vertices, faces, centre, direction, half) -> np.ndarray:
    """The faces reaching the slab within ``half`` (mm, plus 1e-6) of ``centre`` along the unit
    ``direction``: the only ones a line lying in that slab can cross."""
    along = (vertices[faces] - centre) @ direction
    half = half + 1e-6
    return faces[(along.max(axis=1) >= -half) & (along.min(axis=1) <= half)]


def _perpendicular(direction: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The unit part of ``direction`` perpendicular to the unit ``axis``."""
    return unit_vector(perpendicular_part(direction, axis))


def _span(vertices, faces, centre, direction):
    """The bone chord through ``centre`` along ``direction`` as (start, end) parameters (mm from
    ``centre``, exact mesh crossings), or ``None`` when ``centre`` is not in bone."""
    span = interval_around(line_crossings(vertices, faces, centre, direction), 0.0)
    return None if span is None or not span[0] <= 0 <= span[1] else span


def _chord(vertices, faces, centre, direction):
    """Length (mm) of the bone chord through ``centre`` along ``direction`` (exact mesh crossings)."""
    span = _span(vertices, faces, centre, direction)
    return None if span is None else float(span[1] - span[0])
