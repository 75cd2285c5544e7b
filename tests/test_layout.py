"""The README's Layout section names every module under sweep/, and nothing that is not there.

The section is a code block after ``## Layout``: a package line (``sweep/store/``) opens a
folder, the indented lines under it name that folder's modules (several may share a line); a
top-level module is named with its path (``sweep/config.py``). ``__init__.py`` and
``__main__.py`` are package plumbing and need no line.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PACKAGE = REPO / "sweep"
MODULE = re.compile(r"(?<![\w./-])((?:sweep/)?(?:\w+/)*\w+\.py)\b")


def _layout_section(text: str) -> str:
    start = text.index("\n## Layout")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def listed_modules(section: str) -> set[str]:
    """Repository-relative paths of the modules the section's code blocks name."""
    listed: set[str] = set()
    folder = "sweep/"
    blocks = section.split("```")[1::2]  # the text inside each fence
    for line in "\n".join(blocks).splitlines():
        head = line.split()[0] if line.strip() else ""
        if not line.startswith(" ") and re.fullmatch(r"sweep/(\w+/)*", head):
            folder = head  # a package line: `sweep/store/  the study database ...`
        elif not line.startswith(" ") and head.startswith("sweep/"):
            folder = "sweep/"  # a top-level module line
        for name in MODULE.findall(line):
            listed.add(name if name.startswith("sweep/") else folder + name)
    return listed


def modules_on_disk() -> set[str]:
    return {
        p.relative_to(REPO).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }


def test_the_readme_layout_names_every_module() -> None:
    listed = listed_modules(_layout_section(README.read_text(encoding="utf-8")))
    on_disk = modules_on_disk()
    missing = sorted(on_disk - listed)
    gone = sorted(listed - on_disk)
    assert not missing, (
        "README.md `## Layout` leaves out these modules; add one line each, under its package "
        f"(its docstring's first line is a good start): {missing}"
    )
    assert not gone, f"README.md `## Layout` names modules that do not exist: {gone}"


def test_the_layout_parser_reads_folders_and_shared_lines() -> None:
    section = (
        "## Layout\n`tests/test_imports.py` checks it\n```\n"
        "sweep/cli.py   the command          sweep/names.py  names\n"
        "sweep/run/     orchestration\n"
        "  isolation.py   a child   _child.py  its entry point (_reference_child.py)\n"
        "sweep/space.py   spaces\n"
        "```\n"
    )
    assert listed_modules(section) == {
        "sweep/cli.py",
        "sweep/names.py",
        "sweep/run/isolation.py",
        "sweep/run/_child.py",
        "sweep/run/_reference_child.py",
        "sweep/space.py",
    }


def test_every_test_path_the_readme_names_exists() -> None:
    named = set(re.findall(r"tests/[\w/]+(?:\.py|/)", README.read_text(encoding="utf-8")))
    assert named, "the README names no test file: is the pattern still right?"
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, f"README.md names test paths that do not exist: {missing}"
