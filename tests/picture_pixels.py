"""Finding the overlay's parts in a rendered picture by their pixels (bvn_plan.viz.annotate):
label boxes, the orientation marker's axes and the scale bar."""

import numpy as np
from scipy import ndimage

from bvn_plan.viz.annotate import AXIS_COLOURS, LABEL_FILL, SCALE_BAR_COLOUR, SCALE_BAR_HEIGHT_PX


def label_boxes(image: np.ndarray, min_pixels: int = 150) -> list[tuple[int, int, int, int]]:
    """(row0, col0, row1, col1) of every label box: connected areas of the box fill colour, with
    the text inside them filled in. Asserts that each is a whole rectangle: a box partly covered
    by another is not."""
    fill = np.all(image[:, :, :3] == LABEL_FILL, axis=2)
    components, count = ndimage.label(ndimage.binary_fill_holes(fill))
    boxes = []
    for index, where in enumerate(ndimage.find_objects(components), start=1):
        area = np.count_nonzero(components[where] == index)
        if area < min_pixels:
            continue
        rows, cols = where
        assert area == (rows.stop - rows.start) * (cols.stop - cols.start), \
            f"label box at rows {rows}, cols {cols} is not a whole rectangle (covered by another?)"
        boxes.append((rows.start, cols.start, rows.stop, cols.stop))
    return boxes


def boxes_intersect(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def axis_pixels(image: np.ndarray, letter: str) -> np.ndarray:
    """(row, col) of the pixels in the colour of the patient axis ``letter`` ("R", "A", "S")."""
    return np.argwhere(np.all(image[:, :, :3] == AXIS_COLOURS[letter], axis=2))


def scale_bar_length_px(image: np.ndarray) -> int:
    """Length (pixels) of the scale bar: the longest run of SCALE_BAR_HEIGHT_PX rows of the bar
    colour in the bottom-right quarter."""
    height, width = image.shape[:2]
    corner = np.all(image[height // 2:, width // 2:, :3] == SCALE_BAR_COLOUR, axis=2)
    solid = ndimage.binary_erosion(corner, np.ones((SCALE_BAR_HEIGHT_PX, 1), bool))
    components, count = ndimage.label(solid)
    assert count, "no scale bar in the bottom-right quarter"
    return max(where[1].stop - where[1].start for where in ndimage.find_objects(components))
