"""Fast exact distances from points to vertebra surfaces (mm, model coordinates).

A coarse signed-distance grid (voxelised mesh + Euclidean distance transform) answers the
planner's estimates; every exact value comes from a compiled AABB tree over the surface's triangles
(libigl, float64), built once per surface at set-up, queried with one array of points per call. A
signed value takes its sign from the angle-weighted pseudo-normal of the nearest face, edge or
vertex. A minimum over points evaluates exactly only the points whose lower bound can still beat
the best value: first, for every group of points (one path's samples, one lesion), the point of
lowest estimate and the point of lowest bound, all groups and all surfaces in one batch
(:func:`minima_together`: one tree call per surface), then every point whose bound does not exceed
its group's best value, in a second batch. A check, or a batch of paths (check_paths), so costs two
tree calls per zone.

The engine was chosen on measured numbers (benchmarks/bench_distance_engines.py: VHM L4, 642 points
within 3 mm of its surface, CPU time on the loaded 2-core machine): libigl's prebuilt ``igl.AABB``
takes 3.3 ms for the batch (5 us a point), exact to 1e-14 mm; libigl's ``point_mesh_squared_distance``
and point-cloud-utils' ``closest_points_on_mesh`` rebuild their tree on every call (13-14 ms); fcpw is
faster (2.0 ms) but holds the geometry in float32, 7.7e-6 mm off, too coarse for clearances exact to
1e-6 mm; VTK's implicit distance takes 8.5 ms, and its ball searches are one Python call a point;
trimesh's proximity, the slow baseline, 23 ms. Checks themselves: benchmarks/bench_check.py.

The lower bounds that stay, because a grid read for a whole array costs less than the exact
queries it saves (a tree query costs 1-20 us a point, the more the farther the point from the
surface; a lesion's points lie 5-15 mm from every zone): the signed grid with its band and the
mesh's box, which also tell the points surely on one side (their sign known, their value the
unsigned distance), and each surface's unsigned bound grid read with its curvature bound. The bound
grid's nodes hold lower bounds of their distances: a node's distance to the nearest node marked by
a dense surface sample less how far a surface point can lie from a marked node (1.1 mm), except
inside the vertebra, where lesions lie and instruments run: there exact distances at every second
node, interpolated with the curvature bound, raise them to within a few hundredths of a millimetre
of the distance far from the surface (EXACT_NODE_STEP). That costs a quarter to a third of the
set-up (the exact distances of an eighth of the nodes inside the bone, 0.2-0.3 s CPU on the loaded
machine) and cut a check's exact queries from about 550 points to 140 (VHM L2 and L4, the synthetic
L4). All the zones' grids of a vertebra
are held node by node (:class:`GridStack`), so that one gather reads every grid at a check's
points. Dropped, because the tree made them pay no more (the same check's CPU time with them was
equal or up to 12 % longer on VHM L4 and the synthetic L4): the patch boxes and convex-hull planes
that raised the bounds of many candidates, the ball searches and their seeding upper bound, the
surface samples that bounded a region's maximum (the tree gives every exact distance at once), and
the doubling batches of candidates (with the tightened bounds a second batch holds few points).
The VTK engine with its ball searches stays in benchmarks/vtk_distance.py as the benchmarks'
reference.

Set-up (issue 17, CPU time, same loaded machine, old and new alternating): a marked node's distance
transform is taken over the marked nodes' box and EDT_REACH_MM about it, the rest of the grid
holding its distance to that box (a canal's or an endplate's transform a third of the grid's; no
check got slower: VHM L4 and the synthetic L4, one check and 100 sampled paths, the same
verdicts); the surface samples are formed by matmul (25x quicker than the einsum they were, 0.1-0.2 s
of the synthetic L4's set-up); the segmental artery zone's bound is not tightened (a check measures
it only where the instrument is outside the bone). Measured and not kept: one libigl tree over all
the zones of a vertebra, each zone's copy shifted far from the others, so that a batch is one tree
call instead of seven: a tree call costs about 11 us however few its points, less than thought, and
in the joined tree each point costs more (the second batch 171 us against 141 us for seven calls),
so the check took 2.42 ms against 2.12 ms (VHM L4, same process).
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage

from ..errors import InputError
from .voxelize import grid_cover, voxelize

#: Grid spacing (mm) of the coarse signed-distance field.
GRID_PITCH_MM = 1.0
#: Grid spacing (mm) and margin (mm) of the unsigned distance grid that bounds each surface's
#: distance from below, so that points too far from it to hold a minimum are never searched.
PATCH_GRID_PITCH_MM = 1.0
PATCH_GRID_MARGIN_MM = 4.0
#: How far (mm) beyond the box of a surface's marked nodes its bound grid holds their exact distance
#: transform; farther nodes hold their distance to the box, at least this much, a weaker bound where
#: no check needs a strong one: beyond it lie no points a minimum over them can hold (a lesion keeps
#: 10 mm from the canal, an instrument's least clearances are a few mm) and inside the vertebra the
#: bounds are tightened by exact distances [A].
EDT_REACH_MM = 12.0
#: Samples marking a surface's grid nodes lie so densely that every point of the surface is within
#: this distance (mm) of one.
MARK_COVER_MM = 0.25
#: The lattice (in grid nodes) of the exact distances that tighten the bounds where points are
#: checked: every second node in each axis, an eighth of the nodes, whose distances interpolated
#: bound the others' to within 3 (2 pitch)^2 / (8 distance), 0.15 mm at 10 mm.
EXACT_NODE_STEP = 2
#: Points a GridStack reads at once: a batch's gathers in chunks stay in the caches (500 paths'
#: 400 000 points read at once took ten times longer a point than one check's).
READ_CHUNK = 4096
#: Subtracted (mm) from exact distances that bound others, against their rounding.
_ROUNDING_MM = 1e-9
#: Half the diagonal of a unit cube: the farthest a point lies from its nearest grid node, in pitches.
_HALF_DIAGONAL = 0.5 * np.sqrt(3.0)
#: Offsets of a grid cell's eight corners from its lowest one.
_CELL_CORNERS = np.array([(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)])


class _Tree:
    """Exact distances (mm) from points to a mesh's triangles over a libigl AABB tree built once
    (float64 throughout), with the sign of a closed mesh from angle-weighted pseudo-normals
    (Baerentzen and Aanaes 2005): the normal of the nearest face, edge or vertex, whichever holds the
    nearest point; their dot product with the offset from the nearest point is the sign."""

    def __init__(self, mesh: trimesh.Trimesh):
        import igl  # a compiled extension that takes a third of a second to import: loaded when first needed

        self._vertices = np.ascontiguousarray(mesh.vertices, dtype=float)
        self._faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
        self._tree = igl.AABB()
        self._tree.init(self._vertices, self._faces)
        self._mesh = mesh
        self._normals = None  # the pseudo-normals, made on the first signed query

    def nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unsigned distance (mm), nearest face and nearest point (mm, model coordinates) of each point."""
        points = np.ascontiguousarray(points, dtype=float).reshape(-1, 3)
        if len(points) == 0:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 3))
        squared, face, closest = self._tree.squared_distance(self._vertices, self._faces, points)
        return np.sqrt(squared), face, closest

    def unsigned(self, points: np.ndarray) -> np.ndarray:
        """Exact unsigned distance (mm) of each point."""
        return self.nearest(points)[0]

    def signed(self, points: np.ndarray) -> np.ndarray:
        """Exact signed distance (mm, negative inside) of each point to the closed mesh."""
        return self.values(points)

    def values(self, points: np.ndarray, signed: np.ndarray | None = None) -> np.ndarray:
        """Exact distance (mm) of each point from one tree query: signed (negative inside the closed
        mesh) where ``signed`` is true (everywhere if None), unsigned elsewhere."""
        points = np.ascontiguousarray(points, dtype=float).reshape(-1, 3)
        distance, face, closest = self.nearest(points)
        rows = slice(None) if signed is None else np.flatnonzero(signed)
        if len(distance) == 0 or (signed is not None and len(rows) == 0):
            return distance
        if self._normals is None:
            self._normals = _pseudo_normals(self._mesh)
        face, closest = face[rows], closest[rows]
        corners = self._vertices[self._faces[face]]
        weights = trimesh.triangles.points_to_barycentric(corners, closest)
        # the nearest point on a corner (two weights ~0) or an edge (one ~0): that feature's normal
        zero = weights < _FEATURE_TOL
        count = zero.sum(axis=1)
        feature = np.where(count >= 2, 3 + np.argmax(weights, axis=1),            # vertex k: column 3 + k
                           np.where(count == 1, (np.argmax(zero, axis=1) + 1) % 3, 6))  # edge j from corner j; 6: face
        normal = self._normals[face, feature]
        side = np.einsum("ij,ij->i", points[rows] - closest, normal)
        distance[rows] = np.where(side < 0, -distance[rows], distance[rows])
        return distance


#: Barycentric weight (of 1) below which a nearest point lies on a triangle's edge or corner.
_FEATURE_TOL = 1e-9


def _pseudo_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """For each face (rows), the pseudo-normals of its three edges (columns 0-2, edge j from corner j
    to corner j+1: the sum of its two faces' normals), its three corners (columns 3-5: the sum of the
    normals of the faces around the vertex weighted by their angles there) and itself (column 6)."""
    normals = np.asarray(mesh.face_normals, float)
    vertex = np.zeros((len(mesh.vertices), 3))
    np.add.at(vertex, mesh.faces.ravel(), (mesh.face_angles[:, :, None] * normals[:, None, :]).reshape(-1, 3))
    edge = np.zeros((len(mesh.edges_unique), 3))
    np.add.at(edge, mesh.edges_unique_inverse, np.repeat(normals, 3, axis=0))  # mesh.edges: 3 per face, in order
    table = np.empty((len(mesh.faces), 7, 3))
    table[:, :3] = edge[np.asarray(mesh.edges_unique_inverse).reshape(-1, 3)]
    table[:, 3:6] = vertex[mesh.faces]
    table[:, 6] = normals
    return table


def _cover_samples(mesh: trimesh.Trimesh, cover: float) -> np.ndarray:
    """Points (mm) on the mesh's triangles such that every point of a triangle lies within ``cover``
    of one: a regular barycentric grid on each triangle. A point of a triangle lies within its longest
    edge / sqrt(3) of a corner, and the grid's cells are the triangle scaled down by ``steps``."""
    corners = np.asarray(mesh.triangles, float)
    longest = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max(axis=1)
    steps = np.maximum(1, np.ceil(longest / (np.sqrt(3.0) * cover))).astype(int)
    samples = []
    for n in np.unique(steps):
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        weights = np.stack([n - i[keep] - j[keep], i[keep], j[keep]], axis=1) / n
        # (m x 3) @ (f x 3 x 3): the triangles' samples, by matmul (25 times quicker than the einsum)
        samples.append(np.matmul(weights, corners[steps == n]).reshape(-1, 3))
    return np.vstack(samples)


def _grid_key(origin: np.ndarray, shape) -> tuple:
    """The geometry of a grid of PATCH_GRID_PITCH_MM nodes, as a key: grids of one key share places."""
    return origin.tobytes(), tuple(int(n) for n in shape)


class _GridPlaces:
    """Where points (mm, model coordinates) fall in a bound grid of a given origin and shape: their
    nearest nodes, the cells holding them (clamped into the grid for points beyond it) and their
    trilinear weights, as flat indices, so that grids of one geometry are read at the same points
    without recomputing them."""

    def __init__(self, origin: np.ndarray, shape: tuple, points: np.ndarray):
        #: the geometry of the grids these places are valid for
        self.key = _grid_key(origin, shape)
        pitch = PATCH_GRID_PITCH_MM
        nodes = np.array(shape)
        strides = np.array([nodes[1] * nodes[2], nodes[2], 1], float)  # flat indices in floats: exact below 2^53
        index = (np.asarray(points, float) - origin) / pitch
        nearest = np.clip(np.rint(index), 0, nodes - 1)
        self.nearest = (nearest @ strides).astype(np.intp)
        offset = index - nearest
        self.to_nearest = np.sqrt(np.einsum("ij,ij->i", offset, offset)) * pitch
        floor = np.floor(index)
        cell = np.clip(floor, 0, nodes - 2)
        self.inside = (cell == floor).all(axis=1)
        t = index - cell
        #: flat index of each point's cell in the grid of cell minima (one node fewer each way)
        self.cell = (cell @ np.array([(nodes[1] - 1) * (nodes[2] - 1), nodes[2] - 1, 1], float)).astype(np.intp)
        self.corners = (cell @ strides).astype(np.intp)[:, None] + _CELL_CORNERS @ strides.astype(np.intp)
        self.weights = _trilinear_weights(t)


class _DistanceBound:
    """A lower bound (mm) on the distance from points to a surface (open or closed, model
    coordinates): a grid of lower bounds of the nodes' distances, read with the best of two bounds
    per grid cell. A node's bound is its distance to the nearest node marked by a dense surface
    sample, less how far a surface point can lie from a marked node; :meth:`tighten` raises the
    bounds of a region's nodes from exact distances."""

    def __init__(self, mesh: trimesh.Trimesh, covers: np.ndarray | None = None):
        """``covers``: an optional box (2 x 3 corners, mm) the grid must span besides the surface."""
        pitch = PATCH_GRID_PITCH_MM
        samples = _cover_samples(mesh, MARK_COVER_MM)
        extent = mesh.vertices if covers is None else np.vstack([mesh.vertices, covers])
        # the rule of the signed grids' voxels, so that places found in one grid serve both
        self.origin, shape = grid_cover(extent, pitch, PATCH_GRID_MARGIN_MM)
        marks = np.round((samples - self.origin) / pitch).astype(int)
        # every surface point lies within MARK_COVER_MM of a sample, the sample within half a cell's
        # diagonal of the node it marked
        grid = _marked_distance(shape, marks) * pitch - (MARK_COVER_MM + _HALF_DIAGONAL * pitch)
        self.shape = grid.shape
        #: the grid's geometry, as the key of places found in it
        self.key = _grid_key(self.origin, self.shape)
        #: node bounds and cell minima (the least bound over each cell's eight corners, at its lowest
        #: corner) as columns (flat index by row): one column here, or a column of a
        #: :class:`GridStack` that holds the grids of several surfaces node by node
        self.nodes, self.cells = grid.reshape(-1, 1), _cell_minima(grid).reshape(-1, 1)

    def tighten(self, exact, lattice: "_ExactLattice") -> None:
        """Raise the bounds of the nodes of ``lattice`` (a region of this grid) from exact distances
        (``exact(points)``, mm) at the lattice's coarse nodes: at such a node the bound is its
        distance; between them the trilinear interpolation of the distances less 3 s^2 / (8 m) (s
        the coarse cell's side, m a lower bound of the distance over it), as in :meth:`__call__`.
        Far from the surface the bounds come within a few hundredths of a millimetre of the
        distance, where the marked nodes' fall more than one short."""
        step, pitch = EXACT_NODE_STEP, PATCH_GRID_PITCH_MM
        distance = exact(self.origin + lattice.coarse * (step * pitch)) - _ROUNDING_MM
        corners = distance[lattice.corners]
        least = corners.min(axis=1) - _HALF_DIAGONAL * step * pitch
        curvature = np.divide(3 * (step * pitch) ** 2 / 8, least, out=np.full(len(least), np.inf), where=least > 0)
        bound = np.einsum("nk,nk->n", lattice.weights, corners) - curvature
        bound[lattice.on] = distance[lattice.at]
        grid = self.nodes[:, 0].reshape(self.shape).copy()
        flat = grid.reshape(-1)
        flat[lattice.fine] = np.maximum(flat[lattice.fine], bound)
        self.nodes, self.cells = flat.reshape(-1, 1), _cell_minima(grid).reshape(-1, 1)

    def places(self, points: np.ndarray) -> _GridPlaces:
        """The points' places in this bound's grid (valid for every bound of the same ``origin`` and ``shape``)."""
        return _GridPlaces(self.origin, self.shape, points)

    def fits(self, places: _GridPlaces | None) -> bool:
        """Whether ``places`` were found in a grid of this bound's geometry."""
        return places is not None and places.key == self.key

    def __call__(self, points: np.ndarray, places: _GridPlaces | None = None) -> np.ndarray:
        """Lower bound (mm) on each point's distance to the surface (``places``: the points' places,
        used if found in a grid of this geometry). The distance is at least the nearest node's bound
        less the point's distance to it (triangle inequality); inside the grid, as the least of
        convex functions whose curvature is at most 1 / distance, it is also at least the trilinear
        interpolation of the corners' bounds less 3 pitch^2 / (8 m), m being a lower bound of it
        over the cell."""
        places = places if self.fits(places) else self.places(points)
        return _read_bounds(self.nodes, self.cells, places)[:, 0]


def _marked_distance(shape: tuple, marks: np.ndarray) -> np.ndarray:
    """Each node's distance (in nodes) to the nearest of the nodes ``marks`` (rows of indices) in a
    grid of ``shape``: their Euclidean distance transform within EDT_REACH_MM of the marked nodes'
    box, and beyond it the distance to that box, a lower bound of at least the reach. The transform
    of the box and its reach alone is exact, every marked node lying in it; it costs a third of the
    whole grid's for a canal or an endplate, whose boxes are small beside the vertebra's."""
    lo, hi = marks.min(axis=0), marks.max(axis=0)
    reach = int(np.ceil(EDT_REACH_MM / PATCH_GRID_PITCH_MM))
    crop = tuple(slice(max(a - reach, 0), min(b + reach + 1, n)) for a, b, n in zip(lo, hi, shape))
    squares = [np.maximum(np.maximum(lo[i] - np.arange(n), np.arange(n) - hi[i]), 0).astype(float) ** 2
               for i, n in enumerate(shape)]
    distance = np.sqrt(squares[0][:, None, None] + squares[1][None, :, None] + squares[2][None, None, :])
    empty = np.ones([c.stop - c.start for c in crop], bool)
    empty[tuple((marks - [c.start for c in crop]).T)] = False
    distance[crop] = ndimage.distance_transform_edt(empty)
    return distance


class _ExactLattice:
    """A region of a bound grid's nodes (a boolean grid) and the coarse lattice of every
    EXACT_NODE_STEP-th node around it where :meth:`_DistanceBound.tighten` takes exact distances:
    ``fine``, the region's flat node indices; ``coarse``, the coarse nodes needed (indices in
    coarse steps, some possibly beyond the grid); ``corners`` (rows into ``coarse``) and
    ``weights``, each region node's coarse cell corners and trilinear weights; ``on``, the region
    nodes on the lattice, and ``at``, their rows into ``coarse``."""

    def __init__(self, region: np.ndarray):
        step = EXACT_NODE_STEP
        fine = np.argwhere(region)
        self.fine = np.ravel_multi_index(tuple(fine.T), region.shape)
        shape = -(-(np.array(region.shape) - 1) // step) + 1  # the coarse lattice spans every node
        cell = np.minimum(fine // step, shape - 2)
        corners = np.stack([np.ravel_multi_index(tuple((cell + c).T), shape) for c in _CELL_CORNERS], axis=1)
        needed = np.zeros(int(np.prod(shape)), bool)
        needed[corners.ravel()] = True
        row = np.cumsum(needed) - 1  # each needed coarse node's row in ``coarse``
        self.coarse = np.array(np.unravel_index(np.flatnonzero(needed), shape)).T
        self.corners = row[corners]
        self.weights = _trilinear_weights(fine / step - cell)
        self.on = (fine % step == 0).all(axis=1)
        self.at = row[np.ravel_multi_index(tuple((fine[self.on] // step).T), shape)]


def _trilinear_weights(t: np.ndarray) -> np.ndarray:
    """The trilinear weights (n x 8) of a cell's corners, in the order of _CELL_CORNERS (x outermost,
    z innermost), at points ``t`` (n x 3, in the cell's units from its lowest corner). Formed point
    last, where the products run over contiguous rows (three times quicker than point first)."""
    t = t.T
    w = np.stack([1 - t, t])  # corner side, axis, point
    return np.ascontiguousarray((w[:, None, None, 0] * w[None, :, None, 1] * w[None, None, :, 2]).reshape(8, -1).T)


def _cell_minima(grid: np.ndarray) -> np.ndarray:
    """The least value over each cell's eight corners of a 3-D grid, at the cell's lowest corner."""
    least = grid[:-1, :-1, :-1].copy()
    for i, j, k in _CELL_CORNERS[1:]:
        np.minimum(least, grid[i:i + least.shape[0], j:j + least.shape[1], k:k + least.shape[2]], out=least)
    return least


def _rows(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``array[index]``: by ``np.take`` (several times quicker) where the array is contiguous, as a
    stack is; by indexing where it is a view into one (np.take would copy the whole grid first)."""
    return np.take(array, index, axis=0) if array.flags.c_contiguous else array[index]


def _trilinear(nodes: np.ndarray, places: _GridPlaces) -> np.ndarray:
    """Trilinear reads (one row per point, one column per grid) of grids held as columns of
    ``nodes`` at the points ``places``."""
    corners = _rows(nodes, places.corners.ravel()).reshape(len(places.corners), 8, nodes.shape[1])
    return (places.weights[:, None, :] @ corners)[:, 0]


def _read_bounds(nodes: np.ndarray, cells: np.ndarray, places: _GridPlaces, smooth: np.ndarray | None = None) -> np.ndarray:
    """The lower bounds of :meth:`_DistanceBound.__call__` (mm; one row per point, one column per
    grid) from bound grids of one geometry, their node bounds ``nodes`` and cell minima ``cells``
    as columns (``nodes`` may hold further columns after them, which are not read), at the points
    ``places``; ``smooth``: the trilinear reads of the grids, if made."""
    pitch = PATCH_GRID_PITCH_MM
    columns = cells.shape[1]
    bound = _rows(nodes, places.nearest)[:, :columns] - places.to_nearest[:, None]
    least = _rows(cells, places.cell) - _HALF_DIAGONAL * pitch
    if smooth is None:
        smooth = _trilinear(nodes, places)[:, :columns]
    curvature = np.divide(3 * pitch ** 2 / 8, least, out=np.full(least.shape, np.inf),
                          where=places.inside[:, None] & (least > 0))  # no bound from it elsewhere
    return np.maximum(bound, smooth - curvature)


class GridStack:
    """The bound grids of several surfaces and the signed grids of closed ones, all of one
    geometry (a vertebra's zones, whose grids cover its box), held node by node: one gather reads
    every grid at a set of points (mm, model coordinates), one stacked lookup gives every surface's
    lower bounds. The surfaces' own bounds read their columns of the stack from then on."""

    def __init__(self, bounded: dict, signed: dict | None = None, exact_within: np.ndarray | None = None,
                 untightened: tuple = ()):
        """``bounded``: surfaces (:class:`SignedDistance` or :class:`SurfaceDistance`) by name, whose
        bound grids are stacked where they share the first one's geometry (the others are read on
        their own); ``signed``: :class:`SignedDistance` by name whose signed grids are read too
        (stacked where they share that geometry, by scipy elsewhere); ``exact_within``: a boolean
        grid of the stack's shape, where the stacked bounds are tightened by exact distances
        (:meth:`_DistanceBound.tighten`), e.g. the nodes inside the vertebra, where lesions lie;
        ``untightened``: the names of surfaces never queried there, whose bounds are left as they are
        (tightening costs each surface its exact distances at an eighth of the region's nodes)."""
        first = next(iter(bounded.values()))._bound
        self.key, self._first = first.key, first
        bounds = {name: s._bound for name, s in bounded.items() if s._bound.key == self.key}
        self._own = {name: s._bound for name, s in bounded.items() if s._bound.key != self.key}
        self.bounded = list(bounds)
        if exact_within is not None and exact_within.any():
            lattice = _ExactLattice(exact_within)
            for name, bound in bounds.items():
                if name not in untightened:
                    bound.tighten(bounded[name]._triangles.unsigned, lattice)
        self.signed = {name: s for name, s in (signed or {}).items() if s._key == self.key}
        self._beyond = {name: s for name, s in (signed or {}).items() if s._key != self.key}
        columns = [b.nodes[:, 0] for b in bounds.values()] + [s.grid.ravel() for s in self.signed.values()]
        self.nodes = np.stack(columns, axis=1)
        self.cells = np.stack([b.cells[:, 0] for b in bounds.values()], axis=1)
        for k, b in enumerate(bounds.values()):  # the surfaces' bounds read the stack: one copy of each grid
            b.nodes, b.cells = self.nodes[:, k:k + 1], self.cells[:, k:k + 1]

    def places(self, points: np.ndarray) -> _GridPlaces:
        """The points' places in the stack's grids."""
        return self._first.places(points)

    def read(self, points: np.ndarray, places: _GridPlaces | None = None) -> "GridRead":
        """Every grid read at ``points`` (``places``: their places, if found)."""
        points = np.asarray(points, float)
        nb = len(self.bounded)
        if places is not None and places.key == self.key:
            parts = [(slice(None), places)]
        else:  # in chunks, whose gathers stay in the caches
            parts = [(slice(a, a + READ_CHUNK), None) for a in range(0, max(len(points), 1), READ_CHUNK)]
        smooth, lower, inside = [], [], []
        for rows, known in parts:
            places = known if known is not None else self.places(points[rows])
            smooth.append(_trilinear(self.nodes, places))
            lower.append(_read_bounds(self.nodes, self.cells, places, smooth[-1][:, :nb]))
            inside.append(places.inside)
        smooth, lower, inside = np.concatenate(smooth), np.concatenate(lower), np.concatenate(inside)
        places = places if len(parts) == 1 else None
        signed = {}
        beyond = np.flatnonzero(~inside)
        for k, (name, surface) in enumerate(self.signed.items()):
            values, overshoot = smooth[:, nb + k], np.zeros(len(points))
            if len(beyond):
                values[beyond], overshoot[beyond] = surface._read(points[beyond])
            signed[name] = (values, overshoot)
        for name, surface in self._beyond.items():
            signed[name] = surface._read(points)
        lower = dict(zip(self.bounded, lower.T))
        for name, bound in self._own.items():
            lower[name] = bound(points)
        return GridRead(places, lower, signed)


class GridRead:
    """A :class:`GridStack` read at points (mm, model coordinates), with their ``places`` if read in
    one part (else None): ``lower[name]``, each surface's lower bounds of the points' distances
    (mm); ``signed[name]``, each signed grid's value and the points' distances beyond the grid
    (mm), as :meth:`SignedDistance._interpolate` gives them."""

    def __init__(self, places: _GridPlaces | None, lower: dict, signed: dict):
        self.places, self.lower, self.signed = places, lower, signed


class SignedDistance:
    """Signed distance (mm) to a closed surface: negative inside, positive outside."""

    #: the exact distances' engine, built once per surface
    _engine = _Tree
    #: whose minima :func:`minima_together` searches with other surfaces'
    _joint = True

    def __init__(self, mesh: trimesh.Trimesh, pitch: float = GRID_PITCH_MM, name: str = "surface",
                 covers: np.ndarray | None = None):
        """``covers``: an optional box (2 x 3 corners, mm, model coordinates) the grid must span
        besides the mesh, e.g. the vertebra's bounds for a canal queried from the whole vertebra."""
        if not mesh.is_watertight:
            raise InputError(f"the {name} surface is not closed; a signed distance needs a watertight mesh")
        self.mesh = mesh
        self.name = name
        self.pitch = float(pitch)
        self._triangles = self._engine(mesh)
        self._bound = _DistanceBound(mesh, covers)
        self._box = np.array(mesh.bounds)  # a plain copy: trimesh's cached bounds check the mesh on each read
        extent = mesh.vertices if covers is None else np.vstack([mesh.vertices, covers])
        grid = voxelize(extent, mesh.faces, self.pitch, margin=4 * self.pitch)
        self.origin, inside = grid.origin, grid.solid
        outside_d = ndimage.distance_transform_edt(~inside)
        inside_d = ndimage.distance_transform_edt(inside)
        # voxel centres: the surface lies between inside and outside voxels
        self.grid = (np.where(inside, -(inside_d - 0.5), outside_d - 0.5) * self.pitch).astype(np.float32)
        #: the grid's worst-case error, beyond which a value's sign is trusted without refinement
        self.band = 2.0 * self.pitch
        # places found in the bound grids serve this grid too where its voxels are their nodes
        self._key = _grid_key(self.origin, self.grid.shape) if self.pitch == PATCH_GRID_PITCH_MM else None

    def _interpolate(self, points: np.ndarray, places: _GridPlaces | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Grid value at each point's nearest place in the grid and the point's distance to it (mm);
        read at ``places`` (the points' places) where they were found in a grid of this geometry."""
        if places is None or places.key != self._key:
            return self._read(points)
        values = (self.grid.ravel()[places.corners] * places.weights) @ np.ones(8)
        overshoot = np.zeros(len(values))
        beyond = ~places.inside
        if beyond.any():
            values[beyond], overshoot[beyond] = self._read(np.asarray(points)[beyond])
        return values, overshoot

    def _read(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_interpolate`` by scipy, which also reads points beyond the grid."""
        idx = (np.asarray(points, float) - self.origin) / self.pitch
        values = ndimage.map_coordinates(self.grid, idx.T, order=1, mode="nearest")
        upper = np.array(self.grid.shape) - 1
        overshoot = np.linalg.norm(idx - np.clip(idx, 0, upper), axis=1) * self.pitch
        return values, overshoot

    def approximate(self, points: np.ndarray, places: _GridPlaces | None = None) -> np.ndarray:
        """Grid estimate: error below ``band`` inside the grid (the mesh's bounds plus 4 pitches);
        beyond it the value at the nearest grid point plus the distance to the grid, which can
        overestimate by up to that distance. ``minimum`` and ``__call__`` refine near values exactly.
        ``places``: the points' places from :meth:`places`, if known."""
        values, overshoot = self._interpolate(points, places)
        return values + overshoot

    def exact(self, points: np.ndarray) -> np.ndarray:
        """Exact signed distance (mm) to the triangles (sign from their pseudo-normals)."""
        return self._triangles.signed(points)

    def __call__(self, points: np.ndarray, places: _GridPlaces | None = None) -> np.ndarray:
        """Signed distance: exact within ``band`` of the surface, the grid value elsewhere
        (``places``: the points' places from :meth:`places`, if known)."""
        return self.refine(points, self.approximate(points, places))

    def refine(self, points: np.ndarray, approx: np.ndarray) -> np.ndarray:
        """``__call__`` from the grid estimates ``approx`` (mm) of the points: exact within ``band``."""
        values = np.array(approx, float)
        near = np.abs(values) < self.band
        if near.any():
            values[near] = self.exact(np.asarray(points, float)[near])
        return values

    def places(self, points: np.ndarray) -> _GridPlaces:
        """The points' places in the bound grid, to share among surfaces whose grids coincide."""
        return self._bound.places(points)

    def minimum(self, points: np.ndarray, offset: np.ndarray | float = 0.0, sign: float = 1.0,
                places: _GridPlaces | None = None) -> tuple[float, int]:
        """Exact minimum over ``points`` of (sign * signed distance - offset) and its index.

        ``sign=-1`` measures depth inside the surface (e.g. how deep in bone a path stays).
        ``places``: the points' places from :meth:`places` of this or another surface, if known."""
        best, where = self.minima(points, offset, np.zeros(1, int), sign, places)
        return float(best[0]), int(where[0])

    def minima(self, points: np.ndarray, offset: np.ndarray | float, starts: np.ndarray, sign: float = 1.0,
               places: _GridPlaces | None = None, read: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`minimum` of each group of ``points`` (rows ``starts[g]`` to the next start, none
        empty), all groups' exact queries together: the least values (mm) and their rows.
        ``read``: the grid's (values, overshoot) and the bound's lower bounds at the points, as a
        :class:`GridRead` gives them, if read; else ``places``, the points' places, if known."""
        return minima_together([(self, points, offset, starts, {"sign": sign, "places": places, "read": read})])[0]

    def _estimates(self, points, offset, sign, places, read):
        """The minima's estimates and lower bounds (mm) of (sign * signed distance - offset) and the
        points surely on the measured side (``places``, ``read`` as :meth:`minima` takes them)."""
        if read is None:
            values, overshoot = self._interpolate(points, places)
            bound = None
        else:
            (values, overshoot), bound = read
        approx = sign * (values + overshoot) - offset
        # the grid is within band of the distance; beyond the grid a point is at most its
        # overshoot closer than the grid point it was read at; a point outside the mesh's box is
        # outside the mesh, at least as far from it as from the box
        lower = sign * values - overshoot - self.band
        if sign > 0:
            lo, hi = self._box
            to_box = np.linalg.norm(np.maximum(np.maximum(lo - points, points - hi), 0.0), axis=1)
            lower = np.where(to_box > 0, np.maximum(lower, to_box), lower)
        # surely on the measured side: there sign * signed distance is the unsigned distance
        unsigned = lower > 0
        if unsigned.any():
            if bound is None:
                places = places if self._bound.fits(places) else self.places(points)
                bound = self._bound(points, places)
            lower = np.where(unsigned, np.maximum(lower, bound), lower)
        return approx, lower - offset, unsigned

    def _prepared(self, points, offset, sign: float = 1.0, places=None, read=None):
        """The estimates and lower bounds (mm) of :meth:`minima` and their exact values (``value(rows)``)."""
        approx, lower, unsigned = self._estimates(points, offset, sign, places, read)

        def value(i):  # exact values of points i; their sign is known where they are surely on the measured side
            return np.where(unsigned[i], 1.0, sign) * self._triangles.values(points[i], ~unsigned[i]) - offset[i]

        return approx, lower, value


class SurfaceDistance:
    """Unsigned distance (mm) to a surface patch (e.g. an endplate's faces), which may be open."""

    #: the exact distances' engine, built once per surface
    _engine = _Tree
    #: whose minima :func:`minima_together` searches with other surfaces'
    _joint = True

    def __init__(self, mesh: trimesh.Trimesh, covers: np.ndarray | None = None):
        """``covers``: an optional box (2 x 3 corners, mm, model coordinates) the coarse grid must
        span besides the patch, e.g. the vertebra's bounds."""
        self.mesh = mesh
        self._triangles = self._engine(mesh)
        self._bound = _DistanceBound(mesh, covers)

    def places(self, points: np.ndarray) -> _GridPlaces:
        """The points' places in the bound grid, to share among surfaces whose grids coincide."""
        return self._bound.places(points)

    def minimum(self, points: np.ndarray, offset: np.ndarray | float = 0.0,
                places: _GridPlaces | None = None) -> tuple[float, int]:
        """Exact minimum over ``points`` of (distance - offset) and its index (``places``: the points'
        places from :meth:`places` of this or another surface, if known)."""
        best, where = self.minima(points, offset, np.zeros(1, int), places)
        return float(best[0]), int(where[0])

    def minima(self, points: np.ndarray, offset: np.ndarray | float, starts: np.ndarray,
               places: _GridPlaces | None = None, lower: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`minimum` of each group of ``points`` (rows ``starts[g]`` to the next start, none
        empty), all groups' exact queries together: the least values (mm) and their rows.
        ``lower``: the bound's lower bounds of the points' distances (mm), if read; else ``places``,
        the points' places, if known."""
        return minima_together([(self, points, offset, starts, {"places": places, "lower": lower})])[0]

    def _prepared(self, points, offset, places=None, lower=None):
        """The estimates and lower bounds (mm) of :meth:`minima` and their exact values (``value(rows)``)."""
        if lower is None:
            places = places if self._bound.fits(places) else self.places(points)
            lower = self._bound(points, places)
        lower = lower - offset
        return lower, lower, lambda i: self._triangles.unsigned(points[i]) - offset[i]

    def maximum(self, points: np.ndarray) -> tuple[float, int]:
        """Exact maximum over ``points`` of the distance and its index."""
        best, where = self.maxima(points, np.zeros(1, int))
        return float(best[0]), int(where[0])

    def maxima(self, points: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`maximum` of each group of ``points`` (rows ``starts[g]`` to the next start, none
        empty) from one exact query: the greatest distances (mm) and their rows."""
        exact = self.distances(points)
        where = _group_firsts(-exact, _groups(starts, len(exact)))
        return exact[where], where

    def distances(self, points: np.ndarray) -> np.ndarray:
        """Exact unsigned distance of every point (mm)."""
        return self._triangles.unsigned(points)


class SurfaceGroup:
    """Unsigned distances (mm, model coordinates) to several surfaces, their minima over one set of
    points found together: surfaces whose bound grids coincide (regions of one vertebra covering its
    box) read all their bounds from one :class:`GridStack`."""

    def __init__(self, surfaces: list[SurfaceDistance]):
        self.surfaces = list(surfaces)
        keys = [surface._bound.key for surface in self.surfaces]
        #: the surfaces' positions in ``surfaces``, by the geometry of their bound grids
        self._by_key = {key: [n for n, k in enumerate(keys) if k == key] for key in dict.fromkeys(keys)}
        self._stacks = {key: GridStack({n: self.surfaces[n] for n in rows}) for key, rows in self._by_key.items()}

    def minima(self, points: np.ndarray, offset: np.ndarray | float = 0.0,
               places: _GridPlaces | None = None) -> list[tuple[float, int]]:
        """``[surface.minimum(points, offset) for surface in surfaces]`` (``places``: the points'
        places in one of the bound grids, if known)."""
        points = np.asarray(points, float)
        minima = [None] * len(self.surfaces)
        for key, stack in self._stacks.items():
            read = stack.read(points, places)
            for n in self._by_key[key]:
                best, where = self.surfaces[n].minima(points, offset, np.zeros(1, int), read.places, read.lower[n])
                minima[n] = (float(best[0]), int(where[0]))
        return minima


def minima_together(requests: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """The minima of several surfaces, each over groups of points, in one search: each request is
    (surface, points, offset, starts, options) as the surface's ``minima`` takes them (points mm,
    model coordinates); its result (least values, mm, and their rows) in its place. Every group's
    first candidates go to the trees in one batch and the remaining candidates in a second (one tree
    call per surface and batch). A surface whose engine has a search of its own (``_joint`` false)
    answers alone."""
    results = [None] * len(requests)
    approx, lower, values, starts, first_rows, joined = [], [], [], [], [0], []
    for n, (surface, points, offset, group_starts, options) in enumerate(requests):
        points = np.asarray(points, float)
        offset = np.broadcast_to(np.asarray(offset, float), (len(points),))
        if not surface._joint:
            results[n] = surface.minima(points, offset, group_starts, **options)
            continue
        a, b, value = surface._prepared(points, offset, **options)
        approx.append(a)
        lower.append(b)
        values.append(value)
        starts.append(np.asarray(group_starts, int) + first_rows[-1])
        first_rows.append(first_rows[-1] + len(points))
        joined.append(n)
    if not joined:
        return results
    first_rows = np.array(first_rows)

    def value(rows):  # rows ascending: each request's slice to its own tree
        cut = np.searchsorted(rows, first_rows)
        return np.concatenate([values[k](rows[cut[k]:cut[k + 1]] - first_rows[k]) if cut[k + 1] > cut[k] else np.zeros(0)
                               for k in range(len(joined))])

    group_counts = np.cumsum([0] + [len(g) for g in starts])
    best, where = _pruned_minima(np.concatenate(approx), np.concatenate(lower), np.concatenate(starts), value)
    for k, n in enumerate(joined):
        g = slice(group_counts[k], group_counts[k + 1])
        results[n] = (best[g], where[g] - first_rows[k])
    return results


def _groups(starts: np.ndarray, count: int) -> np.ndarray:
    """The group of each of ``count`` rows, groups starting at rows ``starts`` (ascending, first 0)."""
    if len(starts) == 1:
        return np.zeros(count, int)
    return np.repeat(np.arange(len(starts)), np.diff(np.append(starts, count)))


def _group_firsts(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each group present in ``groups`` (ascending, one per value), the position of its least
    value (the first on ties), in the order of the groups."""
    if len(values) == 0:
        return np.zeros(0, int)
    if groups[0] == groups[-1]:
        return np.array([np.argmin(values)])
    new = _starts_of(groups)
    least = np.minimum.reduceat(values, np.flatnonzero(new))
    at = np.flatnonzero(values == least[np.cumsum(new) - 1])
    return at[_starts_of(groups[at])]


def _starts_of(groups: np.ndarray) -> np.ndarray:
    """Whether each entry of ``groups`` (ascending) is its group's first."""
    new = np.empty(len(groups), bool)
    new[:1] = True
    np.not_equal(groups[1:], groups[:-1], out=new[1:])
    return new


def _pruned_minima(approx: np.ndarray, lower: np.ndarray, starts: np.ndarray, value) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimum of the points' values in each group (rows ``starts[g]`` to the next start, none
    empty) and its row, given an estimate ``approx`` and a lower bound ``lower`` of each value and
    ``value(rows)`` (their exact values, one batch of tree queries). Each group's points of lowest
    estimate and of lowest bound are evaluated first, all groups in one batch (a grid's estimate can
    be off by its band, where a tightened bound is within a tenth of a millimetre); then, in a second
    batch, every other point whose bound does not exceed its group's best value so far: a point left
    out has a bound, so a value, above a value found. Ties go to the first row of the batch that
    found them."""
    groups = _groups(starts, len(approx))
    first = np.unique(np.concatenate([_group_firsts(approx, groups), _group_firsts(lower, groups)]))
    values = value(first)
    k = _group_firsts(values, groups[first])
    best, where = values[k], first[k]
    candidates = lower <= best[groups]
    candidates[first] = False
    rows = np.flatnonzero(candidates)
    if len(rows):
        values = value(rows)
        k = _group_firsts(values, groups[rows])
        g = groups[rows[k]]
        better = values[k] < best[g]
        best[g[better]], where[g[better]] = values[k][better], rows[k][better]
    return best, where
