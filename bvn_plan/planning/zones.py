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
#: CT numbers above this (HU) are the body when the skin is found from a CT alone [A: subcutaneous
#: fat reads about -100 HU and skin and muscle above, air -1000 HU; the foam and carbon of a CT table
#: read lower, about -330 HU on the organ example's table (shared data README)].
BODY_HU_MIN = -200.0


class SkinSurface:
    """The skin as the outer edge of a mask on a voxel grid (``affine``: voxel -> world mm, the
    organs' frame): the subcutaneous fat, or a CT's body (:meth:`from_ct`); ``source`` says which."""

    def __init__(self, mask: np.ndarray, affine: np.ndarray, source: str):
        self.mask = np.asarray(mask, bool).astype(np.float32)
        self._inverse = np.linalg.inv(np.asarray(affine, float))
        self.source = source

    @classmethod
    def from_ct(cls, hu: np.ndarray, affine: np.ndarray, name: str) -> "SkinSurface":
        """The body of a CT (HU): voxels above BODY_HU_MIN, the largest 26-connected piece (the table
        and the air around are not part of it), each axial slice's holes filled (lungs, bowel gas).
        Its outer edge lies on the skin, the dermis included: on the organ example's 3 mm voxels one
        voxel outside the subcutaneous fat's edge (a level half way between air and tissue on the CT
        numbers instead takes in the table, which touches the back and reads -330 HU)."""
        hu = np.asarray(hu, np.float32)
        body = hu > BODY_HU_MIN
        labels, count = ndi.label(body, structure=np.ones((3, 3, 3), bool))
        if count == 0:
            raise InputError(f"{name} holds no voxel above {BODY_HU_MIN:.0f} HU: is it a CT in Hounsfield units?")
        largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
        axial = int(np.argmax(np.abs(np.asarray(affine, float)[2, :3])))  # the voxel axis along superior
        filled = np.stack([ndi.binary_fill_holes(np.take(largest, k, axis=axial))
                           for k in range(largest.shape[axial])], axis=axial)
        return cls(filled, affine, f"the outer edge of the body in the CT {name} (above {BODY_HU_MIN:.0f} HU, its "
                                   "largest piece, holes filled)")

    def entry(self, bone_entry: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """Where the introducer line through ``bone_entry`` along unit ``direction`` (toward the
        tip) crosses the skin (world mm): walking back from the bone entry, the outermost point where
        the mask (trilinear, 0.5 as marching cubes) ends. On a supine CT the table behind the back is
        neither fat nor body, so the walk does not stop on it. None when the line meets no mask within
        SKIN_REACH_MM."""
        t = np.arange(0.0, SKIN_REACH_MM, SKIN_STEP_MM)
        points = np.asarray(bone_entry, float) - t[:, None] * np.asarray(direction, float)
        ijk = points @ self._inverse[:3, :3].T + self._inverse[:3, 3]
        value = ndi.map_coordinates(self.mask, ijk.T, order=1, cval=0.0)
        inside = np.flatnonzero(value >= 0.5)
        if len(inside) == 0:
            return None
        k = inside[-1]
        if k + 1 < len(t):  # the 0.5 crossing between the last sample inside and the next
            k = k + (value[k] - 0.5) / (value[k] - value[k + 1])
        return np.asarray(bone_entry, float) - (k * SKIN_STEP_MM) * np.asarray(direction, float)


class OrganZones:
    """The no-go organs of one labelmap: their voxels, names and the distance (mm) to the nearest
    organ voxel over the grid, built once; ``subcutaneous_fat``: an optional mask on the same grid
    whose outer edge is the skin, or ``skin``: a :class:`SkinSurface` (e.g. from the CT)."""

    def __init__(self, data: np.ndarray, affine: np.ndarray, names: dict[int, str], source: str,
                 subcutaneous_fat: np.ndarray | None = None, skin: SkinSurface | None = None):
        self.affine, self.source = np.asarray(affine, float), source
        self._inverse = np.linalg.inv(self.affine)
        if subcutaneous_fat is not None and np.shape(subcutaneous_fat) != np.shape(data):
            raise InputError(f"the subcutaneous-fat mask {np.shape(subcutaneous_fat)} is not on the labelmap's grid "
                             f"{np.shape(data)}: give both from the same CT")
        if subcutaneous_fat is not None:
            skin = SkinSurface(np.asarray(subcutaneous_fat, bool), self.affine,
                               f"the outer edge of the subcutaneous fat of {source}")
        self.skin = skin
        self.words = {value: organ_words(name) for value, name in names.items() if organ_words(name)}
        present = [v for v in self.words if (data == v).any()]
        self.words = {v: self.words[v] for v in present}
        self.labels = np.where(np.isin(data, present), data, 0).astype(np.int32)
        spacing = np.linalg.norm(self.affine[:3, :3], axis=0)
        self.distance_mm = ndi.distance_transform_edt(self.labels == 0, sampling=spacing) if present else None

    @classmethod
    def from_labelmap(cls, labelmap, subcutaneous_fat: np.ndarray | None = None,
                      skin: SkinSurface | None = None) -> "OrganZones":
        """From a :class:`bvn_plan.workflow.Labelmap` (its data, affine, names and source)."""
        return cls(labelmap.data, labelmap.affine, labelmap.names, labelmap.source, subcutaneous_fat, skin)

    def skin_entry(self, bone_entry: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """:meth:`SkinSurface.entry` of the skin given (None without one)."""
        return None if self.skin is None else self.skin.entry(bone_entry, direction)

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
