"""The layers, checked: which sweep module may import which, and what each process loads.

Dependencies point one way: ``cli -> run -> store``, ``run -> train`` only inside the trial's
child process, ``present -> store``; ``train`` is a leaf over numpy, scikit-learn and Keras; the
foundation modules (``config``, ``errors``, ``log``, ``params``, ``names``, ``space``) are shared
by all. Two kinds of check, after Click's ``tests/test_imports.py``:

* static: every ``import`` statement of every module, lazy ones inside functions included, is
  read from the source and checked against its package's allowlist;
* runtime: a fresh interpreter imports the modules of a layer and reports what ended up in
  ``sys.modules`` (TensorFlow must not load on the read path or in a worker's parent process).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sweep"
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


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ("store", "run", "train", "present"):
        return parts[1]
    if len(parts) == 2 and parts[1] in ("store", "run", "train", "present"):
        return parts[1]
    return "cli" if module == "sweep.cli" else "foundation"


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


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _layer_modules(*layers: str) -> list[str]:
    skip = (*CHILDREN, "sweep.__main__")  # child entry points and the CLI's __main__
    return [m for m in _modules() if _layer(m) in layers and m not in skip]


@pytest.mark.parametrize(
    ("layers", "absent"),
    [
        (("cli",), HEAVY + DATABASE),
        (("foundation", "store", "present"), HEAVY),
        (("run",), HEAVY),
    ],
    ids=["cli", "read-path", "worker-parent"],
)
def test_what_each_process_loads(layers: tuple[str, ...], absent: tuple[str, ...]) -> None:
    loaded = _loaded_after_import(_layer_modules(*layers))
    assert "sweep" in loaded
    assert sorted(loaded & set(absent)) == []


def test_the_training_layer_loads_no_database_code() -> None:
    loaded = _loaded_after_import(_layer_modules("train"))
    assert {"tensorflow", "keras"} <= loaded  # the check would see them
    assert sorted(loaded & set(DATABASE)) == []
