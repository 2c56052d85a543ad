"""The JSON Schema of the plan file and of the anatomy JSON, and the field reference made from it.

``plan_schema.json`` (beside this module, shipped in the package) describes ``plan.json`` as
:func:`bvn_plan.planning.plan_file.plan_document` writes it for ``plan``, ``case``, ``batch`` and
``demo``; its ``$defs`` hold one record per concept (a level, a path plan, a clearance, the
anatomy report of ``bvn-plan anatomy --json`` ...), each field with its type and a description
naming its unit, frame and sign. ``docs/plan_json.md`` is that description as tables
(:func:`reference_markdown`; regenerate with ``python -m bvn_plan.planning.plan_schema``).

Adding a field: add it to its record in ``plan_schema.json`` with a description (unit, frame,
sign), run this module to refresh docs/plan_json.md, and let a test write a file holding it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

SCHEMA_FILE = Path(__file__).with_name("plan_schema.json")
#: docs/plan_json.md: its hand-written introduction ends at this line, the tables follow it.
GENERATED_MARK = "<!-- generated from bvn_plan/planning/plan_schema.json: python -m bvn_plan.planning.plan_schema -->"
#: The record of the anatomy JSON (bvn-plan anatomy --json) among the schema's $defs.
ANATOMY_RECORD = "anatomy_report"


@functools.cache
def plan_schema() -> dict:
    """The plan file's schema (JSON Schema 2020-12), read once."""
    return json.loads(SCHEMA_FILE.read_text())


@functools.cache
def _validator(record: str | None) -> jsonschema.Draft202012Validator:
    schema = plan_schema()
    if record is not None:
        schema = {**schema["$defs"][record], "$defs": schema["$defs"]}
    return jsonschema.Draft202012Validator(schema)


def schema_problems(document, record: str | None = None, limit: int = 5) -> list[str]:
    """Up to ``limit`` places where ``document`` breaks the plan schema (``record``: one of its
    $defs instead, e.g. :data:`ANATOMY_RECORD`), each as 'dotted.path: what is wrong'; empty when valid."""
    errors = [leaf for e in _validator(record).iter_errors(document) for leaf in _leaves(e)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or 'top level'}: {_message(e)}" for e in errors[:limit]]


def _leaves(error) -> list:
    """The most specific errors under ``error``: of an anyOf (a level record, a nullable field),
    those of the branch that got furthest into the document, or that failed on more than its type."""
    branches: dict = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    if not branches:
        return [error]
    best = max(branches.values(), key=lambda group: (max(len(e.absolute_path) for e in group),
                                                     any(e.validator != "type" for e in group)))
    if max(len(e.absolute_path) for e in best) <= len(error.absolute_path) and all(e.validator == "type" for e in best):
        return [error]
    return [leaf for e in best for leaf in _leaves(e)]


def _message(error) -> str:
    """What is wrong, without the offending value's whole text."""
    value = error.instance
    if error.validator == "additionalProperties" and isinstance(value, dict):
        extra = sorted(set(value) - set(error.schema.get("properties", {})))
        return f"field(s) the schema does not describe: {', '.join(extra)}"
    if error.validator in ("type", "enum", "const"):
        shown = repr(value) if len(repr(value)) < 60 else type(value).__name__
        expected = {"type": error.validator_value, "enum": error.validator_value, "const": error.validator_value}
        return f"{shown} is not {'one of ' if error.validator == 'enum' else ''}{expected[error.validator]!r}"
    return error.message[:200]


def check_written(document: dict, record: str | None = None) -> dict:
    """``document`` when it follows the schema as JSON (tuples become arrays, as when written);
    otherwise RuntimeError (a bug: the tool wrote a field the schema does not describe, or a wrong type)."""
    problems = schema_problems(json.loads(json.dumps(document)), record)
    if problems:
        raise RuntimeError(f"the {record or 'plan'} document does not follow {SCHEMA_FILE.name}: " + "; ".join(problems))
    return document


# -------------------------------------------------------------------------------------------------
# The field reference


def _type(spec: dict) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name})"
    if "anyOf" in spec:
        return " or ".join(_type(s) for s in spec["anyOf"])
    types = spec.get("type", "any")
    text = " or ".join(types) if isinstance(types, list) else types
    if "items" in spec:
        text = text.replace("array", f"array of {_type(spec['items'])}")
    if spec.get("additionalProperties") not in (None, False, True):
        text += f" of {_type(spec['additionalProperties'])} by key"
    if "const" in spec:
        text += f" = `{spec['const']!r}`"
    if "enum" in spec:
        text += ": " + ", ".join(f"`{v}`" for v in spec["enum"])
    return text


def _rows(spec: dict, prefix: str, required: set) -> list[str]:
    """Table rows of an object's fields, nested inline objects flattened as dotted names."""
    rows = []
    for name, field in spec.get("properties", {}).items():
        mark = "" if name in required else " (optional)"
        rows.append(f"| `{prefix}{name}` | {_type(field)}{mark} | {field.get('description', '')} |")
        if "properties" in field:
            rows += _rows(field, f"{prefix}{name}.", set(field.get("required", ())))
        for sub in (field.get("additionalProperties"), *field.get("anyOf", ())):
            if isinstance(sub, dict) and "properties" in sub:
                rows += _rows(sub, f"{prefix}{name}.*.", set(sub.get("required", ())))
    return rows


def _section(title: str, spec: dict) -> list[str]:
    lines = [f"### {title}", "", spec.get("description", ""), ""]
    rows = _rows(spec, "", set(spec.get("required", ())))
    if rows:
        lines += ["| field | type | meaning |", "|---|---|---|", *rows, ""]
    else:
        lines += [f"Type: {_type(spec)}.", ""]
    return lines


def reference_markdown() -> str:
    """The generated part of docs/plan_json.md: the top level, then each record of the schema."""
    schema = plan_schema()
    lines = [GENERATED_MARK, "", *_section("plan.json (top level)", schema)]
    for name, spec in schema["$defs"].items():
        lines += _section(name, spec)
    return "\n".join(lines).rstrip() + "\n"


def write_reference(path: Path) -> None:
    """Replace the generated part of the reference at ``path`` (keeping its introduction)."""
    text = path.read_text()
    intro = text.split(GENERATED_MARK)[0]
    path.write_text(intro + reference_markdown())


if __name__ == "__main__":
    write_reference(Path(__file__).resolve().parents[2] / "docs" / "plan_json.md")
