"""Screen-space annotations drawn on a rendered picture (pixels, row 0 at the top): named points
with labels that never overlap (each label a box placed in the image and joined to its point by a
leader line), an orientation marker (R/L, A/P, S/I) and a scale bar.

The same overlay serves the 3D scene (:mod:`bvn_plan.viz.scene`) and the simulated fluoroscopy
(:mod:`bvn_plan.viz.fluoro`): the caller gives where each point shows (pixels), how the patient's
axes show on screen and the millimetres per pixel. Drawing uses Pillow (a matplotlib dependency).

Labels are placed greedily in the order given (the most important first): for each, the candidate
box nearest its point (LABEL_RADII_PX x LABEL_DIRECTIONS around it) that stays inside the picture,
keeps LABEL_GAP_PX from every box already placed, from every ``keep_out`` box (captions, colour bar,
marker, scale bar) and from every labelled point, and covers the fewest drawn (non-background)
pixels; when no such candidate exists, a scan of the whole picture. A label that fits nowhere is
left out and named in the picture's bottom line rather than drawn over another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: Label text size (pixels), padding inside the box and the least gap between boxes (pixels).
LABEL_FONT_PX = 15
LABEL_PAD_PX = 4
LABEL_GAP_PX = 6
#: Label box fill and border (RGB). The fill is a colour no rendering of the scene produces, so a
#: test can find the boxes in the picture.
LABEL_FILL = (255, 255, 222)
LABEL_BORDER = (40, 40, 40)
LEADER_COLOUR = (40, 40, 40)
#: Radius (pixels) of the dot drawn on each labelled point in its marker colour (drawn on top, so
#: its colour is never tinted by translucent surfaces in front of it).
DOT_RADIUS_PX = 5
#: Candidate distances (pixels) from the point to the box and number of directions tried.
LABEL_RADII_PX = (24, 40, 64, 96, 140, 200)
LABEL_DIRECTIONS = 16
#: Weight of covering drawn pixels against the distance from the point (pixels per covered fraction).
LABEL_COVER_COST_PX = 120.0
#: Orientation marker: arm length (pixels) and the colours of the patient's axes (RAS: right red,
#: anterior green, superior blue, as in 3D Slicer).
MARKER_ARM_PX = 34
AXIS_COLOURS = {"R": (200, 30, 30), "A": (20, 150, 40), "S": (30, 70, 210)}
AXIS_LETTERS = {"R": "L", "A": "P", "S": "I"}  # the opposite end of each axis
#: Scale bar: the bar is the largest 1, 2 or 5 x 10^k mm not longer than this fraction of the width.
SCALE_BAR_FRACTION = 0.2
SCALE_BAR_HEIGHT_PX = 6
SCALE_BAR_COLOUR = (0, 0, 0)
#: Margin (pixels) of the marker and scale bar from the picture's edges.
CORNER_MARGIN_PX = 10


@dataclass(frozen=True)
class PointLabel:
    """A named point of the picture: ``text``, where it shows (``pixel``: row, column) and its
    marker ``colour`` (RGB or hex)."""

    text: str
    pixel: tuple[float, float]
    colour: object = (255, 255, 255)


@dataclass(frozen=True)
class Overlay:
    """What to draw on a picture: point ``labels``; ``axes``: the screen direction (row, column,
    toward the viewer) of the patient's unit right, anterior and superior vectors (keys "R", "A",
    "S"); ``mm_per_px``: true millimetres per pixel (the scale bar), None for none; ``keep_out``:
    boxes (row0, col0, row1, col1) labels must avoid."""

    labels: Sequence[PointLabel] = ()
    axes: dict | None = None
    mm_per_px: float | None = None
    keep_out: Sequence[tuple[int, int, int, int]] = field(default_factory=list)


def annotate(image: np.ndarray, overlay: Overlay) -> np.ndarray:
    """The picture (H x W x 3 uint8) with the overlay drawn on it (a new array)."""
    from PIL import Image, ImageDraw  # Pillow: only when a picture is drawn

    picture = Image.fromarray(np.ascontiguousarray(image[:, :, :3]))
    draw = ImageDraw.Draw(picture)
    height, width = image.shape[:2]
    keep_out = list(overlay.keep_out)
    if overlay.axes is not None:
        keep_out.append(_draw_marker(draw, overlay.axes, (CORNER_MARGIN_PX, width - CORNER_MARGIN_PX)))
    if overlay.mm_per_px:
        keep_out.append(_draw_scale_bar(draw, overlay.mm_per_px, width, (height - CORNER_MARGIN_PX,
                                                                        width - CORNER_MARGIN_PX)))
    _draw_labels(draw, image, overlay.labels, keep_out)
    return np.asarray(picture)


def scale_bar_mm(mm_per_px: float, width_px: int) -> float:
    """Length (mm) of the scale bar: the largest 1, 2 or 5 x 10^k mm that fits in
    SCALE_BAR_FRACTION of ``width_px`` pixels of ``mm_per_px``."""
    longest = SCALE_BAR_FRACTION * width_px * mm_per_px
    exponent = np.floor(np.log10(longest))
    steps = [s * 10.0 ** e for e in (exponent - 1, exponent) for s in (1, 2, 5)]
    return max(s for s in steps if s <= longest)


def _font(size: int = LABEL_FONT_PX):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _text_size(draw, text: str, font) -> tuple[int, int]:
    """(rows, columns) of a text's box including padding."""
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    return bottom + 2 * LABEL_PAD_PX, right - min(left, 0) + 2 * LABEL_PAD_PX


def _draw_marker(draw, axes: dict, corner: tuple[int, int]) -> tuple[int, int, int, int]:
    """The orientation marker below and left of ``corner`` (top-right point): each patient axis a
    line in its colour, foreshortened as the view shows it, with its two letters at its ends; an
    axis within 17 degrees of the line of sight is a ring with the letter of the end facing the
    viewer. ``axes`` hold unit vectors (row, column, toward the viewer). Returns its box."""
    font = _font(LABEL_FONT_PX)
    reach = MARKER_ARM_PX + 14
    centre = np.array([corner[0] + reach, corner[1] - reach], float)
    box = (corner[0], corner[1] - 2 * reach, corner[0] + 2 * reach, corner[1])
    draw.rectangle([box[1], box[0], box[3], box[2]], fill=(255, 255, 255), outline=(150, 150, 150))
    for positive, colour in AXIS_COLOURS.items():
        row, col, toward = (float(v) for v in axes[positive])
        flat = np.array([row, col])
        length = np.linalg.norm(flat)
        if length < 0.3:  # along the line of sight
            letter = positive if toward > 0 else AXIS_LETTERS[positive]
            r = 7
            draw.ellipse([centre[1] - r, centre[0] - r, centre[1] + r, centre[0] + r], outline=colour, width=2)
            draw.text((centre[1] + r + 2, centre[0] + r - 2), letter, fill=colour, font=font, anchor="lt")
            continue
        tip = centre + MARKER_ARM_PX * flat  # foreshortened as the view shows it
        tail = centre - MARKER_ARM_PX * flat
        draw.line([tail[1], tail[0], tip[1], tip[0]], fill=colour, width=3)
        for end, letter in ((tip, positive), (tail, AXIS_LETTERS[positive])):
            at = end + 9 * (end - centre) / np.linalg.norm(end - centre)
            draw.text((at[1], at[0]), letter, fill=colour, font=font, anchor="mm")
    return box


def _draw_scale_bar(draw, mm_per_px: float, width_px: int, corner: tuple[int, int]) -> tuple[int, int, int, int]:
    """The scale bar (for a picture ``width_px`` wide) above and left of ``corner`` (bottom-right
    point) on a white box with its length in mm. Returns its box."""
    length_mm = scale_bar_mm(mm_per_px, width_px)
    length_px = int(round(length_mm / mm_per_px))
    font = _font(LABEL_FONT_PX)
    text = f"{length_mm:g} mm"
    rows, cols = _text_size(draw, text, font)
    box_w = max(length_px, cols) + 2 * LABEL_PAD_PX
    box = (corner[0] - rows - SCALE_BAR_HEIGHT_PX - 3 * LABEL_PAD_PX, corner[1] - box_w, corner[0], corner[1])
    draw.rectangle([box[1], box[0], box[3], box[2]], fill=(255, 255, 255), outline=(150, 150, 150))
    bar_left = box[3] - LABEL_PAD_PX - length_px
    bar_bottom = box[2] - LABEL_PAD_PX
    draw.rectangle([bar_left, bar_bottom - SCALE_BAR_HEIGHT_PX + 1, bar_left + length_px - 1, bar_bottom],
                   fill=SCALE_BAR_COLOUR)
    draw.text(((box[1] + box[3]) / 2, box[0] + LABEL_PAD_PX), text, fill=(0, 0, 0), font=font, anchor="mt")
    return box


def _draw_labels(draw, image: np.ndarray, labels: Sequence[PointLabel], keep_out: list) -> None:
    """Place (see the module docstring) and draw the labels: leader lines first, then the boxes,
    then the dots on the points."""
    if not labels:
        return
    font = _font()
    drawn = np.any(np.asarray(image[:, :, :3]) < 245, axis=2)
    covered = np.pad(drawn.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
    anchors = np.array([label.pixel for label in labels], float)
    sizes = [_text_size(draw, label.text, font) for label in labels]
    placed, leaders, missing = _layout(anchors, sizes, keep_out, covered)
    if missing:  # room for the line that names them, then again
        height, width = image.shape[:2]
        line = (height - CORNER_MARGIN_PX - LABEL_FONT_PX - 4, 0, height, width)
        placed, leaders, missing = _layout(anchors, sizes, keep_out + [line], covered)
    missing = [labels[i].text for i in missing]
    shown = [label for label in labels if label.text not in missing]
    for (start, end) in leaders:
        draw.line([start[1], start[0], end[1], end[0]], fill=LEADER_COLOUR, width=2)
    for label, box in zip(shown, placed):
        draw.rectangle([box[1], box[0], box[3], box[2]], fill=LABEL_FILL, outline=LABEL_BORDER, width=1)
        draw.multiline_text((box[1] + LABEL_PAD_PX, box[0] + LABEL_PAD_PX), label.text, fill=(0, 0, 0), font=font)
    r = DOT_RADIUS_PX
    for label in shown:
        row, col = label.pixel
        draw.ellipse([col - r, row - r, col + r, row + r], fill=label.colour, outline=(0, 0, 0), width=1)
    if missing:
        draw.text((CORNER_MARGIN_PX, image.shape[0] - CORNER_MARGIN_PX), "not labelled (no room): " +
                  "; ".join(missing), fill=(120, 0, 0), font=font, anchor="ld")


def _layout(anchors: np.ndarray, sizes: list, keep_out: list, covered: np.ndarray):
    """Boxes and leader lines of the labels placed in order, and the indices of those left out."""
    placed, leaders, missing = [], [], []
    for i, size in enumerate(sizes):
        box = _place(size, anchors[i], (placed + list(keep_out), leaders), np.delete(anchors, i, axis=0), covered)
        if box is None:
            missing.append(i)
            continue
        placed.append(box)
        leaders.append((anchors[i], _nearest_on_box(anchors[i], box)))
    return placed, leaders, missing


def _nearest_on_box(point: np.ndarray, box) -> np.ndarray:
    return np.array([np.clip(point[0], box[0], box[2]), np.clip(point[1], box[1], box[3])])


def _place(size, anchor: np.ndarray, taken: tuple[list, list], others: np.ndarray, covered: np.ndarray):
    """The best free box (row0, col0, row1, col1) of ``size`` (rows, columns) for a label at
    ``anchor``, clear of the ``taken`` boxes and leader lines, or None."""
    rows, cols = size
    height, width = covered.shape[0] - 1, covered.shape[1] - 1
    angles = 2 * np.pi * np.arange(LABEL_DIRECTIONS) / LABEL_DIRECTIONS
    candidates = []
    for radius in LABEL_RADII_PX:
        for a in angles:  # the box's nearest edge ``radius`` from the anchor in direction a
            dr, dc = -np.sin(a), np.cos(a)
            r0 = anchor[0] + radius * dr - rows * (0.5 - 0.5 * dr)
            c0 = anchor[1] + radius * dc - cols * (0.5 - 0.5 * dc)
            candidates.append((radius, int(round(r0)), int(round(c0))))
    for r0 in range(0, height - rows, 12):  # the fallback scan of the whole picture
        for c0 in range(0, width - cols, 12):
            centre = np.array([r0 + rows / 2, c0 + cols / 2])
            candidates.append((2 * LABEL_RADII_PX[-1] + np.linalg.norm(centre - anchor), r0, c0))
    best, best_cost = None, np.inf
    for distance, r0, c0 in candidates:
        box = (r0, c0, r0 + rows, c0 + cols)
        if distance >= best_cost or not _free(box, taken, others, anchor, (height, width)):
            continue
        drawn = covered[box[2], box[3]] - covered[r0, box[3]] - covered[box[2], c0] + covered[r0, c0]
        cost = distance + LABEL_COVER_COST_PX * drawn / (rows * cols)
        if cost < best_cost:
            best, best_cost = box, cost
    return best


def _free(box, taken: tuple[list, list], others: np.ndarray, anchor: np.ndarray, shape) -> bool:
    """Whether a box lies in the picture, LABEL_GAP_PX clear of every taken box and labelled point,
    crossed by no taken leader line, and its own leader crosses no taken box."""
    r0, c0, r1, c1 = box
    if r0 < 2 or c0 < 2 or r1 > shape[0] - 3 or c1 > shape[1] - 3:
        return False
    g = LABEL_GAP_PX
    boxes, leaders = taken
    if any(r0 < b[2] + g and b[0] < r1 + g and c0 < b[3] + g and b[1] < c1 + g for b in boxes):
        return False
    points = np.vstack([others, anchor[None]]) if len(others) else anchor[None]
    if _in_box(points, box, g + DOT_RADIUS_PX).any():
        return False
    if any(_in_box(_segment(start, end), box, 2).any() for start, end in leaders):
        return False
    own = _segment(anchor, _nearest_on_box(anchor, box))
    return not any(_in_box(own, b, 2).any() for b in boxes)


def _segment(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Points every 2 pixels along a segment (row, col)."""
    steps = max(2, int(np.linalg.norm(end - start) / 2))
    return start + np.linspace(0.0, 1.0, steps)[:, None] * (end - start)


def _in_box(points: np.ndarray, box, pad: float) -> np.ndarray:
    r0, c0, r1, c1 = box
    return ((points[:, 0] > r0 - pad) & (points[:, 0] < r1 + pad) & (points[:, 1] > c0 - pad) &
            (points[:, 1] < c1 + pad))
