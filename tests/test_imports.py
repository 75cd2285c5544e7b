"""The layers, checked: which sweep module may import which, and what each process loads.

Dependencies point one way: ``cli -> run -> store``, ``run -> train`` only inside the trial's
child process, ``present -> store``; ``train`` is a leaf over numpy, scikit-learn and Keras; the
foundation modules (``config``, ``errors``, ``log``, ``params``, ``names``, ``space``) are shared
by all. Two kinds of check, after Click's ``tests/test_imports.py``:

* static: every ``import`` statement of every module, lazy ones inside functions included, is
  read from the source and checked against its package's allowlist;
* runtime: one interpreter forks once per kind of process (the read-only commands, the
  launching and worker parents, the trial's child, each layer's imports) and reports what each
  loaded (:mod:`tests.support.load_probe`);

and two more: no import cycle among sweep's modules (lazy imports count), and no test imports a
private sweep name or another test module.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "sweep"
TESTS = REPO / "tests"
FOUNDATION = {
    "sweep",
    "sweep.config",
    "sweep.errors",
    "sweep.figure_data",
    "sweep.log",
    "sweep.params",
    "sweep.names",
    "sweep.space",
}
#: The child processes' entry points: the only run/ modules that reach training code.
CHILDREN = ("sweep.run._child", "sweep.run._reference_child")
#: `sweep trial` runs its one trial in its own process: it reaches the engine, inside the call.
IN_PROCESS_TRIAL = ("sweep.run.single",)
HEAVY = ("tensorflow", "keras", "keras_tuner", "sklearn", "scipy")
DATABASE = ("optuna", "sqlalchemy", "psycopg")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    # Imports under `if TYPE_CHECKING:` are for annotations only.
    typing_only = {
        id(child)
        for node in tree.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from sweep.train import engine` imports the module sweep.train.engine.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [m for m in submodules if _is_module(m)] or [node.module]
        else:
            continue
        found.extend((name, node.lineno, id(node) in top_level) for name in names)
    return found


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "sweep":
        return False
    base = PACKAGE.parent.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


#: The command line: the commands, their options with help, and their error mapping.
CLI_MODULES = ("sweep.cli", "sweep.cli_options", "sweep.cli_errors")


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ("store", "run", "train", "present"):
        return parts[1]
    if len(parts) == 2 and parts[1] in ("store", "run", "train", "present"):
        return parts[1]
    return "cli" if module in CLI_MODULES else "foundation"


def _sweep_target(name: str) -> str | None:
    return name if name == "sweep" or name.startswith("sweep.") else None


def _violations() -> list[str]:
    problems = []
    for module, path in _modules().items():
        layer = _layer(module)
        for name, line, top_level in _imports(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            root = name.split(".")[0]
            target = _sweep_target(name)
            target_layer = _layer(target) if target else None
            if module in ("sweep", "sweep.__main__"):
                continue  # the public facade: lazy attributes reach each layer's entry point
            if layer == "foundation":
                if root in HEAVY or (target_layer not in (None, "foundation")):
                    # log masks passwords with the one masking module (stdlib only).
                    if not (module == "sweep.log" and name == "sweep.store.urls"):
                        problems.append(f"{where}: foundation modules import only foundation")
            elif layer == "store":
                if root in HEAVY or target_layer in ("train", "run", "present", "cli"):
                    problems.append(f"{where}: store/ never imports training or TensorFlow")
            elif layer == "present":
                if root in HEAVY or target_layer in ("train", "run", "cli"):
                    problems.append(f"{where}: present/ reads the store only")
            elif layer == "train":
                if root in DATABASE or target_layer in ("store", "run", "present", "cli"):
                    problems.append(f"{where}: train/ is a leaf (no Optuna, no database)")
            elif layer == "run":
                child = module in CHILDREN
                trains = child or module in IN_PROCESS_TRIAL
                if target_layer in ("present", "cli"):
                    problems.append(f"{where}: run/ does not import present/ or the CLI")
                if not child and root in HEAVY:
                    problems.append(f"{where}: the worker's parent process never loads {root}")
                if not trains and target_layer == "train" and target != "sweep.train.data":
                    problems.append(f"{where}: run/ reaches training only in the child process")
            elif layer == "cli" and top_level:
                if root in HEAVY or root in DATABASE or target_layer in ("train", "run"):
                    problems.append(f"{where}: cli imports heavy modules inside commands only")
                if target_layer == "store" and target != "sweep.store.urls":
                    problems.append(f"{where}: cli imports the store inside commands only")
    return problems


def test_every_import_follows_the_layer_rules() -> None:
    assert _violations() == []


def test_the_static_check_sees_lazy_and_top_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import keras\n"
        "def f():\n    from sweep.train import engine\n"
        "    from sweep.errors import SweepError\n    import tensorflow as tf\n"
    )
    found = {(name, top) for name, _, top in _imports(source)}
    assert found == {
        ("os", True),
        ("typing", True),
        ("sweep.train.engine", False),
        ("sweep.errors", False),
        ("tensorflow", False),
    }


def test_the_layers_are_the_folders() -> None:
    layers = {_layer(m) for m in _modules()}
    assert layers == {"foundation", "store", "run", "train", "present", "cli"}
    assert _layer("sweep.store.read") == "store"
    assert _layer("sweep.run._child") == "run"
    assert _layer("sweep.params") == "foundation"


# --- no import cycles ------------------------------------------------------------------------


def _import_graph() -> dict[str, dict[str, int]]:
    """``module -> {sweep module it imports: line}``, lazy imports included, typing-only not."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for name, line, _ in _imports(path):
            if name in modules and name != module:
                edges.setdefault(name, line)
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle per strongly connected group of modules (Tarjan, then BFS)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for group in groups:
        start = min(group)
        paths = {start: [start]}
        frontier = [start]
        while frontier and start not in [t for n in frontier for t in graph[n]]:
            nxt = []
            for node in frontier:
                for target in sorted(graph[node]):
                    if target in group and target not in paths:
                        paths[target] = [*paths[node], target]
                        nxt.append(target)
            frontier = nxt
        last = next(n for n in frontier if start in graph[n])
        cycles.append([*paths[last], start])
    return sorted(cycles)


def _describe_cycle(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    pairs = zip(cycle[:-1], cycle[1:], strict=True)
    steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in pairs]
    return "\n    ".join(steps)


def test_no_import_cycles() -> None:
    graph = _import_graph()
    found = _cycles(graph)
    report = "\n".join(f"  cycle:\n    {_describe_cycle(c, graph)}" for c in found)
    assert not found, f"import cycles among sweep modules (lazy imports count):\n{report}"


def test_the_cycle_check_finds_a_lazy_cycle() -> None:
    graph = {"a": {"b": 3}, "b": {"c": 7}, "c": {"a": 9}, "d": {"a": 1}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []
    assert "a (line 3) -> b" in _describe_cycle(["a", "b", "c", "a"], graph)


# --- what each kind of process loads ---------------------------------------------------------

#: The heavy packages whose loading each kind of process is held to.
WATCHED = ("tensorflow", "keras", "keras_tuner", "sklearn", "optuna", "sqlalchemy", "matplotlib")
#: The trial's child process, run as ``python -m CHILD_MODULE`` (by sweep.run.isolation).
CHILD_MODULE = "sweep.run._child"
#: stage -> (heavy packages it may load, packages or modules it must load, modules it must not).
#: "must load" keeps each check honest: it shows the probe would see a package if it came.
PROCESSES: dict[str, tuple[set[str], set[str], set[str]]] = {
    # `import sweep.names` and `import sweep` (the facade): the standard library only.
    "sweep.names": (set(), set(), {"numpy", "scipy", "pandas"}),
    "import sweep": (set(), set(), {"pandas"}),
    # The engine imports TensorFlow only when a trial runs.
    "import sweep.train.engine": (
        {"sklearn"},
        set(),
        {"sweep.store", "sweep.run", "sweep.present", "sweep.cli"},
    ),
    # Each layer's modules, all imported (the static rules' runtime counterpart).
    "cli layer": (set(), set(), {"psycopg", "scipy"}),
    "read layers": ({"optuna", "sqlalchemy"}, {"sweep.store.read"}, {"scipy"}),
    "run layer": ({"optuna", "sqlalchemy"}, {"sweep.run.worker"}, {"scipy", "sweep.train.engine"}),
    # sweep best/status/trials/studies on a SQLite study.
    "read commands": (
        {"optuna", "sqlalchemy"},
        {"optuna", "sqlalchemy"},
        {"sweep.train", "sweep.run.worker"},
    ),
    # sweep launch --no-run: splitting the file brings scikit-learn's model_selection; the
    # supervised reference's classifier stays in its own child.
    "launch parent": (
        {"optuna", "sqlalchemy", "sklearn"},
        {"sklearn.model_selection"},
        {"sklearn.linear_model", "sweep.train.engine", "sweep.train.model"},
    ),
    # sweep worker, start-up to exit (budget met): the worker's parent process.
    "worker parent": (
        {"optuna", "sqlalchemy"},
        {"optuna"},
        {"sweep.train.engine", "sweep.train.model", "sweep.train.metrics"},
    ),
    # The trial's child as a warm spare prepares (TensorFlow, the engine, the data), then every
    # module of train/ imported: no database code, no study layer.
    "trial child": (
        {"tensorflow", "keras", "keras_tuner", "sklearn", "matplotlib"},
        {"tensorflow", "keras", "sweep.train.engine", "sweep.train.kerastuner"},
        {"psycopg", "sweep.store", "sweep.present", "sweep.run.worker", "sweep.run.objective"},
    ),
}


def _layer_modules(*layers: str) -> list[str]:
    skip = (*CHILDREN, "sweep.__main__")  # child entry points and the CLI's __main__
    return [m for m in _modules() if _layer(m) in layers and m not in skip]


def _load_report(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("SWEEP_STORAGE", "SWEEP_STUDY", "SWEEP_DATA"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.load_probe", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _present(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_what_each_kind_of_process_loads(tmp_path: Path) -> None:
    from sweep.train.synth import write_synthetic
    from tests.support.study_writer import write_study

    url = f"sqlite:///{tmp_path / 'study.db'}"
    write_study(url, "ro", 3)
    data = write_synthetic(tmp_path / "data.npz", 240, seed=0)  # not synthetic_npz: no training
    spec = {
        "stages": list(PROCESSES),
        "study": "ro",
        "space": str(REPO / "search_spaces" / "tiny.yaml"),
        "data": str(data),
        "child_module": CHILD_MODULE,
        "env": {"SWEEP_STORAGE": url},
        "layers": {
            "cli": _layer_modules("cli"),
            "read": _layer_modules("foundation", "store", "present"),
            "run": _layer_modules("run"),
            "train": _layer_modules("train"),
        },
    }
    report = _load_report(spec)
    problems = []
    table = []
    for stage, (allowed, required, forbidden) in PROCESSES.items():
        result = report[stage]
        if result["error"]:
            problems.append(f"{stage}: failed to run:\n{result['error']}")
            continue
        modules = result["modules"]
        heavy = sorted(p for p in WATCHED if _present(modules, p))
        table.append(f"  {stage:26} {result['seconds']:5.1f} s  {', '.join(heavy) or '-'}")
        if extra := sorted(set(heavy) - allowed):
            problems.append(f"{stage}: loads {extra} (may load only {sorted(allowed) or 'none'})")
        if missing := sorted(r for r in required if not _present(modules, r)):
            problems.append(f"{stage}: did not load {missing}: does the probe still run it?")
        if banned := sorted(f for f in forbidden if _present(modules, f)):
            problems.append(f"{stage}: loads {banned}")
    loaded = "\n".join(table)
    assert not problems, "\n".join(problems) + f"\nheavy packages each stage loaded:\n{loaded}"


# --- tests import no private sweep name and no other test module -----------------------------

#: ``(test file, imported name)`` pairs waiting for a public name in sweep/store or sweep/run
#: (owned by the protocol refactor); the lead replaces each and removes it here.
KNOWN_PRIVATE_IMPORTS = {
    ("tests/store/test_confirm.py", "sweep.store.confirm._spread"),
    ("tests/store/test_optuna_schema.py", "sweep.store._optuna_schema"),
    ("tests/store/test_report.py", "sweep.store._optuna_schema"),
    ("tests/run/test_spare.py", "sweep.run._child"),
    ("tests/run/test_spare.py", "sweep.run.isolation._Child"),
    ("tests/run/test_spare.py", "sweep.run.isolation._drive"),
}
SUPPORT = TESTS / "support"


def _imported_names(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    """Every name an import statement in ``path`` binds, fully qualified (relative resolved)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return found


def _private_sweep_name(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "sweep" and any(p.startswith("_") and not p.startswith("__") for p in parts)


def _test_module(name: str, importer: Path) -> Path | None:
    """The module under tests/ outside tests/support/ that ``name`` resolves to, if any.

    Absolute (``tests.run.test_x``), path-style (``conftest``, ``test_x``, ``faults.helpers``:
    tests/ or the importer's folder on ``sys.path``) and relative imports are all resolved."""
    parts = name.split(".")
    roots = [REPO] if parts[0] == "tests" else [TESTS, importer.parent]
    for root in roots:
        for end in range(len(parts), 0, -1):
            base = root.joinpath(*parts[:end])
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    inside = candidate.resolve()
                    return None if inside.is_relative_to(SUPPORT) else inside
    return None


def _test_import_problems(root: Path = TESTS) -> tuple[list[str], set[tuple[str, str]]]:
    problems = []
    known_seen = set()
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(REPO).as_posix()
        is_support = path.resolve().is_relative_to(SUPPORT)
        for name, line in _imported_names(path):
            if _private_sweep_name(name):
                if (where, name) in KNOWN_PRIVATE_IMPORTS:
                    known_seen.add((where, name))
                else:
                    problems.append(f"{where}:{line} imports {name}: a private sweep name")
            target = None if is_support else _test_module(name, path)
            if target is not None and target != path.resolve():
                shown = target.relative_to(REPO).as_posix()
                problems.append(
                    f"{where}:{line} imports {name} ({shown}): shared helpers go in "
                    "tests/support/ or a conftest.py fixture"
                )
    return problems, known_seen


def test_tests_import_no_private_name_and_no_other_test() -> None:
    problems, known_seen = _test_import_problems()
    assert not problems, "\n".join(problems)
    fixed = sorted(KNOWN_PRIVATE_IMPORTS - known_seen)
    assert not fixed, f"no longer imported, remove from KNOWN_PRIVATE_IMPORTS: {fixed}"


def test_the_test_import_check_sees_each_kind() -> None:
    probe = TESTS / "run" / "test_probe_example.py"  # resolved as if it lived in tests/run/
    source = (
        "from sweep.train.engine import _score\nfrom sweep.run import _child\n"
        "import sweep.store._optuna_schema\nfrom conftest import run_sweep\n"
        "from test_objective import tiny\nfrom tests.store.test_report import x\n"
        "from tests.support.cli import run_sweep\nfrom sweep.names import metric_names\n"
        "from .test_spare import y\n"
    )
    names = dict(_imported_names(probe, source))
    private = sorted(n for n in names if _private_sweep_name(n))
    assert private == [
        "sweep.run._child",
        "sweep.store._optuna_schema",
        "sweep.train.engine._score",
    ]
    tests = sorted(
        str(t.relative_to(REPO)) for n in names if (t := _test_module(n, probe)) is not None
    )
    assert tests == [
        "tests/conftest.py",
        "tests/run/test_objective.py",
        "tests/run/test_spare.py",
        "tests/store/test_report.py",
    ]
