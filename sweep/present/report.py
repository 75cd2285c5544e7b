"""``sweep report``: one study as one self-contained HTML file, or a folder of page and PNGs.

The page opens from disk with no server and no network: inline CSS, no scripts, and the images
either inline (``--out report.html``: ``data:`` URIs, one file) or by relative path (any other
``--out``: a folder with ``index.html`` and ``figures/``; see :mod:`sweep.present.report_out`).
It holds the study summary (space, data file and SHA-256, split, budget, trials by state, time
spent), the best trials in the notes' table with the baseline beside them, a section for
confirmed trials, Optuna's plots (parameter importances only from
:data:`~sweep.present.study_figures.MIN_IMPORTANCE_TRIALS` COMPLETE trials on, a one-line note
below that), every trial's objective per epoch with the baseline drawn apart, the
rate-distortion view, balanced vs original, collapse across trials and the best trial's own
figures. A study of a KerasTuner hypermodel (``config.hypermodel``) shows what applies to it
instead of the VAE's panels: its own Keras history curves across trials and for the best
trial. A study with no COMPLETE trial still gets a page that says so.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import statistics
import tempfile
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sweep.present.formatting import human_duration
from sweep.present.plotting import Figure
from sweep.present.plotting import make_out_dir
from sweep.present.report_out import png_data_uri
from sweep.present.report_out import report_target
from sweep.present.report_out import write_whole
from sweep.store.artifacts import where

if TYPE_CHECKING:
    from sweep.store.records import ReferenceRecord
    from sweep.store.records import StudyRecord
    from sweep.store.records import TrialRecord

FIGURES = "figures"
#: The history key drawn per epoch when no trial reported its objective (no pruner).
_LOSS_CURVE = "val_loss"
TOP = 5
#: Shown for confirmed trials besides the objectives.
REPORT_CONFIRMED_METRICS = (
    "expression_hidden.f1_at_threshold",
    "sections.mean_auprc_lift",
    "latent.active_units",
)


def write_report(
    url: str, name: str, out: str | Path, *, force: bool = False, artifacts: str | None = None
) -> Path:
    """Write the report of study ``name`` to ``out``; return the page's path.

    ``out`` ending in ``.html``/``.htm`` (and not an existing folder) is one self-contained
    file with the figures inline; any other ``out`` is a folder with ``index.html`` and
    ``figures/``. Everything is read before anything is written, through one
    :class:`~sweep.store.read.StudyReader` (one connection): an unknown study, an existing file
    or a non-empty folder (without ``force``) leaves the disk untouched. ``artifacts``:
    ``--artifacts DIR``, where to look first for the study's artifact folder
    (:func:`sweep.store.artifacts.where`).

    Raises:
        UsageError: ``out`` exists and ``force`` is not set (a file, or a non-empty folder), or
            is neither an HTML file nor a folder.
        StudyNotFoundError: no study of that name.
        StorageError: the database cannot be reached or used.
    """
    from sweep.log import quiet_optuna
    from sweep.present.confirmed import confirmed_view
    from sweep.present.confirmed import pick_front_point
    from sweep.present.status import status_view
    from sweep.store.read import StudyReader

    target = report_target(out, force)
    quiet_optuna()
    with StudyReader(url) as reader:
        status = status_view(reader, name)
        study = reader.config(name)
        # a hypermodel study's own curves are its trials' Keras histories
        trials = reader.trials(name, history=study.is_hypermodel)
        best = reader.best(name, TOP)
        baseline = reader.baseline(name)
        reference = reader.reference(name)
        confirmed = confirmed_view(reader, name)
        # Several objectives, once confirmed: the point the stated rule picks (and why it wins,
        # beside the baseline); otherwise the best trial.
        picked = pick_front_point(confirmed) if confirmed else None
        shown = picked if picked is not None else (best[0].number if best else None)
        detailed = reader.trial(name, shown) if shown is not None else None
        if baseline is not None and baseline.state == "COMPLETE" and baseline.number != shown:
            beside = reader.trial(name, baseline.number)
        else:
            beside = None
        optuna_study = reader.optuna_study(name)
        curves, from_history = reader.epoch_values(name), False
        if not curves:  # no pruner: fall back on the Keras history's validation loss
            histories = trials if study.is_hypermodel else reader.trials(name, history=True)
            curves, from_history = _loss_curves(histories), True

    page = ReportPage(status, study, trials, best, baseline)
    page.artifacts = where(url, (study.config or {}).get("artifacts_dir"), artifacts)
    page.reference = reference if reference is not None and not reference.error else None
    page.picked = picked
    if target.one_file:
        with tempfile.TemporaryDirectory(prefix="sweep-report-") as scratch:
            page.inline = True
            _fill(page, Path(scratch), optuna_study, confirmed, curves, from_history, detailed)
            page.trial_figures(beside, Path(scratch), baseline=True)
            write_whole(target.path, page.html())
        return target.path
    make_out_dir(target.path)
    figures_dir = make_out_dir(target.path / FIGURES)
    _fill(page, figures_dir, optuna_study, confirmed, curves, from_history, detailed)
    page.trial_figures(beside, figures_dir, baseline=True)
    index = target.path / "index.html"
    index.write_text(page.html(), encoding="utf-8")
    return index


def _fill(
    page: ReportPage,
    figures_dir: Path,
    optuna_study: Any,
    confirmed: Mapping[str, Any] | None,
    curves: Mapping[int, tuple[str, Sequence[tuple[int, float]]]],
    from_history: bool,
    detailed: TrialRecord | None,
) -> None:
    """Build every section of ``page``, its figures drawn into ``figures_dir``."""
    page.summary()
    page.best_table()
    page.confirmed(confirmed, figures_dir)
    page.optuna(optuna_study, figures_dir)
    page.epoch_curves(curves, from_history, figures_dir)
    if page.hypermodel:
        page.histories(figures_dir)
    else:
        page.across_trials(figures_dir)
    page.trial_figures(detailed, figures_dir)


def _loss_curves(
    trials: Iterable[TrialRecord],
) -> dict[int, tuple[str, tuple[tuple[int, float], ...]]]:
    """Each finished trial's validation loss per epoch from its stored Keras history."""
    curves: dict[int, tuple[str, tuple[tuple[int, float], ...]]] = {}
    for t in trials:
        history = t.history if isinstance(t.history, Mapping) else {}
        values = history.get(_LOSS_CURVE)
        if t.state in ("COMPLETE", "PRUNED") and isinstance(values, list):
            points = tuple(
                (i, float(v)) for i, v in enumerate(values) if isinstance(v, int | float)
            )
            curves[t.number] = (t.state, points)
    return curves


class ReportPage:
    """The page, built section by section."""

    def __init__(
        self,
        status: Mapping[str, Any],
        study: StudyRecord,
        trials: list[TrialRecord],
        best: list[TrialRecord],
        baseline: TrialRecord | None,
    ) -> None:
        self.status = status
        self.study = study
        self.config: Mapping[str, Any] = study.config or {}
        self.hypermodel = study.is_hypermodel
        self.trials = trials
        self.best = best
        self.baseline = baseline
        #: The supervised reference: a last column of the best table.
        self.reference: ReferenceRecord | None = None
        #: A confirmed front's picked point (several objectives), drawn instead of the best.
        self.picked: int | None = None
        #: Where the study's artifacts are (:func:`sweep.store.artifacts.where`).
        self.artifacts = "-"
        self.parts: list[str] = []
        self.objectives = list(status.get("objectives") or [])
        self.metric_names = [
            str(o.get("metric") or f"objective {i}") for i, o in enumerate(self.objectives)
        ]
        self.complete = [t for t in trials if t.state == "COMPLETE"]
        #: Figures inline as ``data:`` URIs (one file) rather than by path (a folder).
        self.inline = False

    # --- sections ---------------------------------------------------------------------------

    def summary(self) -> None:
        s, c = self.status, self.config
        counts = s.get("counts") or {}
        rows: list[tuple[str, str]] = [
            ("study", str(s.get("name"))),
            ("storage", str(s.get("storage"))),
            (
                "objective",
                ", ".join(
                    f"{o.get('metric') or 'value'} ({o.get('direction')})" for o in self.objectives
                )
                or "-",
            ),
            ("budget", _budget_text(s)),
            ("trials by state", ", ".join(f"{k} {v}" for k, v in counts.items())),
            ("time spent", _time_spent(self.trials, s)),
        ]
        if self.hypermodel:
            spec = self.study.hypermodel or {}
            rows += [
                ("hypermodel", str(spec.get("ref") or "-")),
                ("hypermodel SHA-256", str(spec.get("sha256") or "-")),
                (
                    "data passed to fit",
                    f"{c.get('data_path') or '-'} (x = y = its training rows, validation_data "
                    "its validation rows; a hypermodel with its own fit may load other data)",
                ),
            ]
        else:
            rows += [
                ("data file", str(c.get("data_path") or "-")),
                ("data SHA-256", str(c.get("data_sha256") or "-")),
            ]
        rows += [
            ("split", _split_text(c)),
            ("sampler / pruner", f"{c.get('sampler', '-')} / {c.get('pruner', '-')}"),
        ]
        if not self.hypermodel:  # a hypermodel has no notes' baseline
            rows.append(("baseline", _baseline_text(c, self.baseline)))
        rows.append(("sweep version", str(c.get("sweep_version") or "-")))
        rows.append(("artifacts", self.artifacts))
        body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
        self.parts.append(f'<section id="summary"><h2>Study</h2><table class="kv">{body}</table>')
        self.parts.append(_space_html(c.get("space") or {}))
        if not self.complete:
            so_far = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            self.parts.append(
                '<p class="warn" id="no-complete">No COMPLETE trial yet: there is no best trial, '
                "and the figures across trials are empty. "
                f"Trials so far: {_e(so_far) or 'none'}.</p>"
            )
        self.parts.append("</section>")

    def best_table(self) -> None:
        from sweep.present.formatting import best_cells

        rows = [t.to_dict() for t in self.best]
        numbers = {t.number for t in self.best}
        if self.baseline is not None and self.baseline.number not in numbers:
            rows.append(self.baseline.to_dict())
        if rows and self.reference is not None:
            rows.append(self.reference.to_dict())
        title = "Best trials" if len(self.objectives) <= 1 else "Pareto set"
        self.parts.append(f'<section id="best"><h2>{title}</h2>')
        if not self.best:
            self.parts.append("<p>No COMPLETE trial yet.</p>")
        if rows:
            note = (
                "The notes' table on the validation split, best first; the study's baseline "
                "(trial with the user attribute <code>baseline</code>) is the last column when "
                "it is not among them; the supervised reference (logistic regression on 100-bp "
                "bin densities, fitted on the same training rows) is the very last."
            )
            if self.hypermodel:
                note = (
                    "Best first, with each trial's parameters and the metrics its fit reported "
                    "(at the epoch where the objective was best, as KerasTuner scores)."
                )
            self.parts.append(f"<p>{note}</p>")
            self.parts.append(_cells_html(best_cells(rows, self.objectives), "best-trials"))
            self.parts.append(_tie_note(rows))
            flagged = [r for r in rows if r.get("flags")]
            if flagged:
                items = "".join(
                    f"<li>#{r['number']}: {_e('; '.join(map(str, r['flags'])))}</li>"
                    for r in flagged
                )
                self.parts.append(f"<p>Collapse flags:</p><ul>{items}</ul>")
        self.parts.append("</section>")

    def confirmed(self, summary: Mapping[str, Any] | None, figures_dir: Path) -> None:
        from sweep.present.confirmed import FRONT_PICK_RULE
        from sweep.present.confirmed import pick_front_point
        from sweep.present.formatting import confirmed_cells
        from sweep.present.study_figures import FigureUnavailable
        from sweep.present.study_figures import confirmed_front

        self.parts.append('<section id="confirmed"><h2>Confirmed trials</h2>')
        if summary and summary.get("trials"):
            self.parts.append(
                f"<p>Re-run with fresh seeds {_e(', '.join(map(str, summary.get('seeds') or [])))}"
                f" ({summary.get('complete', 0)}/{summary.get('jobs', 0)} runs complete), scored "
                "on validation and on the test split nobody tuned on: mean ± sd over seeds; the "
                "gain over the baseline is the difference of means ± its standard error.</p>"
            )
            names = list(summary.get("metrics") or [])
            shown = names[: max(1, len(summary.get("objectives") or []))]
            shown += [m for m in REPORT_CONFIRMED_METRICS if m in names and m not in shown]
            table = confirmed_cells(summary, shown)
            self.parts.append(_plain_table(table[0], table[1:], "confirmed-trials"))
            if len(summary.get("objectives") or []) > 1:
                picked = pick_front_point(summary)
                choice = f"#{picked}" if picked is not None else "no point qualifies"
                self.parts.append(
                    f'<p id="front-pick">Pick by a stated rule ({_e(FRONT_PICK_RULE)}): '
                    f"<strong>{_e(choice)}</strong>.</p>"
                )
                try:
                    fig: Figure | str = confirmed_front(summary, figures_dir, picked)
                except FigureUnavailable as why:
                    fig = str(why)
                self.parts.append(self._figure(fig, "Confirmed front", figures_dir))
        else:
            self.parts.append(
                "<p>No confirmed trials: none was re-run on new seeds (<code>sweep confirm"
                "</code>).</p>"
            )
        self.parts.append("</section>")

    def optuna(self, study: Any, figures_dir: Path) -> None:
        from sweep.present.study_figures import optuna_figures

        self.parts.append('<section id="optuna"><h2>Optimization</h2>')
        for title, fig in optuna_figures(study, self.metric_names, figures_dir):
            anchor = "importance-note" if title == "Parameter importances" else ""
            self.parts.append(self._figure(fig, title, figures_dir, anchor))
        self.parts.append("</section>")

    def epoch_curves(
        self,
        curves: Mapping[int, tuple[str, Sequence[tuple[int, float]]]],
        from_history: bool,
        figures_dir: Path,
    ) -> None:
        """Every trial's per-epoch curve overlaid, the baseline and the best trial apart: the
        objective as reported to the pruner or, ``from_history``, the Keras validation loss."""
        from sweep.present.study_figures import FigureUnavailable
        from sweep.present.study_figures import epoch_curves

        title = "Per-epoch curves"
        metric = self.metric_names[0] if self.metric_names else "objective"
        source = "as reported to the pruner"
        if from_history:
            metric = _LOSS_CURVE
            source = "from the Keras histories, no pruner; the loss differs with the loss settings"
        self.parts.append(f'<section id="curves"><h2>{title}</h2>')
        try:
            fig: Figure | str = epoch_curves(
                curves,
                metric,
                figures_dir,
                baseline=self.baseline.number if self.baseline is not None else None,
                best=self.best[0].number if self.best else None,
                baseline_name=str(self.config.get("baseline") or ""),
                source=source,
            )
        except FigureUnavailable as e:
            fig = f"not available: {e}"
        self.parts.append(self._figure(fig, title, figures_dir))
        self.parts.append("</section>")

    def across_trials(self, figures_dir: Path) -> None:
        from sweep.present.study_figures import FigureUnavailable
        from sweep.present.study_figures import all_zero_sections
        from sweep.present.study_figures import balanced_vs_original
        from sweep.present.study_figures import collapse_across_trials
        from sweep.present.study_figures import rate_distortion

        marked = {}
        if self.best:
            marked[self.best[0].number] = f"best #{self.best[0].number}"
        if self.baseline is not None:
            marked[self.baseline.number] = f"baseline #{self.baseline.number}"
        objective = self.metric_names[0] if self.metric_names else "objective"
        trials, where = [t.to_dict() for t in self.trials], figures_dir
        drawers: tuple[tuple[str, str, Callable[[], Figure]], ...] = (
            ("rate-distortion", "Rate-distortion", lambda: rate_distortion(trials, where, marked)),
            (
                "balanced",
                "Balanced vs original",
                lambda: balanced_vs_original(trials, objective, where),
            ),
            ("collapse", "Collapse across trials", lambda: collapse_across_trials(trials, where)),
        )
        for anchor, title, draw in drawers:
            self.parts.append(f'<section id="{anchor}"><h2>{_e(title)}</h2>')
            try:
                fig: Figure | str = draw()
            except FigureUnavailable as e:
                fig = f"not available: {e}"
            self.parts.append(self._figure(fig, title, figures_dir))
            if anchor == "balanced":
                self.parts.append(_dataset_table(self.complete))
            if anchor == "collapse":
                sections, rows = all_zero_sections(trials)
                if rows:
                    head = ["trial"] + [f"{s}: all zeros" for s in sections]
                    cells = [[f"#{r[0]}"] + ["yes" if hit else "" for hit in r[1:]] for r in rows]
                    self.parts.append(
                        "<p>COMPLETE trials that predict all zeros (at 0.5) in a mark section "
                        "that has ones:</p>" + _plain_table(head, cells, "all-zeros")
                    )
                else:
                    self.parts.append(
                        '<p id="all-zeros">No COMPLETE trial predicts all zeros in any '
                        "section.</p>"
                    )
            self.parts.append("</section>")

    def histories(self, figures_dir: Path) -> None:
        """A hypermodel study's own per-epoch curves: its Keras history keys, every trial."""
        from sweep.present.study_figures import FigureUnavailable
        from sweep.present.study_figures import history_across_trials

        self.parts.append('<section id="histories"><h2>Training curves across trials</h2>')
        try:
            fig: Figure | str = history_across_trials(
                [t.to_dict() for t in self.trials], figures_dir
            )
        except FigureUnavailable as e:
            fig = f"not available: {e}"
        self.parts.append(self._figure(fig, "Training curves across trials", figures_dir))
        self.parts.append("</section>")

    def trial_figures(
        self, trial: TrialRecord | None, figures_dir: Path, *, baseline: bool = False
    ) -> None:
        """One trial's figures: the best (or picked) trial's, or with ``baseline`` the
        baseline's, drawn after it for comparison (nothing when ``trial`` is None)."""
        from sweep.present.trial_figures import write_trial_figures

        if baseline:
            if trial is None:
                return
            self.parts.append('<section id="baseline-trial"><h2>The baseline, for comparison</h2>')
        else:
            title = "The picked point" if self.picked else "The best trial"
            self.parts.append(f'<section id="best-trial"><h2>{title}</h2>')
        if trial is None:
            self.parts.append("<p>No COMPLETE trial yet.</p></section>")
            return
        prefix = f"trial-{trial.number}-"
        figures, notes = write_trial_figures(
            trial.to_dict(), figures_dir, prefix, hypermodel=self.hypermodel
        )
        self.parts.append(
            f"<p>Trial #{_e(trial.number)}; <code>sweep show {_e(self.status.get('name'))} "
            f"{_e(trial.number)}</code> draws these for any trial.</p>"
        )
        for fig in figures:
            self.parts.append(self._figure(fig, fig.title, figures_dir))
        for note in notes:
            self.parts.append(f'<p class="missing">{_e(note)}</p>')
        self.parts.append("</section>")

    def _figure(self, fig: Figure | str, title: str, figures_dir: Path, anchor: str = "") -> str:
        """A figure (inline, or by path) or, for a string, the note that stands in for it."""
        if isinstance(fig, str):
            where = f' id="{anchor}"' if anchor else ""
            return f'<p class="missing"{where}>{_e(title)}: {_e(fig)}</p>'
        src = png_data_uri(figures_dir / fig.file) if self.inline else f"{FIGURES}/{fig.file}"
        return (
            f'<figure><img src="{_e(src)}" alt="{_e(fig.title)}">'
            f"<figcaption>{_e(fig.title)}: {_e(fig.caption)}</figcaption></figure>"
        )

    def html(self) -> str:
        name = _e(self.status.get("name"))
        made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        across = (
            (("histories", "Training curves"),)
            if self.hypermodel
            else (
                ("rate-distortion", "Rate-distortion"),
                ("balanced", "Balanced vs original"),
                ("collapse", "Collapse"),
            )
        )
        nav = " · ".join(
            f'<a href="#{a}">{t}</a>'
            for a, t in (
                ("summary", "Study"),
                ("best", "Best"),
                ("confirmed", "Confirmed"),
                ("optuna", "Optimization"),
                ("curves", "Per-epoch curves"),
                *across,
                ("best-trial", "Best trial"),
            )
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>sweep report: {name}</title><style>{_CSS}</style></head><body>"
            f'<h1>sweep report: {name}</h1><p class="meta">made {made} · {nav}</p>'
            + "\n".join(self.parts)
            + "</body></html>\n"
        )


# --- pieces -----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;
max-width:1200px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
table.kv th{text-align:left;background:#f6f6f6;white-space:nowrap}table.kv td{text-align:left}
#space td,#space th{text-align:left}#space td{font-family:monospace}
tr.group th{background:#eef2f7;text-align:left}
thead th{background:#f0f0f0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.meta{color:#666;font-size:.85em}.warn{background:#fff4e0;border:1px solid #f0c070;
padding:.6em}.missing{color:#777;font-style:italic}
code{background:#f4f4f4;padding:0 3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cells_html(cells: list[list[str]], table_id: str) -> str:
    """The ``best`` table cells as HTML: one column per trial, group titles as full rows."""
    head, body = cells[0], cells[1:]
    out = [f'<table id="{table_id}"><thead><tr>']
    out += [f"<th>{_e(c)}</th>" for c in head]
    out.append("</tr></thead><tbody>")
    for row in body:
        label = row[0]
        if not label.startswith("  ") and all(c == "" for c in row[1:]):
            out.append(f'<tr class="group"><th colspan="{len(row)}">{_e(label)}</th></tr>')
        else:
            tds = "".join(f"<td>{_e(c)}</td>" for c in row[1:])
            out.append(f"<tr><td>{_e(label.strip())}</td>{tds}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _plain_table(head: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str) -> str:
    out = [f'<table id="{table_id}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _space_html(space: Mapping[str, Any]) -> str:
    search = space.get("search") or {}
    fixed = space.get("fixed") or {}
    rows = [[name, "searched", json.dumps(spec, sort_keys=True)] for name, spec in search.items()]
    rows += [[name, "fixed", json.dumps(value)] for name, value in fixed.items()]
    if not rows:
        return "<p>No search space stored (not a sweep study).</p>"
    desc = space.get("description")
    text = f"<p>{_e(desc)}</p>" if desc else ""
    return "<h3>Search space</h3>" + text + _plain_table(["name", "", "values"], rows, "space")


def _dataset_table(complete: Sequence[TrialRecord]) -> str:
    groups: dict[str, list[float]] = {}
    for t in complete:
        dataset = (t.params_full or {}).get("dataset") or t.params.get("dataset")
        value = t.value
        if value is not None and math.isfinite(float(value)):
            groups.setdefault(str(dataset or "?"), []).append(float(value))
    if not groups:
        return ""
    rows = []
    for name in sorted(groups):
        values = sorted(groups[name])
        mid = statistics.median(values)
        rows.append([name, len(values), f"{min(values):.4g}", f"{mid:.4g}", f"{max(values):.4g}"])
    return _plain_table(
        ["dataset", "COMPLETE trials", "min objective", "median", "max"], rows, "datasets"
    )


def _budget_text(status: Mapping[str, Any]) -> str:
    budget = status.get("budget")
    finished = status.get("finished", 0)
    return f"{finished} of {budget} finished" if budget is not None else f"{finished} finished"


def _time_spent(trials: Sequence[TrialRecord], status: Mapping[str, Any]) -> str:
    total = sum(float(t.seconds) for t in trials if isinstance(t.seconds, int | float))
    text = f"{human_duration(total)} of trial time"
    start, end = status.get("created"), status.get("last_completed")
    if start and end:
        span = (
            datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
        ).total_seconds()
        text += f", {human_duration(span)} from the first start to the last completion"
    return text


def _tie_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """For a racing study: whether the top configuration is separated from the runner-up."""
    ahead = rows[0].get("ahead_of_next") if rows else None
    if ahead is None:
        return ""
    sd = rows[0].get("seed_sd")
    noise = f"seed sd {sd:.3f}" if isinstance(sd, float) else "no seed spread measured yet"
    if ahead:
        return (
            f"<p>Ranked by seed mean: #{rows[0]['number']} is ahead of the runner-up by more "
            f"than the seed noise explains ({noise}).</p>"
        )
    return (
        f'<p class="warn">Ranked by seed mean: #{rows[0]["number"]}\'s top rank is <b>not '
        f"separated</b> from the runner-up #{rows[1]['number']} by the seed noise ({noise}); "
        "treat them as tied and let <code>sweep confirm</code> decide on the test split.</p>"
    )


def _split_text(config: Mapping[str, Any]) -> str:
    if not config:
        return "-"
    sizes = (config.get("data_summary") or {}).get("rows") or {}
    parts = [
        f"validation {config.get('val_fraction', '-')}",
        f"test {config.get('test_fraction', '-')}",
        f"seed {config.get('split_seed', '-')}",
    ]
    if isinstance(sizes, Mapping) and sizes:
        parts.append("rows " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if config.get("split_sha256"):
        parts.append(f"row-index SHA-256 {config['split_sha256']}")
    return "; ".join(parts)


def _baseline_text(config: Mapping[str, Any], baseline: TrialRecord | None) -> str:
    if not config.get("baseline"):
        return "none"
    where = f"trial #{baseline.number} ({baseline.state})" if baseline else "not found"
    differs = config.get("baseline_differs") or {}
    extra = f"; differs from the notes in {json.dumps(differs)}" if differs else ""
    return f"{config['baseline']}: {where}{extra}"
