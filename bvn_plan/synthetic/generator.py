"""Parametric synthetic lumbar vertebrae (L1-L5) and an upper-sacrum segment (S1) with ground truth.

Method (:func:`synthesize`): an implicit, distance-like field (mm) on a regular grid is built from primitives (a
superelliptic vertebral body with wedge, endplate concavities and a kidney-shaped posterior wall;
elliptic pedicle tubes narrowest at the isthmus; rounded plates for laminae, articular pillars,
articular, transverse and spinous processes; the sacral ala at S1) joined by smooth unions. The
vertebral foramen is the one hole left between body, pedicles and laminae. Marching cubes gives a
closed surface, VTK decimation thins it (about 20k faces), and the result is checked to be
watertight, consistently wound, one body and genus 1 (one hole: the vertebral foramen).

Coordinates: the generator's model coordinates ARE the vertebra frame (mm; +x patient right, +y
anterior, +z superior; origin at the body centre: mid-width, middle of the mid-sagittal AP depth,
mid-height between the endplate rim planes). Every point in :class:`SyntheticVertebra` uses them.

Ground truth (a :class:`~bvn_plan.landmarks.Landmarks`) is what a measurement on the mesh gives
(:mod:`bvn_plan.synthetic.ground_truth`); the canal volume is the through-hole of the bone seen
along z, extruded between the endplate rim planes at the posterior wall. The parameters are
:mod:`bvn_plan.synthetic.parameters`, the implicit shapes :mod:`bvn_plan.synthetic.shapes`.

S1 is the upper sacral segment only (body, ala, pedicles, laminae with a median crest tubercle,
superior articular processes), cut flat below; genus 1 like a lumbar vertebra (the sacral canal).
Its steep pedicles (42 deg) enter the body at its posterolateral corner, so at S1 the
interpedicular distance is an outcome, not the requested ``canal_width_mm``.

Defaults per level come from :mod:`bvn_plan.levels`; the shape of the posterior arch and the other
values marked [A] below are assumptions (textbook proportions), all overridable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage

from ..atomic import write_bytes_atomic, write_text_atomic
from ..errors import InputError
from ..geometry.meshing import decimate, field_surface, polydata_to_trimesh, trimesh_to_polydata
from ..landmarks import Landmarks, TerminusParameters
from ..levels import LEVELS, normalise_level
from ..vertebra import Vertebra
from .ground_truth import PART_NAMES, ground_truth, part_labels
from .parameters import SyntheticParameters, make_parameters
from .shapes import BACKGROUND_MM, K_ARCH_MM, K_PEDICLE_MM, Layout, layout, sample_field

#: Bumped whenever the generated geometry changes; stored in meshes/manifest.json.
GENERATOR_VERSION = "1.0"

#: Random draws tried per seed before giving up (see :func:`synthesize`).
MAX_DRAWS = 8


@dataclass
class SyntheticVertebra:
    """A generated vertebra with its ground truth (all mm, vertebra frame = model coordinates).

    ``face_labels[i]`` indexes :data:`PART_NAMES` for face ``i`` of ``vertebra.mesh``.
    ``landmarks.canal_mesh`` / ``landmarks.body_mesh`` are the closed vertebral foramen and the
    body alone (also exposed as ``canal_mesh`` and ``body_mesh``).
    """

    vertebra: Vertebra
    parameters: SyntheticParameters
    landmarks: Landmarks
    face_labels: np.ndarray
    part_names: tuple[str, ...] = PART_NAMES

    @property
    def mesh(self) -> trimesh.Trimesh:
        return self.vertebra.mesh

    @property
    def canal_mesh(self) -> trimesh.Trimesh:
        return self.landmarks.canal_mesh

    @property
    def body_mesh(self) -> trimesh.Trimesh:
        return self.landmarks.body_mesh


def synthesize(level: str = "L4", *, seed: int | None = None, vary: bool = False, osteoporotic: bool = False,
               terminus: TerminusParameters | None = None, **overrides: float) -> SyntheticVertebra:
    """Generate one vertebra (L1-L5) or upper-sacrum segment (S1) with its ground truth.

    Arguments as :func:`make_parameters`. With ``vary``, a random draw whose parts do not form
    one genus-1 bone (or that fails the consistency checks) is replaced by the next draw of the
    same seed, up to :data:`MAX_DRAWS`; ``parameters.draw`` records which one was used.
    ``terminus`` places the BVN terminus (default
    :class:`TerminusParameters`). Output in the vertebra frame (mm, RAS-like, origin at the body
    centre). Deterministic: the same arguments give the same mesh bytes. Raises
    :class:`InputError` for bad parameters or parameters whose parts no longer form one genus-1 bone.
    """
    terminus = terminus or TerminusParameters()
    if not vary:
        return _build(make_parameters(level, osteoporotic=osteoporotic, **overrides), terminus)
    for draw in range(MAX_DRAWS):
        try:
            params = make_parameters(level, seed=seed, vary=True, osteoporotic=osteoporotic, draw=draw,
                                     **overrides)
            return _build(params, terminus)
        except InputError as exc:
            failure = exc
    raise InputError(f"{failure} (no valid random variant in {MAX_DRAWS} draws for seed {seed})")


def _build(params: SyntheticParameters, terminus: TerminusParameters) -> SyntheticVertebra:
    lay = layout(params)
    voxel = params.voxel_mm

    prims = [(lay.body, None)] + [(ped, K_PEDICLE_MM) for ped in lay.pedicles.values()]
    prims += [(prim, K_ARCH_MM) for prim, _ in lay.arch]
    bounds = np.array([b for prim, _ in prims for b in prim.bounds()])
    lo, hi = bounds.min(axis=0) - 3.0, bounds.max(axis=0) + 3.0
    values, origin = sample_field(prims, voxel, lo, hi)
    mesh = _mesh_from_field(values, origin, voxel, params.target_faces, "vertebra", 1, params)
    _check_closed(mesh, "vertebra", 1, params)

    body_values, body_origin = sample_field([(lay.body, None)], voxel, *lay.body.bounds())
    body_mesh = _mesh_from_field(body_values, body_origin, voxel, max(4000, params.target_faces // 3),
                                 "body", 0, params)
    _check_closed(body_mesh, "body", 0, params)

    canal_mesh = _canal_mesh(values < 0, origin, voxel, lay, params)
    labels = part_labels(mesh, lay)
    landmarks = ground_truth(params, lay, mesh, body_mesh, canal_mesh, labels, terminus)
    vertebra = Vertebra(mesh, level=params.level, patient_frame="RAS", input_units="mm",
                        source=f"synthetic {params.level} (bvn-plan generator {GENERATOR_VERSION})")
    return SyntheticVertebra(vertebra, params, landmarks, labels)


def _canal_mesh(solid: np.ndarray, origin: np.ndarray, voxel: float, lay: Layout,
                p: SyntheticParameters) -> trimesh.Trimesh:
    """The vertebral foramen as a closed volume: the through-hole of the bone seen along z (the
    hole in the bone's projection onto the axial plane), extruded between the inferior and superior
    endplate rim planes at the midline posterior wall (mm, vertebra frame)."""
    hole = ~solid.any(axis=2)
    regions, _ = ndimage.label(hole)
    seed_idx = np.round((lay.canal_seed[:2] - origin[:2]) / voxel).astype(int)
    label = regions[seed_idx[0], seed_idx[1]]
    border = set(np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]])))
    if label == 0 or label in border:
        raise InputError(f"synthetic {p.level}: the posterior arch does not close around the canal; "
                         "choose values nearer the level defaults")
    inside = regions == label
    sdf2 = (ndimage.distance_transform_edt(~inside) - ndimage.distance_transform_edt(inside) + 0.5) * voxel
    z_bot, z_top = lay.rim_z(-p.morph.body_depth_mm / 2)
    zs = np.arange(math.floor(z_bot / voxel) - 2, math.ceil(z_top / voxel) + 3) * voxel
    slab = np.maximum(zs - z_top, z_bot - zs)
    values = np.maximum(sdf2[:, :, None], slab[None, None, :])
    mesh = _mesh_from_field(values, np.array([origin[0], origin[1], zs[0]]), voxel, 4000, "canal volume", 0, p)
    _check_closed(mesh, "canal volume", 0, p)
    return mesh


def _mesh_from_field(values: np.ndarray, origin: np.ndarray, voxel: float, target_faces: int,
                     what: str, genus: int, p: SyntheticParameters) -> trimesh.Trimesh:
    """Closed surface of ``values < 0`` (mm), decimated to about ``target_faces`` faces.

    The marching-cubes surface must be one closed piece of the given genus (else
    :class:`InputError`); decimation is accepted only if it keeps that (VTK quadric decimation,
    then topology-preserving decimation, then a milder reduction). Vertices are float32 values.
    """
    verts, faces = field_surface(values, origin, voxel, BACKGROUND_MM)
    raw = trimesh.Trimesh(verts, faces, process=True)
    _check_closed(raw, what, genus, p)
    surface = trimesh_to_polydata(trimesh.Trimesh(verts, faces, process=False))
    attempts = [(target_faces, False), (target_faces, True), (int(target_faces * 1.3), False),
                (int(target_faces * 1.3), True)]
    for faces_wanted, keep_topology in attempts:
        if surface.n_cells <= faces_wanted:
            return _as_trimesh(surface)
        mesh = _as_trimesh(decimate(surface, faces_wanted, keep_topology))
        if _closed_problems(mesh, genus) == []:
            return mesh
    return _as_trimesh(surface)    # undecimated: already checked


def _as_trimesh(surface) -> trimesh.Trimesh:
    """A pyvista surface as a trimesh with float32-exact vertices, outward if closed."""
    mesh = polydata_to_trimesh(surface, process=True, vertex_dtype=np.float32)
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh


def _closed_problems(mesh: trimesh.Trimesh, genus: int) -> list[str]:
    """What keeps ``mesh`` from being one closed, consistently wound surface of ``genus``."""
    parts = len(mesh.split(only_watertight=False))
    problems = []
    if not mesh.is_watertight or not mesh.is_winding_consistent:
        problems.append("not a closed manifold surface")
    if parts != 1:
        problems.append(f"{parts} separate pieces")
    elif mesh.is_watertight and mesh.euler_number != 2 - 2 * genus:
        problems.append(f"genus {1 - mesh.euler_number // 2} instead of {genus}")
    return problems


def _check_closed(mesh: trimesh.Trimesh, what: str, genus: int, p: SyntheticParameters) -> None:
    problems = _closed_problems(mesh, genus)
    if problems:
        raise InputError(
            f"synthetic {p.level} {what}: {', '.join(problems)} with these parameters; the parts no "
            "longer fit together. Choose values nearer the level defaults (or a smaller voxel_mm)"
        )


# ---------------------------------------------------------------------------------------------
# The default spine on disk (meshes/)

#: Orientation of each level in the assembled spine: rotation about +x (degrees; negative turns
#: the superior endplate to face anteriorly) giving a sacral slope of 40 deg and a lumbar lordosis
#: of about 50 deg L1-S1 [A, typical standing values].
SPINE_TILT_DEG = {"S1": -40.0, "L5": -26.0, "L4": -14.0, "L3": -4.0, "L2": 3.0, "L1": 8.0}
#: Disc height (mm) between each level and the one below it, at the endplate centres [A].
DISC_HEIGHT_MM = {"L1": 8.0, "L2": 9.0, "L3": 10.0, "L4": 11.0, "L5": 10.0}

SPINE_FRAME = ("assembled spine: mm, +x patient right, +y anterior, +z superior, origin at the S1 "
               "body centre; placement[level] maps that level's vertebra frame into it")
VERTEBRA_FRAME = ("vertebra frame: mm, +x patient right, +y anterior, +z superior (RAS-like), origin "
                  "at the body centre (mid-width, middle of the mid-sagittal depth, mid-height "
                  "between the endplate rim planes)")


def _rot_x(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[1.0, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


def spine_placements(vertebrae: dict[str, SyntheticVertebra]) -> dict[str, np.ndarray]:
    """4x4 transforms (mm) from each level's vertebra frame into the assembled spine frame.

    S1 sits at the origin tilted by SPINE_TILT_DEG; each level above is placed so that the centre
    of its inferior endplate rim plane lies DISC_HEIGHT_MM above the centre of the superior rim
    plane of the level below, along their mean normal.
    """
    order = [lv for lv in reversed(LEVELS) if lv in vertebrae]
    placements: dict[str, np.ndarray] = {}
    below = None
    for level in order:
        lm = vertebrae[level].landmarks
        rot = _rot_x(SPINE_TILT_DEG[level])
        t = np.zeros(3)
        if below is not None:
            lm_b, m_b = vertebrae[below].landmarks, placements[below]
            top = m_b[:3, :3] @ lm_b.superior_endplate.point + m_b[:3, 3]
            normal = m_b[:3, :3] @ lm_b.superior_endplate.normal - rot @ lm.inferior_endplate.normal
            t = top + DISC_HEIGHT_MM[level] * normal / np.linalg.norm(normal) - rot @ lm.inferior_endplate.point
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = rot, t
        placements[level] = matrix
        below = level
    return placements


def write_ply(mesh: trimesh.Trimesh, path: str | os.PathLike, comment: str) -> None:
    """Binary little-endian PLY (float32 vertices, int32 triangles), byte-for-byte reproducible."""
    vertices = np.asarray(mesh.vertices, dtype="<f4")
    faces = np.asarray(mesh.faces, dtype="<i4")
    header = (f"ply\nformat binary_little_endian 1.0\ncomment {comment}\nelement vertex {len(vertices)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    records = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    records["n"], records["v"] = 3, faces
    write_bytes_atomic(path, header.encode("ascii") + vertices.tobytes() + records.tobytes())


def _rounded(value, digits: int = 5):
    """JSON-ready copy with floats rounded (deterministic text across runs)."""
    if isinstance(value, dict):
        return {str(k): _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist(), digits)
    if isinstance(value, (float, np.floating)):
        rounded = round(float(value), digits)
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_json(data: dict, path: str | os.PathLike) -> None:
    write_text_atomic(path, json.dumps(_rounded(data), indent=1, sort_keys=True) + "\n")


def landmarks_record(sv: SyntheticVertebra) -> dict:
    """The ground truth of ``sv`` as a JSON-ready dict (Landmarks.to_dict plus part-label counts)."""
    record = sv.landmarks.to_dict()
    record["units"] = "mm"
    record["frame_description"] = VERTEBRA_FRAME
    record["part_face_counts"] = {name: int(np.count_nonzero(sv.face_labels == i))
                                  for i, name in enumerate(sv.part_names)}
    record["canal_volume_mm3"] = float(sv.canal_mesh.volume)
    record["body_volume_mm3"] = float(sv.body_mesh.volume)
    return record


def write_spine(out_dir: str | os.PathLike, levels=LEVELS, *, seed: int | None = None, vary: bool = False,
                osteoporotic: bool = False) -> dict:
    """Generate ``levels`` and write them with :func:`write_vertebrae`. Returns the manifest."""
    names = [normalise_level(lv) for lv in levels]
    vertebrae = {lv: synthesize(lv, seed=seed, vary=vary, osteoporotic=osteoporotic) for lv in names}
    return write_vertebrae(out_dir, vertebrae)


def write_vertebrae(out_dir: str | os.PathLike, vertebrae: dict[str, SyntheticVertebra]) -> dict:
    """Write ``<L>.ply`` (vertebra frame, mm), ``<L>_landmarks.json`` and ``manifest.json``
    (parameters, frames, units, generator version, sha256 of each file and, for a full L1-S1 set,
    each level's placement in the assembled spine) into ``out_dir``. Returns the manifest.

    The canal and body volumes are not written: :func:`synthesize` regenerates them on demand.
    """
    os.makedirs(out_dir, exist_ok=True)
    placements = spine_placements(vertebrae) if set(vertebrae) == set(LEVELS) else {}
    manifest = {"generator": "bvn_plan.synthetic", "generator_version": GENERATOR_VERSION, "units": "mm",
                "vertebra_frame": VERTEBRA_FRAME, "spine_frame": SPINE_FRAME, "levels": {}}
    for level, sv in vertebrae.items():
        files = {"mesh": f"{level}.ply", "landmarks": f"{level}_landmarks.json"}
        write_ply(sv.mesh, os.path.join(out_dir, files["mesh"]),
                  f"bvn-plan synthetic {level}, generator {GENERATOR_VERSION}, mm, vertebra frame RAS")
        _write_json(landmarks_record(sv), os.path.join(out_dir, files["landmarks"]))
        entry = {"parameters": sv.parameters.to_dict(), "files": files, "faces": int(len(sv.mesh.faces)),
                 "sha256": {key: _sha256(os.path.join(out_dir, name)) for key, name in files.items()}}
        if level in placements:
            entry["placement"] = placements[level]
        manifest["levels"][level] = entry
    _write_json(manifest, os.path.join(out_dir, "manifest.json"))
    return _rounded(manifest)


def write_default_spine(out_dir: str | os.PathLike) -> dict:
    """Regenerate the bundled default spine L1-S1 (``meshes/``) byte-for-byte. Returns the manifest."""
    return write_spine(out_dir, LEVELS)


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


#: Largest rotation (degrees) and translation (mm, per axis) of a cohort copy: small enough that
#: a mesh in RAS stays in RAS.
COHORT_MAX_ROTATION_DEG = 8.0
COHORT_MAX_SHIFT_MM = 30.0


def write_moved_cohort(sources: dict[str, str | os.PathLike], out_dir: str | os.PathLike, count: int,
                       seed: int = 7) -> list[str]:
    """Write ``count`` copies of the meshes ``sources`` (level -> mesh file, mm), cycling through the
    levels, each moved by a random rigid motion within COHORT_MAX_*: a cohort of distinct vertebrae
    for batch runs and throughput benchmarks. Returns the files (``vNN_<level>.ply``), in order."""
    rng = np.random.default_rng(seed)
    levels = list(sources)
    files = []
    for i in range(count):
        level = levels[i % len(levels)]
        mesh = trimesh.load(sources[level], process=False)
        axis = rng.normal(size=3)
        motion = trimesh.transformations.rotation_matrix(
            np.radians(rng.uniform(-COHORT_MAX_ROTATION_DEG, COHORT_MAX_ROTATION_DEG)), axis / np.linalg.norm(axis))
        motion[:3, 3] = rng.uniform(-COHORT_MAX_SHIFT_MM, COHORT_MAX_SHIFT_MM, 3)
        mesh.apply_transform(motion)
        files.append(os.path.join(out_dir, f"v{i:02d}_{level}.ply"))
        mesh.export(files[-1])
    return files
