"""Real organs from a segmentation as no-go zones for the instrument (rule ``organ_instrument``).

With a labelmap that has them (TotalSegmentator "total" names), the organs a posterior needle
must never cross replace the modelled structures of :mod:`bvn_plan.planning.approach`: the great
vessels, the kidneys, the psoas, the bowel and the spinal cord. The paraspinal (autochthon)
muscles are not among them: every posterior approach crosses them. Points in the labelmap's world
coordinates (RAS+ mm), which are the model coordinates of a vertebra taken from the same labelmap.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

#: Label-name prefixes (TotalSegmentator "total") of the organs no instrument may cross, and how
#: reasons name them.
NO_GO_ORGANS = {
    "aorta": "aorta", "inferior_vena_cava": "inferior vena cava", "iliac_artery": "iliac artery",
    "iliac_vena": "iliac vein", "kidney": "kidney", "iliopsoas": "psoas", "colon": "colon",
    "small_bowel": "small bowel", "duodenum": "duodenum", "spinal_cord": "spinal cord",
}


def organ_words(name: str) -> str | None:
    """How a reason names label ``name`` ("kidney_left" -> "kidney (left)"), None if it is no organ to avoid."""
    for prefix, words in NO_GO_ORGANS.items():
        if name == prefix or name.startswith(prefix + "_"):
            side = name[len(prefix) + 1:]
            return f"{words} ({side})" if side else words
    return None


#: Steps (mm) and reach (mm) of the walk back along an introducer line to the skin.
SKIN_STEP_MM, SKIN_REACH_MM = 0.25, 300.0


class OrganZones:
    """The no-go organs of one labelmap: their voxels, names and the distance (mm) to the nearest
    organ voxel over the grid, built once; ``subcutaneous_fat``: an optional mask on the same grid
    whose outer edge is the skin."""

    def __init__(self, data: np.ndarray, affine: np.ndarray, names: dict[int, str], source: str,
                 subcutaneous_fat: np.ndarray | None = None):
        self.affine, self.source = np.asarray(affine, float), source
        self._inverse = np.linalg.inv(self.affine)
        if subcutaneous_fat is not None and np.shape(subcutaneous_fat) != np.shape(data):
            raise InputError(f"the subcutaneous-fat mask {np.shape(subcutaneous_fat)} is not on the labelmap's grid "
                             f"{np.shape(data)}: give both from the same CT")
        self.fat = None if subcutaneous_fat is None else np.asarray(subcutaneous_fat, bool).astype(np.float32)
        self.words = {value: organ_words(name) for value, name in names.items() if organ_words(name)}
        present = [v for v in self.words if (data == v).any()]
        self.words = {v: self.words[v] for v in present}
        self.labels = np.where(np.isin(data, present), data, 0).astype(np.int32)
        spacing = np.linalg.norm(self.affine[:3, :3], axis=0)
        self.distance_mm = ndi.distance_transform_edt(self.labels == 0, sampling=spacing) if present else None

    @classmethod
    def from_labelmap(cls, labelmap, subcutaneous_fat: np.ndarray | None = None) -> "OrganZones":
        """From a :class:`bvn_plan.workflow.Labelmap` (its data, affine, names and source)."""
        return cls(labelmap.data, labelmap.affine, labelmap.names, labelmap.source, subcutaneous_fat)

    def skin_entry(self, bone_entry: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """Where the introducer line through ``bone_entry`` along unit ``direction`` (toward the
        tip) crosses the skin (world mm): walking back from the bone entry, the outermost point where
        the subcutaneous fat (trilinear, 0.5 as marching cubes) ends. On a supine CT the table behind
        the back is no fat, so the walk does not stop on it. None without a fat mask or when the line
        meets no fat within SKIN_REACH_MM."""
        if self.fat is None:
            return None
        t = np.arange(0.0, SKIN_REACH_MM, SKIN_STEP_MM)
        points = np.asarray(bone_entry, float) - t[:, None] * np.asarray(direction, float)
        ijk = points @ self._inverse[:3, :3].T + self._inverse[:3, 3]
        fat = ndi.map_coordinates(self.fat, ijk.T, order=1, cval=0.0)
        inside = np.flatnonzero(fat >= 0.5)
        if len(inside) == 0:
            return None
        k = inside[-1]
        if k + 1 < len(t):  # the 0.5 crossing between the last sample in the fat and the next
            k = k + (fat[k] - 0.5) / (fat[k] - fat[k + 1])
        return np.asarray(bone_entry, float) - (k * SKIN_STEP_MM) * np.asarray(direction, float)

    @property
    def organs(self) -> list[str]:
        return sorted(self.words.values())

    def _voxels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ijk = np.rint(np.asarray(points, float) @ self._inverse[:3, :3].T + self._inverse[:3, 3]).astype(int)
        inside = np.all((ijk >= 0) & (ijk < self.labels.shape), axis=1)
        return np.clip(ijk, 0, np.array(self.labels.shape) - 1), inside

    def on_grid(self, points: np.ndarray) -> np.ndarray:
        """Whether each point (mm) lies inside the labelmap's voxel grid."""
        return self._voxels(points)[1]

    def label_at(self, points: np.ndarray) -> np.ndarray:
        """The organ label value at each point (0 outside every organ and outside the grid)."""
        ijk, inside = self._voxels(points)
        return np.where(inside, self.labels[tuple(ijk.T)], 0)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (mm) from each point's voxel to the nearest organ voxel (0 inside; inf off the grid
        or with no organ)."""
        if self.distance_mm is None:
            return np.full(len(points), np.inf)
        ijk, inside = self._voxels(points)
        return np.where(inside, self.distance_mm[tuple(ijk.T)], np.inf)
