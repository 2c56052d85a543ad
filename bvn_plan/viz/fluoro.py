"""Simulated fluoroscopy: the AP, lateral and en-face pedicle ("owl's eye", down-the-pedicle)
views of the procedure room, as parallel-beam X-ray projections with the instrument overlaid.

Geometry. A parallel beam (no magnification: a point source at infinite distance) along one
vertebra-frame direction; one pixel is ``pixel_mm`` x ``pixel_mm`` in every plane perpendicular to
the beam, so distances in the image are true millimetres. Every image is shown **as seen from the
X-ray source looking along the beam, superior up** (image right = beam x up):

* ``"ap"``: beam anterior -> posterior; patient's right on the image left (radiological convention);
* ``"lateral"``: beam from the patient's left to right; anterior on the image left;
* ``"en_face"``: beam along a pedicle's axis (posterior -> anterior, the introducer's line of
  sight); patient's right on the image right.

Mirror an image with ``np.fliplr`` if a C-arm shows it the other way round.

Pixel values. Without a CT, the bone is the closed vertebra surface filled with one material:
``bone_path_mm`` is the chord length (mm) through bone along each ray (the mesh voxelised by ray
parity, :func:`bvn_plan.geometry.voxelize.voxelize`, summed along the beam); the attenuation line
integral is ``bone_mu_per_mm * bone_path_mm``. With a CT, the line integral is that of the CT's
linear attenuation (HU -> mu, :func:`hu_to_mu`) through the box around the vertebra. The
instrument adds ``STEEL_MU_PER_MM`` times its own chord, sampled on the same grid, so it appears
with its true projected width and is radiopaque where it runs along the beam.

Display: detected intensity ``exp(-line integral)`` with automatic contrast (``DISPLAY_RANGE``),
the least dense pixel white: **dense is dark on a light background**, as on a C-arm monitor; metal is nearly black. The tip is
marked by a ring (``TIP_RING_COLOUR``) around it, leaving the tip pixel itself unchanged.

Pictures (:meth:`FluoroImage.picture`, :meth:`FluoroImage.save_png`): the displayed image enlarged
by a whole factor to at least ``MIN_LONG_SIDE_PX`` on its long side (bicubic), with the orientation
marker (R/L, A/P, S/I) and a scale bar (:mod:`bvn_plan.viz.annotate`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ..geometry.voxelize import voxelize
from ..errors import AnatomyError, InputError
from ..imaging import read_nifti, sample_ct
from ..landmarks import Landmarks
from ..paths import InstrumentPath
from .annotate import Overlay, annotate

VIEWS = ("ap", "lateral", "en_face")

#: Effective linear attenuation of bone for the mesh-only image (1/mm) [A]: between cancellous
#: bone (~0.025/mm) and cortical bone (~0.06/mm) at a fluoroscopy effective energy of ~60 keV
#: (NIST XCOM mass attenuation x density). Only the image contrast depends on it.
BONE_MU_PER_MM = 0.03
#: Linear attenuation of water (1/mm) at ~60 keV [V, NIST XCOM: 0.206 cm^2/g x 1 g/cm^3]; the
#: scale of the HU -> mu conversion.
WATER_MU_PER_MM = 0.0206
#: Linear attenuation of stainless steel (1/mm) at ~60 keV [A, NIST XCOM iron 1.2 cm^2/g x 7.9 g/cm^3].
STEEL_MU_PER_MM = 0.95
#: Automatic contrast, as a C-arm's: the displayed intensity is exp(-gain * (line integral - its
#: minimum)) with the gain that shows the densest pixel without metal at exp(-DISPLAY_RANGE)
#: (about 11% grey); the least dense pixel is white, metal darker still.
DISPLAY_RANGE = 2.2
#: Tip ring: inner radius (mm) beyond the instrument radius, thickness (mm) and colour (RGB).
TIP_RING_GAP_MM = 1.5
TIP_RING_WIDTH_MM = 0.8
TIP_RING_COLOUR = (230, 40, 40)
#: Sub-pixel shift of the grid so that rays rarely pass exactly through mesh vertices or edges
#: (where the parity test can miss a crossing and streak a whole column), as in voxelize.py.
GRID_JITTER = 0.0137
#: Largest grid (voxels) one view may use; beyond it, ask for coarser pixels.
MAX_VOXELS = 60_000_000
#: Pictures are enlarged (a whole factor) to at least this many pixels on their long side.
MIN_LONG_SIDE_PX = 512


@dataclass(frozen=True)
class FluoroSettings:
    """How the views are simulated: the ``pedicle`` ("left"/"right") the en-face view looks down,
    ``pixel_mm`` (mm), the ``margin_mm`` around the vertebra and instruments (mm), the uniform
    ``bone_mu_per_mm`` (1/mm) of the mesh-only image, or a ``ct`` (nibabel image or NIfTI path, HU,
    RAS mm affine) whose attenuation replaces it, with ``model_to_ct`` the 4x4 transform from model
    coordinates (mm) to the CT's RAS mm (identity when the mesh came from that CT's labelmap)."""

    pedicle: str = "right"
    pixel_mm: float = 0.5
    margin_mm: float = 10.0
    bone_mu_per_mm: float = BONE_MU_PER_MM
    ct: object = None
    model_to_ct: np.ndarray | None = None

    def __post_init__(self):
        if not np.isfinite(self.bone_mu_per_mm) or self.bone_mu_per_mm <= 0:
            raise InputError(f"bone_mu_per_mm must be a positive attenuation (1/mm), got {self.bone_mu_per_mm}")
        if not np.isfinite(self.pixel_mm) or self.pixel_mm <= 0:
            raise InputError(f"pixel_mm must be a positive number of mm, got {self.pixel_mm}")
        if not np.isfinite(self.margin_mm) or self.margin_mm < 0:
            raise InputError(f"margin_mm must be a non-negative number of mm, got {self.margin_mm}")


@dataclass(frozen=True)
class Projection:
    """Parallel projection from model coordinates (mm) to image pixels.

    ``beam``, ``right`` and ``up`` are orthonormal unit vectors in model coordinates (the beam
    direction, the direction of increasing column and of decreasing row). Pixel ``(row, col)``
    is centred at ``corner + col * pixel_mm * right - row * pixel_mm * up`` (plus any multiple
    of ``beam``); ``shape`` is (rows, columns).
    """

    view: str
    beam: np.ndarray
    right: np.ndarray
    up: np.ndarray
    corner: np.ndarray
    pixel_mm: float
    shape: tuple[int, int]

    def to_pixel(self, points) -> np.ndarray:
        """(row, col) pixel coordinates (float; integers are pixel centres) of points (mm, model
        coordinates, shape (..., 3)). Points outside the image give coordinates outside the shape."""
        d = np.asarray(points, dtype=float) - self.corner
        return np.stack([-(d @ self.up), d @ self.right], axis=-1) / self.pixel_mm


@dataclass
class FluoroImage:
    """One simulated fluoroscopic view.

    ``line_integral``: attenuation line integral per pixel (dimensionless, bone or CT plus the
    instrument); ``bone_path_mm``: chord length through the vertebra mesh (mm); ``instrument_path_mm``:
    chord length through the instruments (mm); ``rgb``: the displayed image (uint8, H x W x 3);
    ``frame_axes``: the patient's right, anterior and superior unit vectors (rows, model coordinates).
    """

    projection: Projection
    line_integral: np.ndarray
    bone_path_mm: np.ndarray
    instrument_path_mm: np.ndarray
    rgb: np.ndarray
    frame_axes: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))

    @property
    def zoom(self) -> int:
        """The whole factor :meth:`picture` enlarges ``rgb`` by (MIN_LONG_SIDE_PX)."""
        return max(1, int(np.ceil(MIN_LONG_SIDE_PX / max(self.rgb.shape[:2]))))

    def picture(self) -> np.ndarray:
        """The displayed image enlarged by :attr:`zoom` (bicubic) with the orientation marker and the
        scale bar (H x W x 3 uint8; pixel (row, col) of ``rgb`` is centred at
        ((row + 0.5) * zoom - 0.5, (col + 0.5) * zoom - 0.5))."""
        from PIL import Image  # Pillow: only when a picture is drawn

        height, width = self.rgb.shape[:2]
        big = np.asarray(Image.fromarray(self.rgb).resize((width * self.zoom, height * self.zoom), Image.BICUBIC))
        p = self.projection
        axes = {}
        for letter, vector in (("R", self.frame_axes[0]), ("A", self.frame_axes[1]), ("S", self.frame_axes[2])):
            axes[letter] = (-(vector @ p.up), vector @ p.right, -(vector @ p.beam))
        return annotate(big, Overlay(axes=axes, mm_per_px=p.pixel_mm / self.zoom))

    def save_png(self, path: str | os.PathLike) -> None:
        """Write :meth:`picture` as PNG."""
        write_png(self.picture(), path)


def hu_to_mu(hu: np.ndarray, water_mu_per_mm: float = WATER_MU_PER_MM) -> np.ndarray:
    """Linear attenuation (1/mm) from CT numbers: mu = mu_water * (1 + HU / 1000), at least 0
    (the definition of the Hounsfield unit; air -1000 HU -> 0)."""
    return np.clip(water_mu_per_mm * (1.0 + np.asarray(hu, dtype=float) / 1000.0), 0.0, None)


def view_axes(landmarks: Landmarks, view: str, pedicle: str = "right") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beam, image-right and image-up unit vectors (model coordinates) of a view (see the module
    docstring). ``pedicle`` ("left"/"right") chooses the pedicle of the en-face view."""
    frame = landmarks.frame
    superior = np.asarray(frame.superior, float)
    if view == "ap":
        beam = -np.asarray(frame.anterior, float)
    elif view == "lateral":
        beam = np.asarray(frame.right, float)
    elif view == "en_face":
        if pedicle not in landmarks.pedicles:
            raise AnatomyError(f"no {pedicle} pedicle in the landmarks (found: {', '.join(landmarks.pedicles) or 'none'}); "
                               "find the anatomy first or choose the other pedicle")
        beam = np.asarray(landmarks.pedicles[pedicle].axis_direction, float)
    else:
        raise InputError(f"unknown fluoroscopic view {view!r}: use one of {', '.join(VIEWS)}")
    beam = beam / np.linalg.norm(beam)
    up = superior - (superior @ beam) * beam
    if np.linalg.norm(up) < 1e-6:
        raise InputError(f"the {view} beam runs along the superior axis: no image 'up' direction")
    up /= np.linalg.norm(up)
    return beam, np.cross(beam, up), up


def simulate_fluoro(vertebra, landmarks: Landmarks, view: str, paths: Sequence[InstrumentPath] = (),
                    settings: FluoroSettings = FluoroSettings()) -> FluoroImage:
    """Simulate one fluoroscopic view of a vertebra with instruments.

    ``vertebra``: a :class:`~bvn_plan.vertebra.Vertebra` (or a closed trimesh surface; mm, model
    coordinates); ``landmarks``: its findings (frame and pedicles); ``view``: "ap", "lateral" or "en_face" (down ``settings.pedicle``); ``paths``:
    instruments (mm, model coordinates). The image covers the vertebra and the instruments plus
    ``settings.margin_mm``.
    """
    mesh = vertebra if isinstance(vertebra, trimesh.Trimesh) else getattr(vertebra, "mesh", None)
    if not isinstance(mesh, trimesh.Trimesh) or not mesh.is_watertight:
        raise InputError("simulated fluoroscopy needs a Vertebra or a closed (watertight) trimesh surface: repair "
                         "the mesh (bvn_plan.mesh_io.clean_mesh) first")
    if not isinstance(landmarks, Landmarks):
        raise InputError(f"landmarks must be bvn_plan Landmarks (find the anatomy first), not {type(landmarks).__name__}")
    pixel_mm, margin_mm = settings.pixel_mm, settings.margin_mm
    beam, right, up = view_axes(landmarks, view, settings.pedicle)
    axes = np.vstack([right, up, beam])  # rows: view coordinates (x right, y up, z along the beam)

    bone_view = mesh.vertices @ axes.T
    extent = [bone_view]
    for path in paths:
        extent.append(path.vertices @ axes.T + path.radius_mm)
        extent.append(path.vertices @ axes.T - path.radius_mm)
    extent = np.vstack(extent)
    lo = extent.min(axis=0) - margin_mm + GRID_JITTER * pixel_mm
    hi = extent.max(axis=0) + margin_mm
    # along the beam only the bone (and, with a CT, its surroundings) matters
    lo[2], hi[2] = bone_view[:, 2].min() - margin_mm, bone_view[:, 2].max() + margin_mm
    shape = np.ceil((hi - lo) / pixel_mm).astype(int) + 1
    if np.prod(shape.astype(float)) > MAX_VOXELS:
        raise InputError(f"the {view} view needs a {shape[0]}x{shape[1]}x{shape[2]} grid at {pixel_mm} mm: "
                         "use a larger pixel_mm or shorter instrument paths")

    inside = voxelize(bone_view, mesh.faces, pixel_mm, origin=lo, shape=shape).solid
    bone_path = inside.sum(axis=2) * pixel_mm
    if settings.ct is None:
        line_integral = settings.bone_mu_per_mm * bone_path
    else:
        line_integral = _ct_line_integral(settings.ct, settings.model_to_ct, axes, lo, shape, pixel_mm)
    metal = _instrument_path(paths, axes, lo, shape, pixel_mm)
    line_integral = line_integral + STEEL_MU_PER_MM * metal

    corner = axes.T @ np.array([lo[0], lo[1] + (shape[1] - 1) * pixel_mm, 0.0])  # centre of pixel (0, 0)
    projection = Projection(view, beam, right, up, corner, float(pixel_mm), (int(shape[1]), int(shape[0])))
    line_integral, bone_path, metal = (np.ascontiguousarray(grid.T[::-1])  # (x, y) grid -> rows from the top
                                       for grid in (line_integral, bone_path, metal))
    rgb = _display(line_integral, metal)
    for path in paths:
        _mark_tip(rgb, projection, path)
    frame = landmarks.frame
    frame_axes = np.array([np.asarray(a, float) / np.linalg.norm(a) for a in (frame.right, frame.anterior, frame.superior)])
    return FluoroImage(projection, line_integral, bone_path, metal, rgb, frame_axes)


def simulate_fluoro_views(vertebra, landmarks: Landmarks, paths: Sequence[InstrumentPath] = (),
                          settings: FluoroSettings = FluoroSettings()) -> dict[str, FluoroImage]:
    """The three procedure-room views ("ap", "lateral", "en_face" down ``settings.pedicle``) of
    :func:`simulate_fluoro` with the same settings."""
    return {view: simulate_fluoro(vertebra, landmarks, view, paths, settings) for view in VIEWS}


def write_png(rgb: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, 3) uint8 image (row 0 at the top) as PNG, with VTK (no window)."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkIOImage import vtkPNGWriter

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"write_png needs an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    data = vtkImageData()
    data.SetDimensions(width, height, 1)
    flat = np.ascontiguousarray(rgb[::-1].reshape(-1, 3))  # VTK images start at the bottom row
    data.GetPointData().SetScalars(numpy_to_vtk(flat, deep=True))
    writer = vtkPNGWriter()
    writer.SetFileName(os.fspath(path))
    writer.SetInputData(data)
    writer.Write()
    if writer.GetErrorCode():
        raise InputError(f"could not write the PNG {os.fspath(path)!r}: check that the folder exists and is writable")


def _centres(lo: np.ndarray, shape: np.ndarray, pixel_mm: float, axis: int) -> np.ndarray:
    return lo[axis] + pixel_mm * np.arange(shape[axis])


def _ct_line_integral(ct, model_to_ct, axes, lo, shape, pixel_mm) -> np.ndarray:
    """Line integral of mu (HU -> mu) through the grid box, slab by slab along the beam."""
    import nibabel as nib

    image = read_nifti(Path(ct)) if isinstance(ct, (str, os.PathLike)) else ct
    if not isinstance(image, nib.spatialimages.SpatialImage):
        raise InputError(f"ct must be a NIfTI path or a nibabel image, not {type(ct).__name__}")
    image = nib.Nifti1Image(np.asanyarray(image.dataobj, dtype=np.float32), image.affine)  # read once
    transform = np.eye(4) if model_to_ct is None else np.asarray(model_to_ct, dtype=float)
    if transform.shape != (4, 4) or not np.all(np.isfinite(transform)):
        raise InputError(f"model_to_ct must be a finite 4x4 matrix (model mm -> CT RAS mm), got shape {transform.shape}")
    xs, ys, zs = (_centres(lo, shape, pixel_mm, a) for a in range(3))
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    total = np.zeros(gx.shape)
    for z in zs:
        view_points = np.stack([gx, gy, np.full_like(gx, z)], axis=-1)
        model = view_points @ axes  # view coordinates -> model coordinates
        hu = sample_ct(image, model @ transform[:3, :3].T + transform[:3, 3])
        total += hu_to_mu(np.nan_to_num(hu, nan=-1000.0)) * pixel_mm
    return total


def _instrument_path(paths, axes, lo, shape, pixel_mm) -> np.ndarray:
    """Chord length (mm) through the instruments per (x, y) column of the grid, counting voxel
    centres within the instrument radius of its centreline (a tube with flat ends) over the
    instrument's whole depth."""
    metal = np.zeros((shape[0], shape[1]))
    for path in paths:
        if path.radius_mm <= 0:
            continue
        centre = path.sample(step=min(0.1, pixel_mm / 4)).points
        centre = centre @ axes.T
        tree = cKDTree(centre)
        box_lo = np.floor((centre.min(axis=0) - path.radius_mm - lo) / pixel_mm).astype(int)
        box_hi = np.ceil((centre.max(axis=0) + path.radius_mm - lo) / pixel_mm).astype(int)
        box_lo[:2] = np.clip(box_lo[:2], 0, shape[:2] - 1)
        box_hi[:2] = np.clip(box_hi[:2], 0, shape[:2] - 1)
        idx = [np.arange(box_lo[a], box_hi[a] + 1) for a in range(3)]
        pts = np.stack(np.meshgrid(*[lo[a] + pixel_mm * idx[a] for a in range(3)], indexing="ij"), axis=-1)
        pts = pts.reshape(-1, 3)
        d, nearest = tree.query(pts, distance_upper_bound=path.radius_mm)
        inside = np.isfinite(d)
        # flat ends, like a cut tube: nothing beyond the start or the tip along the path
        ends = ((nearest == 0, centre[0], centre[0] - centre[1]),
                (nearest == len(centre) - 1, centre[-1], centre[-1] - centre[-2]))
        for at_end, point, outward in ends:
            inside &= ~(at_end & ((pts - point) @ outward > 0))
        inside = inside.reshape(len(idx[0]), len(idx[1]), len(idx[2]))
        metal[np.ix_(idx[0], idx[1])] += inside.sum(axis=2) * pixel_mm
    return metal


def _display(line_integral: np.ndarray, metal: np.ndarray) -> np.ndarray:
    """Detected intensity exp(-line integral) with automatic contrast (see DISPLAY_RANGE), as
    8-bit grey RGB."""
    lowest = line_integral.min()
    tissue = line_integral[metal == 0]
    span = tissue.max() - lowest if len(tissue) else 0.0
    gain = DISPLAY_RANGE / span if span > 0 else 1.0
    intensity = np.exp(-(line_integral - lowest) * gain)
    grey = np.clip(np.rint(255 * intensity), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _mark_tip(rgb: np.ndarray, projection: Projection, path: InstrumentPath) -> None:
    row, col = projection.to_pixel(path.tip)
    rows, cols = np.indices(rgb.shape[:2])
    r = np.hypot(rows - row, cols - col) * projection.pixel_mm
    inner = path.radius_mm + TIP_RING_GAP_MM
    rgb[(r >= inner) & (r <= inner + TIP_RING_WIDTH_MM)] = TIP_RING_COLOUR
