"""Shared plumbing of the figure modules: matplotlib on the Agg backend, one style, PNG files.

matplotlib is imported only when a figure is drawn, so the read-only commands that never draw
(``best``, ``status``, ``trials``) do not pay for it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.errors import UsageError

DPI = 100
#: One colour per curve kind, the same in every figure.
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"
ACTUAL_COLOR = "#4d4d4d"
PREDICTED_COLOR = "#ff7f0e"


@dataclass(frozen=True)
class Figure:
    """A written figure: its file name (relative to the output folder), title and caption."""

    file: str
    title: str
    caption: str = ""


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display), with sweep's plain style."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.style.use("default")  # Optuna's plots switch the global style to ggplot
    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 9,
            "axes.titlesize": 10,
            "legend.fontsize": 8,
            "legend.framealpha": 0.8,
        }
    )
    return plt


def save(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG (tight bounding box, white background) and close it."""
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", facecolor="white")
    plt.close(fig)


def log_x(ax: Any) -> None:
    """Put ``ax``'s x axis on a log scale, labelling major ticks only (no overlapping labels)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    """Rows and columns of a grid of ``n`` panels, at most ``max_cols`` wide."""
    cols = max(1, min(max_cols, n))
    return max(1, math.ceil(n / cols)), cols


def prepare_out_dir(path: str | Path, force: bool) -> Path:
    """Check an output folder before anything is written; refuses a non-empty one.

    Nothing is created here: call :func:`make_out_dir` once the data is read.

    Raises:
        UsageError: ``path`` is a file, or a non-empty folder and ``force`` is not set.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out}: folder exists and is not empty; pass --force to overwrite")
    return out


def make_out_dir(out: Path) -> Path:
    """Create the output folder (and parents)."""
    out.mkdir(parents=True, exist_ok=True)
    return out
