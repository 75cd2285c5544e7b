"""Output formats of the read-only commands: aligned text tables, JSON and CSV.

Pure functions over the dicts :mod:`sweep.store.read` returns; standard library only. JSON is
strict (NaN and infinities become ``null``), CSV is written by the :mod:`csv` module, and tables
are
plain text with aligned columns. Numbers in tables show 4 significant digits.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sweep.config import STATES
from sweep.errors import UsageError
from sweep.names import EXPRESSION_METRICS
from sweep.names import value_columns

FORMATS = ("table", "json", "csv")
KINDS = ("best", "trials", "studies")

EXPRESSION = EXPRESSION_METRICS  # the notes' expression table, every column
EXPRESSION_HIDDEN = ("auroc", "f1", "threshold", "f1_at_threshold")
SECTION = ("count_mse", "expected_count_mse", "output_mse", "auprc", "auprc_lift")
SECTIONS = ("mean_auprc_lift",)
LATENT = ("active_units", "kl_mean")
_DEFAULT_WIDTH = 120
"""The ``trials`` table's width when the caller gives none (``--wide``: no limit)."""
_MIN_CUT = 20


def render(
    rows: list[dict[str, Any]],
    fmt: str,
    *,
    kind: str,
    objectives: Sequence[Mapping[str, Any]] | None = None,
    width: int | None = _DEFAULT_WIDTH,
) -> str:
    """Render trial or study dicts from :mod:`sweep.store.read` as text.

    Args:
        rows: Trial dicts (``kind`` ``"best"``/``"trials"``) or study dicts (``"studies"``).
        fmt: ``"table"``, ``"json"`` or ``"csv"``.
        kind: ``"best"`` (transposed table: one column per trial), ``"trials"`` (one line per
            trial) or ``"studies"`` (one line per study).
        objectives: Optional ``[{metric, direction}]`` (``study_status(...)["objectives"]``)
            used to label the objective rows of the ``best`` table; without it they read
            ``value`` / ``value_0``...
        width: The ``trials`` table's width: parameters and failure reasons are cut to fit
            (never below 20 characters each); ``None`` shows them whole.

    Returns:
        The text, ending with a newline unless empty. JSON is strict (NaN and infinities are
        ``null``) and parses back to ``rows``' structure.

    Raises:
        UsageError: unknown ``fmt`` or ``kind``.
    """
    _check(fmt, FORMATS, "format")
    _check(kind, KINDS, "kind")
    if fmt == "json":
        return json.dumps(_jsonable(rows), indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return _studies_csv(rows) if kind == "studies" else _trials_csv(rows)
    if kind == "studies":
        return _studies_table(rows)
    if kind == "trials":
        return _trials_table(rows, width)
    return _best_table(rows, objectives)


def render_status(status: dict[str, Any], fmt: str) -> str:
    """Render :func:`sweep.store.read.study_status` as human text (``"table"``) or ``"json"``.

    Raises:
        UsageError: ``fmt`` is neither ``"table"`` nor ``"json"``.
    """
    _check(fmt, ("table", "json"), "format")
    if fmt == "json":
        return json.dumps(_jsonable(status), indent=2, allow_nan=False) + "\n"
    counts = status.get("counts") or {}
    finished = status.get("finished", counts.get("COMPLETE", 0) + counts.get("PRUNED", 0))
    budget = status.get("budget")
    done = f"{finished}/{budget}" if budget is not None else f"{finished}"
    by_state = ", ".join(f"{s} {counts.get(s, 0)}" for s in STATES)
    seeds = status.get("extra_seeds") or 0
    done += f" configurations (+{seeds} extra seeds)" if seeds else ""
    lines = [f"study {status.get('name')} ({status.get('storage')}): {done} finished ({by_state})"]
    objectives = status.get("objectives") or []
    if objectives:
        lines.append(
            "objective: "
            + ", ".join(f"{o.get('metric') or 'value'} ({o.get('direction')})" for o in objectives)
        )
    best = status.get("best")
    if best is not None:
        values = "/".join(short_number(v) for v in best.get("values") or [])
        if best.get("seeds"):
            sd = best.get("value_sd")
            spread = f" ± {short_number(sd)}" if sd is not None else ""
            n = best["seeds"]
            values += f"{spread} (seed mean of {n}, #{best.get('number')})"
            lines.append(f"best {values}")
        else:
            lines.append(f"best {values} (#{best.get('number')})")
    elif status.get("pareto_size") is not None:
        lines.append(f"Pareto set: {status['pareto_size']} trials")
    else:
        lines.append("best: none yet (no COMPLETE trial)")
    running = status.get("running") or []
    if running:
        parts = []
        for r in running:
            age = r.get("heartbeat_age_s")
            beat = f"heartbeat {age:.0f} s ago" if age is not None else "no heartbeat"
            parts.append(f"#{r.get('number')} {beat}")
        lines.append("running: " + ", ".join(parts))
    else:
        lines.append("running: none")
    throughput = status.get("throughput_per_hour")
    rate = f"throughput {throughput:.1f} trials/h" if throughput else "throughput unknown"
    eta = status.get("eta_s")
    lines.append(f"{rate}; ETA {human_duration(eta) if eta is not None else 'unknown'}")
    return "\n".join(lines) + "\n"


# --- best: one column per trial ------------------------------------------------------------


def _best_table(rows: list[dict[str, Any]], objectives: Sequence[Mapping[str, Any]] | None) -> str:
    if not rows:
        return "no COMPLETE trials yet\n"
    cells = best_cells(rows, objectives)
    references = [r["reference"] for r in rows if r.get("reference")]
    if references:  # a short column head; what the reference is goes below the table
        cells[0] = [c.split(" (", 1)[0] if c.startswith("reference") else c for c in cells[0]]
        return _align(cells, right_from=1) + f"reference: {references[0]}\n"
    return _align(cells, right_from=1)


#: Metric key prefixes of the built-in VAE (:mod:`sweep.train.metrics`).
_VAE_GROUPS = ("expression", "expression_hidden", "section", "sections", "latent", "collapse")


def best_cells(
    rows: list[dict[str, Any]], objectives: Sequence[Mapping[str, Any]] | None = None
) -> list[list[str]]:
    """The cells of the ``best`` table: a header row (``trial``, ``#3``...), then one row per
    value; a group title is a row whose label is not indented and whose other cells are empty,
    and its rows' labels are indented by two spaces. ``rows`` must not be empty."""
    table: list[list[str]] = [["trial"] + [_trial_label(r) for r in rows]]
    n_values = max((len(r.get("values") or []) for r in rows), default=0)
    for i in range(n_values):
        table.append([_objective_label(i, n_values, objectives)] + [_nth(r, i) for r in rows])
    if any(r.get("seeds") for r in rows):  # a racing study: rows are ranked by this
        table.append(["seed mean"] + [seed_mean_text(r) for r in rows])
    table.append(["seconds"] + [short_number(r.get("seconds")) for r in rows])
    sections: list[tuple[str, list[list[str]]]] = []
    param_names = _union(r.get("params") or {} for r in rows)
    if param_names:
        sections.append(
            (
                "Params",
                [[n] + [_cell((r.get("params") or {}).get(n)) for r in rows] for n in param_names],
            )
        )
    metrics = [r.get("metrics") or {} for r in rows]
    keys = _union(metrics)

    def metric_rows(prefix: str, names: Iterable[str]) -> list[list[str]]:
        out = []
        for name in names:
            key = f"{prefix}.{name}"
            if key in keys:
                out.append([name] + [_cell(m.get(key)) for m in metrics])
        return out

    sections.append(("Expression", metric_rows("expression", EXPRESSION)))
    sections.append(
        ("Expression, label hidden", metric_rows("expression_hidden", EXPRESSION_HIDDEN))
    )
    for section in _section_names(keys):
        body = metric_rows(f"section.{section}", SECTION)
        for label, leaf in (
            ("rate above 0.5", "predicted_rate"),
            ("expected rate", "expected_rate"),
            ("actual rate", "actual_rate"),
        ):
            key = f"section.{section}.{leaf}"
            if key in keys:
                body.append([label] + [_cell(m.get(key)) for m in metrics])
        sections.append((f"Section {section}", body))
    sections.append(("All sections", metric_rows("sections", SECTIONS)))
    sections.append(("Latent", metric_rows("latent", LATENT)))
    if keys and not any(k.split(".", 1)[0] in _VAE_GROUPS for k in keys):
        # a KerasTuner hypermodel's metrics (its Keras metric names); no VAE collapse flags
        sections.append(("Metrics", [[k] + [_cell(m.get(k)) for m in metrics] for k in keys]))
        keys = []
    flags = []
    for r, m in zip(rows, metrics, strict=True):
        if r.get("flags"):
            flags.append(str(len(r["flags"])))
        elif "collapse.n_flags" in m:
            flags.append(_cell(m["collapse.n_flags"]))
        else:
            flags.append("0" if isinstance(r.get("flags"), list) else "-")
    if keys or not metrics or not any(metrics):
        sections.append(("Collapse", [["flags"] + flags]))
    if any(r.get("confirmed") for r in rows):
        sections.append(("Confirmed (mean ± sd over seeds)", _confirmed_best_rows(rows)))
    for title, body in sections:
        if not body:
            continue
        table.append([title] + [""] * len(rows))
        table.extend([["  " + line[0]] + line[1:] for line in body])
    return table


def seed_mean_text(row: Mapping[str, Any]) -> str:
    """``0.8123 ± 0.0210 (3 seeds)`` for a racing study's configuration, ``-`` otherwise."""
    if not row.get("seeds"):
        return "-"
    n = row["seeds"]
    sd = row.get("value_sd")
    spread = f" ± {short_number(sd)}" if sd is not None else ""
    return f"{short_number(row.get('value_mean'))}{spread} ({n} seed{'s' if n != 1 else ''})"


def _trial_label(row: Mapping[str, Any]) -> str:
    """``#3``, ``#0 baseline`` for a study's baseline trial, ``reference (LABEL)`` for its
    supervised reference (:func:`sweep.store.read.reference_row`)."""
    if row.get("reference"):
        return f"reference ({row['reference']})"
    return f"#{row.get('number')}" + (" baseline" if row.get("baseline") else "")


def _objective_label(i: int, n: int, objectives: Sequence[Mapping[str, Any]] | None) -> str:
    if objectives is not None and i < len(objectives):
        metric = objectives[i].get("metric") or ("value" if n == 1 else f"value_{i}")
        direction = str(objectives[i].get("direction") or "")[:3]
        return f"{metric} ({direction})" if direction else str(metric)
    return "value" if n == 1 else f"value_{i}"


def _section_names(keys: Sequence[str]) -> list[str]:
    """Section names in order of first appearance among ``section.NAME.metric`` keys."""
    names: list[str] = []
    for key in keys:
        if key.startswith("section."):
            name = key[len("section.") :].rpartition(".")[0]
            if name and name not in names:
                names.append(name)
    return names


# --- trials and studies: one line each -----------------------------------------------------


def _trials_table(rows: list[dict[str, Any]], width: int | None) -> str:
    if not rows:
        return "no trials\n"
    n_values = max((len(r.get("values") or []) for r in rows), default=0)
    value_heads = value_columns(max(n_values, 1))
    table = [["#", "state", *value_heads, "seconds", "params", "reason"]]
    for r in rows:
        params = " ".join(f"{k}={_cell(v)}" for k, v in (r.get("params") or {}).items())
        table.append(
            [
                _trial_label(r).removeprefix("#"),
                str(r.get("state")),
                *[_nth(r, i) for i in range(max(n_values, 1))],
                short_number(r.get("seconds")),
                " ".join(params.split()),
                " ".join(str(r.get("fail_reason") or "").split()),
            ]
        )
    if width is not None:
        fixed = sum(max(len(row[c]) for row in table) + 2 for c in range(len(table[0]) - 2))
        reasons = max(len(row[-1]) for row in table)
        room = max(_MIN_CUT, width - fixed - 2)
        reason_width = min(reasons, max(_MIN_CUT, room // 3)) if reasons else 0
        params_width = max(_MIN_CUT, room - reason_width - 2)
        for row in table[1:]:
            row[-2] = _shorten(row[-2], params_width)
            row[-1] = _shorten(row[-1], max(reason_width, _MIN_CUT))
    return _align(table, right={0, *range(2, 3 + max(n_values, 1))})


def _studies_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no studies\n"
    table = [["study", "objectives", "finished", *STATES, "created"]]
    for r in rows:
        directions = r.get("directions") or []
        metrics = r.get("metrics") or [None] * len(directions)
        objectives = ", ".join(
            f"{m or ('value' if len(directions) == 1 else f'value_{i}')} ({d[:3]})"
            for i, (m, d) in enumerate(zip(metrics, directions, strict=False))
        )
        counts = r.get("counts") or {}
        finished = r.get("finished", counts.get("COMPLETE", 0) + counts.get("PRUNED", 0))
        budget = r.get("budget")
        table.append(
            [
                str(r.get("name")) + (" (confirm runs)" if r.get("confirms") else ""),
                objectives,
                f"{finished}/{budget}" if budget is not None else str(finished),
                *[str(counts.get(s, 0)) for s in STATES],
                str(r.get("created") or "-")[:19].replace("T", " "),
            ]
        )
    return _align(table, right=set(range(2, 3 + len(STATES))))


# --- csv -----------------------------------------------------------------------------------


def _trials_csv(rows: list[dict[str, Any]]) -> str:
    n_values = max((len(r.get("values") or []) for r in rows), default=0)
    params = _union(r.get("params") or {} for r in rows)
    metrics = _union(r.get("metrics") or {} for r in rows)
    header = [
        "number",
        "state",
        *value_columns(n_values),
        *[f"param.{p}" for p in params],
        *[f"metric.{m}" for m in metrics],
        "baseline",
        "seconds",
        "flags",
        "started",
        "completed",
        "fail_reason",
    ]
    out = io.StringIO()
    confirmed_head, confirmed_cells = _confirmed_csv(rows)
    header += confirmed_head
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r, confirmed in zip(rows, confirmed_cells, strict=True):
        values = list(r.get("values") or [])
        values += [None] * (n_values - len(values))
        p = r.get("params") or {}
        m = r.get("metrics") or {}
        writer.writerow(
            [
                r.get("number"),
                r.get("state"),
                *[_csv(v) for v in values],
                *[_csv(p.get(k)) for k in params],
                *[_csv(m.get(k)) for k in metrics],
                _csv(r.get("baseline")),
                _csv(r.get("seconds")),
                ";".join(str(f) for f in r.get("flags") or []),
                _csv(r.get("started")),
                _csv(r.get("completed")),
                _csv(r.get("fail_reason")),
                *confirmed,
            ]
        )
    return out.getvalue()


def _studies_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["name", "directions", "metrics", "budget", "finished", *STATES, "created", "confirms"]
    )
    for r in rows:
        counts = r.get("counts") or {}
        writer.writerow(
            [
                r.get("name"),
                ";".join(r.get("directions") or []),
                ";".join(str(m or "") for m in r.get("metrics") or []),
                _csv(r.get("budget")),
                _csv(r.get("finished")),
                *[counts.get(s, 0) for s in STATES],
                _csv(r.get("created")),
                _csv(r.get("confirms")),
            ]
        )
    return out.getvalue()


# --- helpers -------------------------------------------------------------------------------


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise UsageError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")


def _jsonable(value: Any) -> Any:
    """A copy with non-finite floats as ``None`` and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _union(dicts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Keys of all ``dicts`` in order of first appearance."""
    seen: dict[str, None] = {}
    for d in dicts:
        for key in d:
            seen.setdefault(key, None)
    return list(seen)


def _nth(row: Mapping[str, Any], i: int) -> str:
    values = row.get("values") or []
    return short_number(values[i]) if i < len(values) else "-"


def short_number(value: Any) -> str:
    """4 significant digits for floats, integers as they are, ``-`` for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(short_number(v) for v in value) + "]"
    return short_number(value)


def _csv(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value))
    return value


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def human_duration(seconds: float) -> str:
    """``45s``, ``11m``, ``2h05m``, ``3d04h``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _align(
    table: list[list[str]], *, right: set[int] | None = None, right_from: int | None = None
) -> str:
    """Left-align the label column(s), right-align numeric ones; two spaces between columns."""
    width = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = []
    for row in table:
        cells = []
        for c, cell in enumerate(row):
            is_right = (right is not None and c in right) or (
                right_from is not None and c >= right_from
            )
            cells.append(cell.rjust(width[c]) if is_right else cell.ljust(width[c]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


# --- confirmation runs (sweep confirm; the Confirmed section of best) ----------------------


def render_confirmed(summary: Mapping[str, Any] | None, fmt: str) -> str:
    """Render :func:`sweep.present.confirmed.confirmed_results` as a table, JSON or CSV.

    One line per confirmed trial: seeds done, then per metric ``val mean ± sd`` and ``test mean
    ± sd``, and the gain over the baseline on test (difference of means ± its standard error).
    A ``reference`` entry, when the summary has one, is a last line.

    Raises:
        UsageError: unknown ``fmt``.
    """
    _check(fmt, FORMATS, "format")
    if fmt == "json":
        return json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n"
    if not summary:
        return "" if fmt == "csv" else "no confirmation runs (run `sweep confirm NAME`)\n"
    metrics = list(summary.get("metrics") or [])
    if fmt == "csv":
        return _confirmed_summary_csv(summary, metrics)
    counts = summary.get("counts") or {}
    seeds = summary.get("seeds") or []
    lines = [
        f"confirmed: study {summary.get('study')}, {summary.get('complete', 0)}/"
        f"{summary.get('jobs', 0)} runs complete in {summary.get('companion')} "
        f"(running {counts.get('RUNNING', 0)}, failed {counts.get('FAIL', 0)}); seeds "
        f"{', '.join(str(s) for s in seeds)}; mean ± sd over seeds"
    ]
    table = confirmed_cells(summary)
    head = table[0]
    return "\n".join(lines) + "\n" + _align(table, right=set(range(1, len(head))))


def confirmed_cells(
    summary: Mapping[str, Any], metrics: Sequence[str] | None = None
) -> list[list[str]]:
    """The cells of the confirmed table: a header, then one row per confirmed trial.

    Per metric (default: the objectives) ``val mean ± sd`` and ``test mean ± sd``, then the
    gain over the baseline on test; the supervised reference, when present, is a last row.
    """
    if metrics is None:
        names = list(summary.get("metrics") or [])
        metrics = names[: max(1, len(summary.get("objectives") or []))]
    shown = list(metrics)
    trials = summary.get("trials") or []
    base = summary.get("baseline")
    head = ["trial", "seeds"]
    for m in shown:
        head += [f"val {m}", f"test {m}"]
    if base is not None:
        head += [f"test gain vs #{base}" + ("" if len(shown) == 1 else f" ({m})") for m in shown]
    table = [head]
    for row in trials:
        cells = [_trial_label(row), f"{row.get('seeds', 0)}/{row.get('planned', 0)}"]
        for m in shown:
            cells += [_mean_sd(row["val"].get(m)), _mean_sd(row["test"].get(m))]
        if base is not None:
            cells += [_gain((row.get("gain") or {}).get(m, {}).get("test")) for m in shown]
        table.append(cells)
    reference = summary.get("reference")
    if reference:
        cells = [str(reference.get("label") or "reference"), "-"]
        for m in shown:
            cells += [
                short_number((reference.get("val") or {}).get(m)),
                short_number((reference.get("test") or {}).get(m)),
            ]
        cells += ["-"] * (len(head) - len(cells))
        table.append(cells)
    return table


def _confirmed_best_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The Confirmed section of ``best``: per objective, val and test mean ± sd, the gain."""
    metrics: list[str] = []
    for r in rows:
        confirmed = r.get("confirmed") or {}
        for m in confirmed.get("val") or {}:
            if m not in metrics:
                metrics.append(m)
    out = []
    for m in metrics:
        cells = []
        gains = []
        for r in rows:
            c = r.get("confirmed")
            if not c:
                cells.append("-")
                gains.append("-")
                continue
            cells.append(
                f"val {_mean_sd(c['val'].get(m))}, test {_mean_sd(c['test'].get(m))} "
                f"({c.get('seeds', 0)} seed{'' if c.get('seeds') == 1 else 's'})"
            )
            gain = (c.get("gain") or {}).get(m, {}).get("test")
            gains.append(_gain(gain) + (f" vs #{gain['vs']}" if gain else ""))
        out.append([m] + cells)
        if any(g != "-" for g in gains):
            out.append([f"{m} test gain"] + gains)
    return out


def _confirmed_csv(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Extra CSV columns for confirmed trials (none when no row is confirmed)."""
    metrics: list[str] = []
    for r in rows:
        for m in (r.get("confirmed") or {}).get("val") or {}:
            if m not in metrics:
                metrics.append(m)
    if not metrics:
        return [], [[] for _ in rows]
    head = ["confirmed.seeds"]
    for m in metrics:
        head += [
            f"confirmed.{split}.{m}.{what}" for split in ("val", "test") for what in ("mean", "sd")
        ]
        head += [f"confirmed.test_gain.{m}.mean", f"confirmed.test_gain.{m}.se"]
    cells = []
    for r in rows:
        c = r.get("confirmed")
        if not c:
            cells.append([""] * len(head))
            continue
        line: list[Any] = [c.get("seeds")]
        for m in metrics:
            for split in ("val", "test"):
                stat = c[split].get(m) or {}
                line += [_csv(stat.get("mean")), _csv(stat.get("sd"))]
            gain = (c.get("gain") or {}).get(m, {}).get("test") or {}
            line += [_csv(gain.get("mean")), _csv(gain.get("se"))]
        cells.append(line)
    return head, cells


def _confirmed_summary_csv(summary: Mapping[str, Any], metrics: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    head = ["number", "baseline", "seeds", "planned"]
    for m in metrics:
        head += [f"{split}.{m}.{what}" for split in ("val", "test") for what in ("mean", "sd")]
        head += [f"test_gain.{m}.mean", f"test_gain.{m}.se"]
    writer.writerow(head)
    for row in summary.get("trials") or []:
        line: list[Any] = [row["number"], _csv(row.get("baseline")), row["seeds"], row["planned"]]
        for m in metrics:
            for split in ("val", "test"):
                stat = row[split].get(m) or {}
                line += [_csv(stat.get("mean")), _csv(stat.get("sd"))]
            gain = (row.get("gain") or {}).get(m, {}).get("test") or {}
            line += [_csv(gain.get("mean")), _csv(gain.get("se"))]
        writer.writerow(line)
    return out.getvalue()


def _mean_sd(stat: Mapping[str, Any] | None) -> str:
    """``0.95 ± 0.01``; the mean alone for one seed; ``-`` for none."""
    if not stat or stat.get("mean") is None:
        return "-"
    if stat.get("sd") is None:
        return short_number(stat["mean"])
    return f"{short_number(stat['mean'])} ± {short_number(stat['sd'])}"


def _gain(diff: Mapping[str, Any] | None) -> str:
    """``+0.03 ± 0.015``: a difference of means ± its standard error; ``-`` for none."""
    if not diff or diff.get("mean") is None:
        return "-"
    sign = "+" if diff["mean"] >= 0 else ""
    text = f"{sign}{short_number(diff['mean'])}"
    return text + (f" ± {short_number(diff['se'])}" if diff.get("se") is not None else "")
