"""benchmarks/fault_report.py: JUnit parsing, the rendered file, hand-written notes kept."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.faults.test_kill" name="test_sigkill[sqlite]" time="61.5">
<system-out>
[faults] SIGKILL sqlite: seed 7 (replay with SWEEP_FAULT_SEED=7)
noise
[faults] SIGKILL sqlite: kills 6 | lost 0</system-out></testcase>
<testcase classname="tests.faults.test_stalls" name="test_budget" time="2.0">
<failure message="AssertionError: 2 trials&#10;more">trace</failure></testcase>
<testcase classname="tests.faults.test_postgres_restart" name="test_restart" time="0.0">
<skipped message="restarting PostgreSQL needs root" /></testcase>
</testsuite></testsuites>
"""


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fault_report", REPO / "benchmarks/fault_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_report_holds_each_tests_figures_and_keeps_the_notes(tmp_path: Path) -> None:
    report = _module()
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    cases = report.parse_junit(junit)
    assert [(c.test, c.outcome) for c in cases] == [
        ("tests/faults/test_kill.py::test_sigkill[sqlite]", "passed"),
        ("tests/faults/test_stalls.py::test_budget", "failed"),
        ("tests/faults/test_postgres_restart.py::test_restart", "skipped"),
    ]
    assert cases[0].lines == [
        "SIGKILL sqlite: seed 7 (replay with SWEEP_FAULT_SEED=7)",
        "SIGKILL sqlite: kills 6 | lost 0",
    ]
    assert cases[1].message == "AssertionError: 2 trials"
    old = f"# old figures\n\nstale text\n{report.NOTES_MARKER}\n\n## Reading notes\n\nkept.\n"
    run = report.Run(
        args=["tests", "-m", "faults", "-q"],
        started=datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc),
        seconds=63.5,
        exit_code=1,
        summary=report._summary("..F\n=== 1 failed, 1 passed, 1 skipped in 63.50s ===\n"),
        load_before=2.0,
        load_after=3.5,
    )
    text = report.render(run, cases, report.notes_of(old), ["Machine: test"])
    assert "python benchmarks/fault_report.py tests -m faults -q" in text
    assert "**1 failed, 1 passed, 1 skipped in 63.50s** (pytest exit code 1)" in text
    assert "kills 6 \\| lost 0" in text and "stale text" not in text
    assert text.endswith(f"{report.NOTES_MARKER}\n\n## Reading notes\n\nkept.\n")
    assert report.notes_of(text) == report.notes_of(old)  # a rerun keeps the notes as they are
    assert report.notes_of("no marker") == report.DEFAULT_NOTES
