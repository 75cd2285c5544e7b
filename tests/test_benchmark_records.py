"""The benchmarks' shared records writer (benchmarks/_records.py): blocks never clobber others."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import _records  # noqa: E402


def test_rerunning_one_benchmark_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    _records.write_block("best_speed", "## best\n\nfirst run", path)
    _records.write_block("db_scale", "## db\n\ntable 1", path)
    _records.write_block("trial_speed", "## trial speed\n\nrun 1", path)
    _records.write_block("best_speed", "## best\n\nsecond run", path)
    text = path.read_text()
    assert _records.read_block(text, "best_speed") == "## best\n\nsecond run"
    assert _records.read_block(text, "db_scale") == "## db\n\ntable 1"
    assert _records.read_block(text, "trial_speed") == "## trial speed\n\nrun 1"
    assert "first run" not in text
    assert [k for k, _, _ in _records.blocks(text)] == ["best_speed", "db_scale", "trial_speed"]
    assert text.startswith("# Benchmark results")


def test_text_outside_blocks_is_kept_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    before = "# Title\n\nHand-written intro.\n\n<!-- begin: a -->\nold\n<!-- end: a -->\n\nTail.\n"
    path.write_text(before)
    _records.write_block("a", "new\nlines", path)
    assert path.read_text() == before.replace("old", "new\nlines")


def test_a_variant_goes_after_its_group_not_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    _records.write_block("trial_speed", "main", path)
    _records.write_block("sweep_overhead", "overhead", path)
    _records.write_block("trial_speed/--epochs 2", "repeat", path)
    _records.write_block("trial_speed/--epochs 3", "repeat 3", path)
    _records.write_block("trial_speed", "main again", path)
    keys = [k for k, _, _ in _records.blocks(path.read_text())]
    assert keys == [
        "trial_speed",
        "trial_speed/--epochs 2",
        "trial_speed/--epochs 3",
        "sweep_overhead",
    ]
    assert _records.read_block(path.read_text(), "trial_speed/--epochs 2") == "repeat"


@pytest.mark.parametrize(
    "broken",
    [
        "<!-- begin: a -->\nno end\n",
        "<!-- end: a -->\n",
        "<!-- begin: a -->\n<!-- begin: b -->\n<!-- end: b -->\n<!-- end: a -->\n",
        "<!-- begin: a -->\n<!-- end: a -->\n<!-- begin: a -->\n<!-- end: a -->\n",
    ],
)
def test_unpaired_markers_refuse_and_leave_the_file(tmp_path: Path, broken: str) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(broken)
    with pytest.raises(_records.RecordsError):
        _records.write_block("a", "body", path)
    assert path.read_text() == broken


def test_keys_that_would_break_a_marker_are_refused(tmp_path: Path) -> None:
    for key in ("", "a -->", "a\nb", " a"):
        with pytest.raises(_records.RecordsError):
            _records.write_block(key, "x", tmp_path / "R.md")


def test_load_statement_follows_the_numbers() -> None:
    quiet = _records.load_statement((0.1, 0.2, 0.3), (1.9, 1.0, 0.5), [1.5, 2.0], cores=2)
    assert "Quiet machine" in quiet and "Shared" not in quiet
    assert "max 2.0" in quiet and "after: 1.9/1.0/0.5" in quiet
    busy = _records.load_statement((3.1, 3.0, 2.0), None, cores=2)
    assert "Shared machine" in busy and "3.1 of 2 cores" in busy and "Quiet" not in busy


def test_provenance_names_command_machine_load_and_versions() -> None:
    monitor = _records.LoadMonitor(interval_s=0.01)
    with monitor:
        pass
    text = _records.provenance(".venv/bin/python benchmarks/x.py --n 1", monitor)
    for needle in ("Command: `", "Date: ", "cores", "Python ", "TensorFlow ", "Optuna ", "Load "):
        assert needle in text


def test_every_benchmark_writes_through_the_shared_writer() -> None:
    for script in ("best_speed.py", "trial_speed.py", "sweep_overhead.py", "db_scale.py"):
        source = (REPO / "benchmarks" / script).read_text()
        assert "_records.write_block(" in source, script
        for other_writer in ("def write_section", "def write_results", '"a", encoding'):
            assert other_writer not in source, script


def test_results_md_blocks_pair_up() -> None:
    text = (REPO / "benchmarks" / "RESULTS.md").read_text()
    keys = [k for k, _, _ in _records.blocks(text)]
    assert {"best_speed", "trial_speed", "sweep_overhead"} <= set(keys)


def test_trial_speed_repeat_is_its_own_block_keyed_by_arguments() -> None:
    import trial_speed

    def args(**changes: object) -> argparse.Namespace:
        values: dict[str, object] = {
            "rows": 10_000,
            "epochs": 1,
            "warmup": 1,
            "variants": ",".join(trial_speed.DEFAULT_VARIANTS),
        }
        values.update(changes)
        return argparse.Namespace(**values)

    assert trial_speed.block_key(args()) == "trial_speed"
    repeat = args(epochs=2, variants="a-notes,b-default")
    key = trial_speed.block_key(repeat)
    assert key == "trial_speed/--epochs 2 --variants a-notes,b-default"
    rows = [
        {
            "variant": "a-notes",
            "s_per_epoch": 2.0,
            "steps_per_epoch": 10,
            "auroc": 0.7,
            "output_mse": 0.1,
            "loadavg": [0.1, 0.2],
        }
    ]
    ceiling = {"best_gflops": 100.0, "median_gflops": 90.0}
    text = trial_speed.render(rows, ceiling, repeat, 1000, 60.0, None)
    assert text.startswith("### Trial speed, variant: --epochs 2 --variants a-notes,b-default")
    assert "other jobs shared" not in text
    main = trial_speed.render(rows, ceiling, args(), 1000, 60.0, None)
    assert main.startswith("## Trial speed\n")
