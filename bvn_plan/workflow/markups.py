"""3D Slicer markups files (``.mrk.json``, schema v1.0.3): write, read and validate.

A :class:`Markup` is one Slicer node: a ``Fiducial`` point list, a ``Line`` (2 points) or a
``Curve`` (N points), with its points in millimetres in the patient frame ``coordinate_system``
(``"LPS"``, Slicer's default in files, or ``"RAS"``). Colour is per node, so write one node per
trajectory. Point labels like ``L4_R_entry`` read well in Slicer.

The structure check in :func:`validate_markups` is written from the v1.0.3 JSON schema
(Slicer ``Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json``): required
keys, JSON types, enum values and array lengths of the markup, control-point, display and
measurement objects. With ``strict=True`` it also demands what bvn-plan writes and older Slicer
needs: every control point has a ``position`` and a ``positionStatus`` (without it Slicer < 5
hides lines), and a Line has at most 2 points.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..errors import InputError, note
from ..coordinates import convert_points, normalise_patient_frame

SCHEMA_URL = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
              "Resources/Schema/markups-schema-v1.0.3.json#")
#: Node types bvn-plan writes and reads.
WRITABLE_TYPES = ("Fiducial", "Line", "Curve")
#: Every node type the v1.0.3 schema knows.
SCHEMA_TYPES = ("Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI")
POSITION_STATUSES = ("undefined", "preview", "defined")
GLYPH_TYPES = ("Vertex2D", "Dash2D", "Cross2D", "ThickCross2D", "Triangle2D", "Square2D", "Circle2D",
               "Diamond2D", "Arrow2D", "ThickArrow2D", "HookedArrow2D", "StarBurst2D", "Sphere3D", "Diamond3D")
#: Length units a markup file may use, as factors to millimetres.
COORDINATE_UNITS_TO_MM = {"mm": 1.0, "um": 0.001}
DEFAULT_COLOR = (1.0, 0.5, 0.0)


@dataclass
class Markup:
    """One Slicer markups node.

    ``points``: (N, 3) positions in mm in ``coordinate_system`` (LPS or RAS). ``labels`` and
    ``descriptions``: one string per point (default labels ``<name>-<i>``, Slicer's style).
    ``color``: RGB in 0-1, used for both the normal and the selected colour so Slicer shows it.
    """

    type: str
    name: str
    points: np.ndarray
    coordinate_system: str = "LPS"
    labels: list[str] | None = None
    descriptions: list[str] | None = None
    color: tuple[float, float, float] = DEFAULT_COLOR
    locked: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.type not in WRITABLE_TYPES:
            raise InputError(f"markup {self.name!r}: type {self.type!r} is not one of {', '.join(WRITABLE_TYPES)}")
        frame = normalise_patient_frame(self.coordinate_system)
        if frame is None:
            raise InputError(f"markup {self.name!r}: coordinate_system must be LPS or RAS")
        self.coordinate_system = frame
        try:
            points = np.asarray(self.points, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"markup {self.name!r}: points must be numbers in mm, shape (N, 3): {exc}") from exc
        if points.size == 0:
            points = np.zeros((0, 3))
        if points.ndim > 2 or points.shape[-1] != 3:
            raise InputError(f"markup {self.name!r}: points must have shape (N, 3), got {points.shape}")
        points = points.reshape(-1, 3)
        if not np.all(np.isfinite(points)):
            raise InputError(f"markup {self.name!r}: points contain NaN or infinite coordinates")
        needed = {"Line": (2, 2), "Curve": (2, None), "Fiducial": (0, None)}[self.type]
        if len(points) < needed[0] or (needed[1] is not None and len(points) > needed[1]):
            count = f"exactly {needed[0]}" if needed[0] == needed[1] else f"at least {needed[0]}"
            raise InputError(f"markup {self.name!r}: a {self.type} needs {count} points, got {len(points)}")
        self.points = points
        self.labels = self._per_point(self.labels, "labels", [f"{self.name}-{i + 1}" for i in range(len(points))])
        self.descriptions = self._per_point(self.descriptions, "descriptions", [""] * len(points))
        color = tuple(float(c) for c in self.color)
        if len(color) != 3 or not all(0.0 <= c <= 1.0 for c in color):
            raise InputError(f"markup {self.name!r}: color must be 3 numbers in 0-1, got {self.color!r}")
        self.color = color

    def _per_point(self, values, what: str, default: list[str]) -> list[str]:
        if values is None:
            return default
        values = [str(v) for v in values]
        if len(values) != len(self.points):
            raise InputError(f"markup {self.name!r}: {len(values)} {what} for {len(self.points)} points")
        return values

    def points_in(self, frame: str) -> np.ndarray:
        """Points (mm) converted to the patient frame ``frame`` (LPS or RAS)."""
        return convert_points(self.points, self.coordinate_system, frame)

    def length_mm(self) -> float:
        """Length (mm) of the polyline through the points (0 for a point list)."""
        if self.type == "Fiducial" or len(self.points) < 2:
            return 0.0
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())

    def to_dict(self) -> dict:
        """The markup as a v1.0.3 markups object."""
        orientation = np.diag(convert_points(np.ones(3), "RAS", self.coordinate_system)).ravel().tolist()
        node = {
            "type": self.type,
            "coordinateSystem": self.coordinate_system,
            "coordinateUnits": "mm",
            "locked": self.locked,
            "fixedNumberOfControlPoints": False,
            "labelFormat": "%N-%d",
            "name": self.name,
            "controlPoints": [
                {"id": str(i + 1), "label": label, "description": description,
                 "associatedNodeID": "", "position": [float(v) for v in point],
                 "orientation": [float(v) for v in orientation], "selected": True, "locked": self.locked,
                 "visibility": True, "positionStatus": "defined"}
                for i, (point, label, description) in enumerate(zip(self.points, self.labels, self.descriptions))
            ],
            "measurements": [],
            "display": {
                "visibility": True, "opacity": 1.0, "color": list(self.color), "selectedColor": list(self.color),
                "propertiesLabelVisibility": False, "pointLabelsVisibility": True, "textScale": 3.0,
                "glyphType": "Sphere3D", "glyphScale": 1.0, "glyphSize": 5.0, "useGlyphScale": True,
                "lineThickness": 0.2, "snapMode": "toVisibleSurface",
            },
        }
        if self.type != "Fiducial":
            node["measurements"].append({
                "name": "length", "enabled": True, "value": self.length_mm(), "units": "mm",
                "printFormat": "%-#4.4g%s",
                "description": "polyline length through the control points" if self.type == "Curve" else "",
            })
        return node


def write_markups(path: str | os.PathLike, markups: list[Markup]) -> Path:
    """Write ``markups`` to a ``.mrk.json`` file atomically (temp file in the same folder, then
    rename): a failed write leaves any earlier file untouched and no partial file behind."""
    path = Path(path)
    if not path.name.endswith(".json"):
        raise InputError(f"{path.name}: a Slicer markups file must end in .mrk.json (or .json)")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    markups = list(markups)
    if not markups or not all(isinstance(m, Markup) for m in markups):
        raise InputError("write_markups needs a non-empty list of Markup objects")
    document = {"@schema": SCHEMA_URL, "markups": [m.to_dict() for m in markups]}
    problems = validate_markups(document, strict=True)
    if problems:  # only reachable through a bug in to_dict; say so plainly
        raise InputError(f"refusing to write an invalid markups file {path.name}: {'; '.join(problems)}")
    write_json_atomic(path, document)
    return path


def read_markups(path: str | os.PathLike, frame: str = "RAS") -> list[Markup]:
    """Read a ``.mrk.json`` file; return its Fiducial, Line and Curve nodes with points in mm in
    ``frame`` (LPS or RAS). Other node types and points whose position is not ``defined`` are
    skipped with a warning (in the markup's ``notes``)."""
    path = Path(path)
    frame = normalise_patient_frame(frame)
    if frame is None:
        raise InputError("read_markups needs frame='RAS' or frame='LPS'")
    if not path.is_file():
        raise InputError(f"markups file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path.name} is not a JSON markups file: {exc}") from exc
    problems = validate_markups(document)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{path.name} is not a valid Slicer markups file (schema v1.0.3): {shown}")
    result = []
    for index, node in enumerate(document["markups"]):
        notes: list[str] = []
        name = node.get("name", f"markup {index}")
        if node["type"] not in WRITABLE_TYPES:
            note(notes, f"{path.name}: skipped {node['type']} node {name!r} (bvn-plan reads {', '.join(WRITABLE_TYPES)})")
            continue
        points, labels, descriptions = [], [], []
        for point in node.get("controlPoints", []):
            if point.get("positionStatus", "defined") != "defined" or "position" not in point:
                note(notes, f"{path.name}: {name!r}: skipped point {point.get('label', '?')!r} with no defined position")
                continue
            points.append(point["position"])
            labels.append(point.get("label", ""))
            descriptions.append(point.get("description", ""))
        units = node.get("coordinateUnits", "mm")
        unit = units[0] if isinstance(units, list) else units
        if unit not in COORDINATE_UNITS_TO_MM:
            raise InputError(f"{path.name}: {name!r} uses coordinate units {unit!r}; expected mm or um")
        source = node.get("coordinateSystem", "LPS")
        xyz = convert_points(np.asarray(points, dtype=float).reshape(-1, 3) * COORDINATE_UNITS_TO_MM[unit], source, frame)
        color = node.get("display", {}).get("color", DEFAULT_COLOR)
        try:
            markup = Markup(node["type"], name, xyz, frame, labels, descriptions, color, node.get("locked", False))
        except InputError as exc:
            raise InputError(f"{path.name}: {exc}") from exc
        markup.notes = notes
        result.append(markup)
    return result


# --- structure check written from markups-schema-v1.0.3.json ---------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(count: int | None = None, low: float | None = None, high: float | None = None):
    def check(value) -> str | None:
        if not isinstance(value, list) or (count is not None and len(value) != count):
            size = f"{count} numbers" if count is not None else "a list of numbers"
            return f"expected {size}, got {_describe(value)}"
        if not all(_is_number(v) and (low is None or v >= low) and (high is None or v <= high) for v in value):
            bounds = f" in {low:g}-{high:g}" if low is not None and high is not None else ""
            return f"expected finite numbers{bounds}, got {value!r}"
        return None
    return check


def _number(low: float | None = None, high: float | None = None):
    def check(value) -> str | None:
        if not _is_number(value):
            return f"expected a number, got {_describe(value)}"
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{value} is outside {low if low is not None else '-inf'}-{high if high is not None else 'inf'}"
        return None
    return check


def _of_type(kind: type, label: str):
    def check(value) -> str | None:
        return None if isinstance(value, kind) else f"expected {label}, got {_describe(value)}"
    return check


def _enum(options: tuple[str, ...]):
    def check(value) -> str | None:
        return None if value in options else f"{value!r} is not one of {', '.join(options)}"
    return check


def _code_or_string(strings: tuple[str, ...] | None = None):
    """A unit: a string (from ``strings`` when given) or a 3-string DICOM code triplet."""
    def check(value) -> str | None:
        if isinstance(value, str):
            return None if strings is None or value in strings else f"{value!r} is not one of {', '.join(strings)}"
        if _code_triplet(value) is None:
            return None
        return f"expected a unit string or [code, scheme, meaning], got {_describe(value)}"
    return check


def _code_triplet(value) -> str | None:
    """A DICOM-style code: [code value, coding scheme designator, code meaning]."""
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value):
        return None
    return f"expected [code, scheme, meaning] (3 strings), got {_describe(value)}"


def _describe(value) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"{type(value).__name__} {value!r}"[:60]


_STRING, _BOOL = _of_type(str, "a string"), _of_type(bool, "true/false")
_COLOR = _numbers(3, 0.0, 1.0)

MARKUP_FIELDS = {
    "type": _enum(SCHEMA_TYPES), "name": _STRING, "coordinateSystem": _enum(("LPS", "RAS")),
    "coordinateUnits": _code_or_string(tuple(COORDINATE_UNITS_TO_MM)), "locked": _BOOL,
    "fixedNumberOfControlPoints": _BOOL, "labelFormat": _STRING, "roiType": _STRING, "planeType": _STRING,
    "sizeMode": _STRING, "autoScalingSizeFactor": _number(), "center": _numbers(3), "normal": _numbers(3),
    "size": _numbers(3), "planeBounds": _numbers(4), "objectToBase": _numbers(16), "baseToNode": _numbers(16),
    "orientation": _numbers(9),
}
CONTROL_POINT_FIELDS = {
    "id": _STRING, "label": _STRING, "description": _STRING, "associatedNodeID": _STRING,
    "position": _numbers(3), "orientation": _numbers(9), "selected": _BOOL, "locked": _BOOL,
    "visibility": _BOOL, "positionStatus": _enum(POSITION_STATUSES),
}
DISPLAY_FIELDS = {
    "visibility": _BOOL, "opacity": _number(0.0, 1.0), "color": _COLOR, "selectedColor": _COLOR,
    "activeColor": _COLOR, "propertiesLabelVisibility": _BOOL, "pointLabelsVisibility": _BOOL,
    "textScale": _number(0.0), "glyphType": _enum(GLYPH_TYPES), "glyphScale": _number(0.0),
    "glyphSize": _number(0.0), "useGlyphScale": _BOOL, "sliceProjection": _BOOL,
    "sliceProjectionUseFiducialColor": _BOOL, "sliceProjectionOutlinedBehindSlicePlane": _BOOL,
    "sliceProjectionColor": _COLOR, "sliceProjectionOpacity": _number(0.0, 1.0), "lineThickness": _number(0.0),
    "lineColorFadingStart": _number(0.0), "lineColorFadingEnd": _number(0.0),
    "lineColorFadingSaturation": _number(), "lineColorFadingHueOffset": _number(), "handlesInteractive": _BOOL,
    "translationHandleVisibility": _BOOL, "rotationHandleVisibility": _BOOL, "scaleHandleVisibility": _BOOL,
    "snapMode": _enum(("unconstrained", "toVisibleSurface")),
}
MEASUREMENT_FIELDS = {
    "name": _STRING, "enabled": _BOOL, "value": _number(), "units": _code_or_string(), "description": _STRING,
    "printFormat": _STRING, "quantityCode": _code_triplet, "derivationCode": _code_triplet, "methodCode": _code_triplet,
    "controlPointValues": _numbers(),
}


def validate_markups(document, strict: bool = False) -> list[str]:
    """Problems (empty when valid) of a parsed ``.mrk.json`` document against the v1.0.3 schema
    structure; ``strict`` adds bvn-plan's own requirements (see the module docstring)."""
    if not isinstance(document, dict):
        return [f"top level: expected a JSON object, got {_describe(document)}"]
    problems = [f"top level: missing required key {key!r}" for key in ("@schema", "markups") if key not in document]
    if "@schema" in document and not isinstance(document["@schema"], str):
        problems.append(f"@schema: expected a string, got {_describe(document['@schema'])}")
    nodes = document.get("markups", [])
    if not isinstance(nodes, list):
        return problems + [f"markups: expected a list, got {_describe(nodes)}"]
    for index, node in enumerate(nodes):
        where = f"markups[{index}]"
        if not isinstance(node, dict):
            problems.append(f"{where}: expected an object, got {_describe(node)}")
            continue
        if "type" not in node:
            problems.append(f"{where}: missing required key 'type'")
        problems += _check_fields(node, MARKUP_FIELDS, where)
        if "display" in node:
            if isinstance(node["display"], dict):
                problems += _check_fields(node["display"], DISPLAY_FIELDS, f"{where}.display")
            else:
                problems.append(f"{where}.display: expected an object, got {_describe(node['display'])}")
        for key, fields in (("controlPoints", CONTROL_POINT_FIELDS), ("measurements", MEASUREMENT_FIELDS)):
            items = node.get(key, [])
            if not isinstance(items, list):
                problems.append(f"{where}.{key}: expected a list, got {_describe(items)}")
                continue
            for number, item in enumerate(items):
                spot = f"{where}.{key}[{number}]"
                if not isinstance(item, dict):
                    problems.append(f"{spot}: expected an object, got {_describe(item)}")
                    continue
                problems += _check_fields(item, fields, spot)
                if strict and key == "controlPoints":
                    problems += [f"{spot}: missing {k!r} (required by bvn-plan; Slicer < 5 hides lines without "
                                 "positionStatus)" for k in ("position", "positionStatus") if k not in item]
        if strict and node.get("type") == "Line" and isinstance(node.get("controlPoints"), list) \
                and len(node["controlPoints"]) > 2:
            problems.append(f"{where}: a Line has at most 2 control points, got {len(node['controlPoints'])}")
    return problems


def _check_fields(obj: dict, fields: dict, where: str) -> list[str]:
    problems = []
    for key, check in fields.items():
        if key in obj:
            problem = check(obj[key])
            if problem:
                problems.append(f"{where}.{key}: {problem}")
    return problems
