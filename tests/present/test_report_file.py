"""`sweep report --out x.html`: one self-contained file; the folder layout; the per-epoch curves
with the baseline apart; the note that stands in for importances on a small study.

The studies are written through Optuna without training (tests/support/study_writer.py), with
what a worker stores: the objective per epoch as Optuna intermediate values, a Keras history,
the baseline's user attribute on trial 0, some PRUNED trials. The one-file page is opened in
headless Chromium (Debian's ``chromium``), which must load every image from the page itself.
"""

from __future__ import annotations

import base64
import io
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
from PIL import Image

from sweep.config import BASELINE_ATTR
from sweep.present.study_figures import MIN_IMPORTANCE_TRIALS
from tests.support.cli import run_sweep
from tests.support.study_writer import write_study

NAME = "onefile"
EPOCHS = 4
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _study(url: str, complete: int, *, pruned: int = 2, reported: bool = True) -> str:
    """``complete`` COMPLETE trials (trial 0 the notes' baseline) and ``pruned`` PRUNED ones,
    each with its Keras history and, if ``reported``, its objective per epoch as a pruner
    gets it; returns ``url``."""
    write_study(url, NAME, 0, baseline="notes")
    study = optuna.load_study(study_name=NAME, storage=url)
    dists = {
        "coding_size": optuna.distributions.CategoricalDistribution([4, 8]),
        "kl_beta": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    }
    trials = []
    for k in range(complete + pruned):
        top = 0.6 + 0.3 * k / (complete + pruned)
        is_pruned = k >= complete
        steps = 2 if is_pruned else EPOCHS
        curve = {e: top - 0.2 / (e + 1) for e in range(steps)}
        attrs: dict[str, Any] = {
            "params_full": {"coding_size": 4 + 4 * (k % 2), "kl_beta": 10 ** (-4 + 2 * k / 30)},
            "metrics": {"expression.auroc": curve[steps - 1], "latent.kl_mean": 1.0 + k},
            "flags": [],
            "seconds": 2.0,
            "history": {"loss": [0.5] * steps, "val_loss": [0.6 - 0.01 * e for e in range(steps)]},
        }
        if k == 0:
            attrs[BASELINE_ATTR] = "notes"
        trials.append(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.PRUNED
                if is_pruned
                else optuna.trial.TrialState.COMPLETE,
                params={"coding_size": attrs["params_full"]["coding_size"], "kl_beta": 1e-3},
                distributions=dists,
                value=None if is_pruned else curve[steps - 1],
                intermediate_values=curve if reported else None,
                user_attrs=attrs,
            )
        )
    study.add_trials(trials)
    return url


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def _report(url: str, out: Path, *extra: str) -> Any:
    return run_sweep("report", NAME, "--out", str(out), *extra, storage=url)


def _pngs(page: str) -> list[tuple[int, int]]:
    sizes = []
    for encoded in DATA_URI.findall(page):
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
            assert image.format == "PNG"
            image.load()
            sizes.append(image.size)
    return sizes


def test_html_out_is_one_self_contained_file(tmp_path: Path) -> None:
    url = _study(_sqlite(tmp_path), MIN_IMPORTANCE_TRIALS + 1)
    out = tmp_path / "reports" / "study.html"
    done = _report(url, out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert [p.name for p in out.parent.iterdir()] == ["study.html"]  # nothing beside it
    page = out.read_text(encoding="utf-8")
    # Every image is inline; nothing points at a file or at the network.
    assert re.findall(r'src="(?!data:image/png;base64,)', page) == []
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|iframe|object)\b", page)
    assert "url(" not in page and "@import" not in page and "figures/" not in page
    sizes = _pngs(page)
    assert len(sizes) == page.count("<img ") >= 6
    assert all(w > 300 and h > 200 for w, h in sizes)
    # The per-epoch curves, the baseline labelled apart; importances drawn (enough trials).
    assert 'id="curves"' in page and 'alt="Per-epoch curves"' in page
    assert "baseline #0 in orange" in page and "PRUNED trials dashed" in page
    assert 'alt="Parameter importances"' in page and 'id="importance-note"' not in page

    # An existing file is refused without --force: one line, the file untouched.
    before = out.stat().st_mtime_ns
    again = _report(url, out)
    assert again.returncode == 1 and "file exists; pass --force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and out.stat().st_mtime_ns == before


def test_other_out_keeps_the_folder_layout(tmp_path: Path) -> None:
    url = _study(
        _sqlite(tmp_path), 3, reported=False
    )  # no pruner: the curves are the Keras val_loss
    for out in (tmp_path / "plain", tmp_path / "made.html"):
        if out.suffix:
            out.mkdir()  # an existing folder stays a folder, whatever its name
        done = _report(url, out)
        assert done.returncode == 0, done.stderr
        index = out / "index.html"
        assert done.stdout.strip() == str(index)
        page = index.read_text(encoding="utf-8")
        sources = re.findall(r'<img src="([^"]+)"', page)
        assert sources and all(s.startswith("figures/") for s in sources)
        assert {p.name for p in (out / "figures").iterdir()} == {Path(s).name for s in sources}
        assert "epoch_curves.png" in {Path(s).name for s in sources}
        assert "from the Keras histories, no pruner" in page and "baseline #0 in orange" in page
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    refused = _report(url, other)
    assert refused.returncode == 1 and "exists and is not a folder" in refused.stderr
    assert other.read_text() == "mine"


def test_a_small_study_gets_a_note_instead_of_importances(tmp_path: Path) -> None:
    url = _study(_sqlite(tmp_path), 5)
    out = tmp_path / "reports" / "small.html"
    out.parent.mkdir()
    out.write_text("an older report")
    done = _report(url, out, "--force")  # --force replaces an existing file, and nothing else
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.parent.iterdir()] == ["small.html"]
    page = out.read_text(encoding="utf-8")
    note = re.search(r'<p class="missing" id="importance-note">([^<]*)</p>', page)
    assert note is not None, page
    assert "5 COMPLETE trials, too few for importances" in note.group(1)
    assert f"about {MIN_IMPORTANCE_TRIALS}" in note.group(1)
    assert 'alt="Parameter importances"' not in page
    assert 'alt="Per-epoch curves"' in page and "baseline #0 in orange" in page


def test_the_one_file_page_loads_every_image_in_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("the browser check needs Debian's chromium (apt-get install chromium)")
    url = _study(_sqlite(tmp_path), 4)
    out = tmp_path / "browse.html"
    assert _report(url, out).returncode == 0
    page = out.read_text(encoding="utf-8")
    count = page.count("<img ")
    # A script appended to a copy writes each image's natural width into the DOM once the
    # page has loaded; a missing or broken image reads 0.
    probe = tmp_path / "probe" / "browse.html"
    probe.parent.mkdir()
    probe.write_text(
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => { document.body.dataset.widths = "
            "[...document.images].map(i => i.complete ? i.naturalWidth : 0).join(','); });"
            "</script></body>",
        ),
        encoding="utf-8",
    )
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r'data-widths="([0-9,]*)"', dom)
    assert found is not None, dom[:2000]
    widths = [int(w) for w in found.group(1).split(",")]
    assert len(widths) == count >= 4 and all(w > 300 for w in widths), widths


def test_the_reader_returns_each_finished_trials_reported_epochs(storage_url: str) -> None:
    from sweep.store.read import StudyReader

    _study(storage_url, 2, pruned=1)
    study = optuna.load_study(study_name=NAME, storage=storage_url)
    odd = study.ask()  # non-finite values survive the trip; a FAIL trial is left out
    odd.report(float("nan"), 0)
    odd.report(float("inf"), 1)
    study.tell(odd, 0.5)
    failed = study.ask()
    failed.report(0.1, 0)
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    with StudyReader(storage_url) as reader:
        curves = reader.epoch_values(NAME)
    assert sorted(curves) == [0, 1, 2, 3]
    assert curves[0][0] == "COMPLETE" and [e for e, _ in curves[0][1]] == list(range(EPOCHS))
    assert curves[0][1][-1][1] == pytest.approx(0.6 - 0.2 / EPOCHS)
    assert curves[2][0] == "PRUNED" and [e for e, _ in curves[2][1]] == [0, 1]
    (step0, nan), (step1, inf) = curves[3][1]
    assert (step0, step1) == (0, 1) and math.isnan(nan) and inf == math.inf
