"""The plan file's schema and its field reference: every plan.json that ``plan``, ``case``,
``batch`` and ``demo`` write follows the schema shipped in the package and opens with
``show --png``; the anatomy JSON follows its record; a file breaking the schema is refused on
read (exit code 2) and a document with an undescribed field is never written; docs/plan_json.md
describes exactly the schema's fields, each length in mm, each angle in degrees, each point with
its frame."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bvn_plan
from bvn_plan.cli import main
from bvn_plan.errors import InputError
from bvn_plan.planning import ANATOMY_RECORD, plan_document, plan_schema, read_plan, schema_problems
from bvn_plan.planning.plan_schema import GENERATED_MARK, SCHEMA_FILE, reference_markdown

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "plan_json.md"


def _run(args):
    run = CliRunner().invoke(main, [str(a) for a in args])
    assert run.exception is None or isinstance(run.exception, SystemExit), run.output
    return run


@pytest.mark.parametrize("writer", ["plan", "case", "batch", "demo"])
def test_every_written_plan_follows_the_schema_and_opens_with_show(written, writer, tmp_path):
    assert written["runs"][writer].exit_code in (0, 4), written["runs"][writer].output
    document = json.loads(written["files"][writer].read_text())
    assert schema_problems(document) == []
    level = next(name for name, entry in document["levels"].items() if entry.get("approaches"))
    png = tmp_path / "show.png"
    run = _run(["show", written["files"][writer], "--level", level, "--png", png])
    assert run.exit_code == 0, run.output
    pixels = np.asarray(Image.open(png).convert("RGB"), float)
    assert pixels.reshape(-1, 3).std(axis=0).max() > 20  # a drawn scene, not a blank canvas


def test_the_anatomy_json_follows_its_record(written):
    assert written["runs"]["anatomy"].exit_code == 0
    assert schema_problems(json.loads(written["files"]["anatomy"].read_text()), ANATOMY_RECORD) == []


def test_the_schema_is_shipped_in_the_package():
    assert SCHEMA_FILE.parent == Path(bvn_plan.__file__).parent / "planning"
    assert re.fullmatch(r".*plan.*schema.*\.json", SCHEMA_FILE.name)
    assert plan_schema()["properties"]["format_version"]["const"] == bvn_plan.planning.FORMAT_VERSION


def test_a_document_with_an_undescribed_field_is_never_written(written):
    level = json.loads(written["files"]["demo"].read_text())["levels"]["S1"]
    level["approaches"][0]["plan"]["lucky_number_mm"] = 7.0
    with pytest.raises(RuntimeError, match="lucky_number_mm"):
        plan_document({"S1": level})


def test_a_plan_file_breaking_the_schema_is_refused_with_the_field(written, tmp_path):
    demo = written["files"]["demo"]
    document = json.loads(demo.read_text())
    document["levels"]["S1"]["approaches"][0]["plan"]["verdict"] = "probably fine"
    document["levels"]["S1"]["mesh"]["path"] = str(demo.parent / document["levels"]["S1"]["mesh"]["path"])
    broken = tmp_path / "plan.json"
    broken.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"levels\.S1\.approaches\.0\.plan\.verdict"):
        read_plan(broken)
    run = _run(["show", broken, "--png", tmp_path / "x.png"])
    assert run.exit_code == 2 and "plan schema" in run.output and "Traceback" not in run.output


# --- the field reference -------------------------------------------------------------------------


def _schema_fields(spec: dict, prefix: str) -> set[str]:
    fields = set()
    for name, field in spec.get("properties", {}).items():
        fields.add(prefix + name)
        fields |= _schema_fields(field, f"{prefix}{name}.")
        for sub in (field.get("additionalProperties"), *field.get("anyOf", ())):
            if isinstance(sub, dict):
                fields |= _schema_fields(sub, f"{prefix}{name}.*.")
    return fields


def _reference_fields(text: str) -> set[str]:
    """'section.field' for every table row of the reference's generated part."""
    fields, section = set(), None
    for line in text.split(GENERATED_MARK, 1)[1].splitlines():
        if line.startswith("### "):
            section = "plan.json" if line.startswith("### plan.json") else line[4:].strip()
        match = re.match(r"\| `([^`]+)` \|", line)
        if match:
            fields.add(f"{section}.{match.group(1)}")
    return fields


def test_the_reference_covers_every_field_of_the_schema():
    schema = plan_schema()
    expected = _schema_fields(schema, "plan.json.")
    for name, record in schema["$defs"].items():
        expected |= _schema_fields(record, f"{name}.")
    text = REFERENCE.read_text()
    assert _reference_fields(text) == expected
    assert text.split(GENERATED_MARK, 1)[1] == reference_markdown().split(GENERATED_MARK, 1)[1], \
        "docs/plan_json.md is stale: run python -m bvn_plan.planning.plan_schema"


def _properties(spec: dict, path: str = ""):
    for name, field in spec.get("properties", {}).items():
        yield f"{path}{name}", name, field
        yield from _properties(field, f"{path}{name}.")
        for sub in (field.get("additionalProperties"), *field.get("anyOf", ())):
            if isinstance(sub, dict):
                yield from _properties(sub, f"{path}{name}.*.")


def test_every_field_says_its_unit_frame_and_sign():
    schema = plan_schema()
    records = [("", schema)] + [(f"{name}.", record) for name, record in schema["$defs"].items()]
    for prefix, record in records:
        for path, name, field in _properties(record, prefix):
            text = field.get("description", "")
            assert len(text) > 8, f"{path} has no description"
            numeric = field.get("type") not in ("object", "string")
            if name.endswith("_mm") and numeric:
                assert "mm" in text, f"{path}: no unit in {text!r}"
            if name.endswith("_deg") and numeric:
                assert "degree" in text, f"{path}: no unit in {text!r}"
            if field.get("$ref", "").endswith("/point") or "point" in str(field.get("anyOf", "")):
                assert "frame" in text or "model coordinates" in text, f"{path}: no frame in {text!r}"
            if numeric and ("craniocaudal" in name or "medial_angle" in name):
                assert "positive" in text.lower(), f"{path}: no sign convention in {text!r}"
