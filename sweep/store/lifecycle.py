"""``sweep copy`` and ``sweep delete``: a study's rows and its artifact files, together.

The rows go through Optuna (:func:`optuna.copy_study`, :func:`optuna.delete_study`: trials,
parameters, values, attributes, intermediate values). The artifact files are the ones the
study's trials and the study itself uploaded (Optuna's ``artifacts:`` system attributes), found
by :func:`sweep.store.artifacts.locate`; files of other studies in a shared folder (the layout
before per-study folders) are never touched. A study's confirmation runs (its companion study
``NAME.confirm``, made by ``sweep confirm``) are copied and deleted with it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.config import CONFIRM_SUFFIX
from sweep.errors import StudyConflictError
from sweep.errors import UsageError
from sweep.store.artifacts import Located
from sweep.store.artifacts import default_root
from sweep.store.artifacts import locate
from sweep.store.artifacts import make_folder
from sweep.store.artifacts import new_location
from sweep.store.study import check_study_name
from sweep.store.study import load_config
from sweep.store.urls import mask_url

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)
_ARTIFACT_PREFIX = "artifacts:"  # Optuna's system attribute of an uploaded artifact


@dataclass(frozen=True)
class StudyFiles:
    """A stored study as ``copy`` and ``delete`` see it.

    Attributes:
        trials: How many trials it has.
        located: Its artifact folder (``None``: it keeps none).
        artifact_ids: The artifacts its trials and itself uploaded (kept or since pruned).
    """

    name: str
    trials: int
    located: Located | None
    artifact_ids: tuple[str, ...]

    def present(self) -> list[Path]:
        """The artifact files still in the folder."""
        if self.located is None or not self.located.exists:
            return []
        files = (self.located.folder / a for a in self.artifact_ids)
        return [f for f in files if f.is_file()]

    def where(self) -> str:
        """One phrase: where its artifacts are, or why there are none."""
        if self.located is None:
            return "no artifacts"
        if not self.located.exists:
            return f"no artifact folder (looked in {self.located.describe()})"
        if self.located.foreign:
            return f"no artifacts of its own ('{self.located.folder}' is another database's)"
        return f"{len(self.present())} artifact files in '{self.located.folder}'"


def study_files(url: str, name: str, artifacts: str | None = None) -> StudyFiles:
    """Study ``name`` of ``url``: its trial count, artifact folder and artifact ids.

    Raises:
        StudyNotFoundError: no such study (or not a sweep study: StudyConflictError).
        StorageError: the database cannot be reached or used.
    """
    import optuna

    from sweep.log import quiet_optuna
    from sweep.store.rdb import open_storage

    quiet_optuna()
    storage = open_storage(url)
    config = load_config(storage, name)
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    attrs = [storage.get_study_system_attrs(study._study_id), *(t.system_attrs for t in trials)]
    ids = [
        str(json.loads(value)["artifact_id"]) if isinstance(value, str) else str(value)
        for group in attrs
        for key, value in group.items()
        if key.startswith(_ARTIFACT_PREFIX)
    ]
    located = locate(url, config.artifacts_dir, artifacts)
    return StudyFiles(name, len(trials), located, tuple(dict.fromkeys(ids)))


@dataclass(frozen=True)
class Copied:
    """What ``sweep copy`` did: the rows of ``trials`` trials and ``files`` artifact files."""

    trials: int
    files: int
    folder: Path | None
    notes: tuple[str, ...] = ()
    confirm_trials: int | None = None
    """Trials of the companion study copied with it (``None``: it has none)."""


def copy_study(
    url: str,
    name: str,
    to_url: str,
    to_name: str,
    *,
    artifacts: str | None = None,
    to_artifacts: str | None = None,
) -> Copied:
    """Copy study ``name`` of ``url`` to ``to_name`` of ``to_url``, with its artifact files.

    The copy's artifacts go to its own folder (``<db>.artifacts/<to_name>`` beside a SQLite
    file, or ``to_artifacts/<to_name>``); its stored config points there. Nothing stored is
    altered: the destination study and folder must not exist, and on an error whatever the copy
    had made is removed.

    Raises:
        StudyConflictError: ``to_name`` exists in ``to_url``, or its artifact folder does.
        UsageError: the study has artifact files but the destination has no artifact root
            (PostgreSQL without ``--to-artifacts DIR``).
        StudyNotFoundError, StorageError.
    """
    import optuna

    from sweep.store.rdb import open_storage
    from sweep.store.study import save_config

    check_study_name(to_name)
    source = study_files(url, name, artifacts)
    files = source.present()
    notes = []
    if source.located is not None and not source.located.exists:
        notes.append(f"study {name!r}: {source.where()}; copied the rows only")
    location = new_location(to_url, to_name, to_artifacts)
    if files and location is None:
        raise UsageError(
            f"study {name!r} has {len(files)} artifact files and {mask_url(to_url)} has no "
            "artifact folder beside it; pass --to-artifacts DIR"
        )
    target = open_storage(to_url, create=True)
    taken = {s.study_name for s in target.get_all_studies()}
    for clash in (to_name, to_name + CONFIRM_SUFFIX):
        if clash in taken:
            raise StudyConflictError(
                f"study {clash!r} already exists in {mask_url(to_url)}; nothing was copied "
                "(`sweep delete` it first, or choose another name)"
            )
    companion = companion_trials(url, name)
    folder = None
    if files and location is not None:
        folder = locate(to_url, location, to_artifacts)
        assert folder is not None
        if folder.folder.exists() and any(folder.folder.iterdir()):
            raise StudyConflictError(
                f"the artifact folder '{folder.folder}' of {to_name!r} exists and is not empty; "
                "nothing was copied"
            )
    made = folder.folder if folder is not None and not folder.folder.exists() else None
    try:
        if folder is not None:
            make_folder(folder.folder)
            for file in files:
                shutil.copy2(file, folder.folder / file.name)
        optuna.copy_study(
            from_study_name=name,
            from_storage=open_storage(url),
            to_storage=target,
            to_study_name=to_name,
        )
        config = load_config(target, to_name)
        stored = location if source.located is not None else None
        save_config(target, to_name, dataclasses.replace(config, artifacts_dir=stored))
        if companion is not None:
            optuna.copy_study(
                from_study_name=name + CONFIRM_SUFFIX,
                from_storage=open_storage(url),
                to_storage=target,
                to_study_name=to_name + CONFIRM_SUFFIX,
            )
    except BaseException:
        _undo_copy(target, to_name, made, folder, files)
        raise
    return Copied(
        source.trials, len(files), folder.folder if folder else None, tuple(notes), companion
    )


def companion_trials(url: str, name: str) -> int | None:
    """The number of trials of study ``name``'s companion ``NAME.confirm``; ``None``: none."""
    from sweep.store.rdb import open_storage

    storage = open_storage(url)
    for study in storage.get_all_studies():
        if study.study_name == name + CONFIRM_SUFFIX:
            return len(storage.get_all_trials(study._study_id, deepcopy=False))
    return None


def _undo_copy(
    target: optuna.storages.BaseStorage,
    to_name: str,
    made: Path | None,
    folder: Located | None,
    files: list[Path],
) -> None:
    import optuna

    for made_name in (to_name, to_name + CONFIRM_SUFFIX):
        try:
            optuna.delete_study(study_name=made_name, storage=target)
        except KeyError:
            pass  # not created yet
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
    elif folder is not None:
        for file in files:
            (folder.folder / file.name).unlink(missing_ok=True)


@dataclass(frozen=True)
class Deleted:
    """What ``sweep delete`` removed."""

    trials: int
    files: int
    folder: Path | None
    confirm_trials: int | None = None
    """Trials of the companion study deleted with it (``None``: it had none)."""


def delete_study(url: str, name: str, *, artifacts: str | None = None) -> Deleted:
    """Delete study ``name``'s rows and its artifact files (then its folder, once empty).

    The files of other studies that share the folder (older studies' layout) stay, and so does
    a folder that is another database's (a ``.backup`` copy of an older study reading its
    original's, :attr:`sweep.store.artifacts.Located.foreign`). Its companion ``NAME.confirm``
    (confirmation runs, no artifact files) goes too.

    Raises:
        StudyNotFoundError, StorageError.
    """
    import optuna

    from sweep.store.rdb import open_storage

    found = study_files(url, name, artifacts)
    foreign = found.located is not None and found.located.foreign
    files = [] if foreign else found.present()  # never another database's files
    companion = companion_trials(url, name)
    optuna.delete_study(study_name=name, storage=open_storage(url))
    if companion is not None:
        optuna.delete_study(study_name=name + CONFIRM_SUFFIX, storage=open_storage(url))
    for file in files:
        file.unlink(missing_ok=True)
    folder = found.located.folder if found.located is not None else None
    roots = {default_root(url), Path(artifacts).absolute() if artifacts else None}
    if folder is not None and folder.is_dir() and folder not in roots and not foreign:
        try:
            folder.rmdir()  # only when empty: never another study's files
        except OSError:
            _logger.info("kept '%s': it holds other files", folder)
    return Deleted(found.trials, len(files), folder, companion)
