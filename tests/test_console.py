"""What people read: the console summaries, summary.txt and the HTML report, measured on the
output of real runs (the ``written`` fixture, tests/conftest.py): no "-0", no exponent notation,
points in mm even for a mesh in metres, every warning names its level, plain-word labels and
every source once in the report, and the small command-line problems of issue 19."""

import ast
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bvn_plan import text
from bvn_plan.cli import main
from bvn_plan.device import SOURCES as DEVICE_SOURCES
from bvn_plan.workflow.case import CASE_WORKERS
from bvn_plan.workflow.eligibility import SOURCES as ELIGIBILITY_SOURCES

PROJECT = Path(__file__).resolve().parents[1]
NEGATIVE_ZERO = re.compile(r"(?<![\w.])-0(?:\.0+)?(?![\d.])")
EXPONENT = re.compile(r"\d\.?\d*[eE][-+]?\d")


def _people_texts(written) -> dict[str, str]:
    """Everything a person reads: console output of each run, summary.txt, summary.csv, reports
    (without their style sheet)."""
    root = written["root"]
    texts = {f"{name} output": run.output for name, run in written["runs"].items()}
    for path in [*root.rglob("summary.txt"), *root.rglob("summary.csv"), *root.rglob("*.html")]:
        page = re.sub(r"<style>.*?</style>", "", path.read_text(), flags=re.S)
        texts[str(path.relative_to(root))] = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    return texts


def test_number_never_reads_minus_zero_or_exponent():
    assert [text.number(x) for x in (-0.04, -0.0, 0.04, -0.05, 5.1758e-06, float("nan"), None)] == \
        ["0.0", "0.0", "0.0", "-0.1", "0.0", "n/a", "n/a"]
    assert text.number(-0.4, 0) == "0" and text.point([-0.01, 5e-7, -12.34]) == "(0.0, 0.0, -12.3) mm"


def test_no_minus_zero_and_no_exponent_in_any_output(written):
    texts = _people_texts(written)
    assert len(texts) >= 10, sorted(texts)
    for name, body in texts.items():
        assert not NEGATIVE_ZERO.search(body), f"{name}: ...{body[max(0, NEGATIVE_ZERO.search(body).start() - 60):][:120]}"
        assert not EXPONENT.search(body), f"{name}: ...{body[max(0, EXPONENT.search(body).start() - 60):][:120]}"


def test_a_mesh_in_metres_prints_its_points_in_mm(written):
    run = written["runs"]["anatomy"]
    report = json.loads(written["files"]["anatomy"].read_text())
    assert report["input_units"] == "m"
    assert text.point(report["landmarks_mm"]["bvn_terminus"]) in run.stdout
    assert "{" not in run.stdout  # a summary, not raw JSON


def test_every_warning_names_its_level(written):
    for name, level, source in (("anatomy", "L4", "L4_whole_original_metres.obj"), ("case", "L3", "L3_whole.stl"),
                                ("plan", "L4", "L4_whole.stl"), ("demo", "S1", "S1.ply")):
        warnings = [line for line in written["runs"][name].stderr.splitlines() if line.startswith("warning:")]
        assert warnings or name in ("demo", "case"), name
        for line in warnings:
            assert line.startswith(f"warning: {level}: ") or source in line, f"{name}: {line}"


def test_the_demo_s1_reads_its_body_width_near_the_prior(written):
    """The synthetic S1's alae sit below its superior endplate as a real sacrum's do, so the body
    width (a chord just under the endplate) is the body's: no 'body_width ... SD from the S1 prior'."""
    from bvn_plan.levels import MORPHOMETRY

    assert "body_width" not in written["runs"]["demo"].stderr, written["runs"]["demo"].stderr
    width = json.loads(written["files"]["demo"].read_text())["levels"]["S1"]["landmarks"]["morphometry"]["body_width_mm"]
    assert abs(width - MORPHOMETRY["S1"].body_width_mm) < 5.0


def test_case_prints_a_summary_and_writes_its_record_with_json(written):
    run = written["runs"]["case"]
    assert "{" not in run.stdout and "L3" in run.stdout and "eligibility" in run.stdout
    record = json.loads(written["files"]["case_result"].read_text())
    assert [row["level"] for row in record["levels"]] == ["L3"]
    numbers = [v for row in record["levels"] for k, v in row.items() if k.endswith(("_mm", "_deg"))]
    assert numbers and all(v is None or isinstance(v, float) for v in numbers)  # numbers, not strings


def test_the_report_speaks_plain_words_and_cites_each_source_once(written):
    page = (written["root"] / "case" / "report.html").read_text()
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert not [c for c in cells if re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", c)], "snake_case keys shown"
    assert "None" not in cells and "met" not in cells
    assert "Acute episode (days)" in cells and "not given" in cells
    assert "Soft-tissue part of the drawn path, to bone entry (mm)" in cells
    for source in {*DEVICE_SOURCES.values(), *ELIGIBILITY_SOURCES.values()} - {"label only"}:
        assert page.count(html.escape(source)) == 1, source


def test_case_help_shows_the_default_worker_count():
    run = CliRunner().invoke(main, ["case", "--help"])
    assert f"[default: {CASE_WORKERS}]" in " ".join(run.output.split()) and "CASE_WORKERS" not in run.output


def test_lesion_says_what_it_wrote(tmp_path):
    mesh = Path(__file__).resolve().parents[1] / "meshes" / "L4.ply"
    out = tmp_path / "lesion.stl"
    run = CliRunner().invoke(main, ["lesion", str(mesh), "--tip", "0", "-5", "0", "--direction", "-1", "0", "0",
                                    "--out", str(out), "--json", str(tmp_path / "lesion.json")])
    assert run.exit_code == 0, run.output
    assert f"wrote {out}" in run.output and out.stat().st_size > 1000
    assert json.loads((tmp_path / "lesion.json").read_text())["written"] == [str(out)]
    field = CliRunner().invoke(main, ["lesion", str(mesh), "--tip", "0", "-5", "0", "--direction", "-1", "0", "0",
                                      "--field", str(tmp_path / "f.vti")])
    assert field.exit_code == 2 and "thermal model" in field.output


def test_show_without_a_display_is_a_clear_error(written, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    run = CliRunner().invoke(main, ["show", str(written["files"]["demo"])])
    assert run.exit_code == 2 and "--png" in run.output and "Traceback" not in run.output


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_help_gives_the_whole_first_paragraph(script):
    run = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    module_doc = ast.get_docstring(ast.parse((EXAMPLES / script).read_text()))
    first = " ".join(module_doc.split("\n\n")[0].split())
    assert first.rstrip().endswith((".", ":")) and first in " ".join(run.stdout.split())


def test_render_spine_takes_a_folder_as_the_other_examples(tmp_path):
    out = tmp_path / "pictures"
    run = subprocess.run([sys.executable, str(EXAMPLES / "render_spine.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (out / "spine_L1_S1.png").stat().st_size > 10_000 and f"wrote {out / 'spine_L1_S1.png'}" in run.stdout


def test_voxel_bioheat_reports_every_time_step_for_its_progress_bar(vhm_dir):
    from bvn_plan import Vertebra
    from bvn_plan.thermal import VoxelGrid, simulate_voxel

    calls = []
    bone = Vertebra.load(vhm_dir / "L4_whole.stl").mesh
    simulate_voxel(bone, [([16.0, 0.0, 64.0], [0.0, 1.0, 0.0])], grid=VoxelGrid(spacing_mm=0.5, half_width_mm=8.0,
                                                                              time_step_s=60.0),
                   progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert calls == [(i, total) for i in range(1, total + 1)] and total >= 15  # 900 s in 60 s steps and a start


def test_plan_and_check_print_their_tables_and_show_writes_json(written, vhm_dir, tmp_path):
    """plan shows every approach and side in a table (the same options as its --json); check its
    rules with clearance and margin; show says what it drew and writes the same as JSON."""
    plan_run = written["runs"]["plan"]
    assert "every approach and side" in plan_run.output
    assert re.search(r"right\s+│\s+transpedicular\s", plan_run.output) and re.search(r"left\s+│\s+transpedicular\s", plan_run.output)
    run = CliRunner().invoke(main, ["check", str(vhm_dir / "L4_whole.stl"), "--level", "L4", "--point", "60", "0", "66",
                                    "--point", "12", "0", "66", "--json", str(tmp_path / "check.json")])
    document = json.loads((tmp_path / "check.json").read_text())
    assert run.exit_code == 4 and "L4: FAIL" in run.output
    for rule in document["rules"]:
        assert rule["rule"] in run.output
    assert re.search(r"rules\s.*clearance.*margin", run.output, re.S)
    assert "bone entry: outside the windows (great vessels)" in run.output
    shown = CliRunner().invoke(main, ["show", str(written["files"]["plan"]), "--png", str(tmp_path / "show.png"),
                                      "--json", str(tmp_path / "show.json")])
    record = json.loads((tmp_path / "show.json").read_text())
    assert shown.exit_code == 0 and record["level"] == "L4" and record["png"] == str(tmp_path / "show.png")
    assert f"the {record['side']} {record['approach']} path" in shown.output and (tmp_path / "show.png").is_file()



def test_plan_and_the_report_say_one_probe_or_two(written):
    """The plan of the real L4 prints one probe and why (a pair is planned at L5/S1 only); the
    demo's S1 report shows the pair it planned, each path checked alone and with the union lesion."""
    plan_run = written["runs"]["plan"]
    assert "probes: one probe recommended: a pair is planned only at L5, S1" in " ".join(plan_run.output.split())
    page = (written["root"] / "demo" / "report.html").read_text()
    section = page.split("<h3>One probe or two</h3>")[1].split("<h3>")[0]
    document = json.loads(written["files"]["demo"].read_text())
    probes = document["levels"]["S1"]["two_probes"]
    assert f"<b>{probes['recommendation']}</b>" in section
    pair = probes["pair"]
    assert pair is not None and f"tips {text.number(pair['tip_separation_mm'])} mm apart" in section
    assert section.count("<td>right</td>") == 1 and section.count("<td>left</td>") == 1
    assert [c["verdict"] for c in pair["union_checks"]] == ["pass", "pass"]
