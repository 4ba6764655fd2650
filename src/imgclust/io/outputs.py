"""Output folders that appear whole or not at all, and never lose a file of the user's.

Every command writes into a hidden staging folder beside its output folder (or inside it, when
it exists already: a mounted volume's parent is another file system) and moves the results
into place only when all of them are written, so an error or an interrupted run never leaves
half-written files behind.

Each output folder holds a record of what imgclust wrote into it (:data:`RECORD_NAME`, a small
JSON file). A later run into the same folder with ``overwrite`` replaces and deletes only the
files in that record: the files an earlier run wrote that the new run does not write are
removed (no stale results), every other file in the folder is the user's and is kept, and a
file or folder of the user's where the new run would write is a refusal, before any work where
the job names its outputs up front (``names``) and in any case before anything is moved.

Staging folders are created with the mode the umask gives (as ``mkdir`` does), not
``mkdtemp``'s 0700, and hold a lock file: a later run removes a staging folder whose lock is
free, i.e. one left by a run that was killed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType

from imgclust.errors import OutputError, OutputExistsError

try:  # POSIX: a staging folder's lock tells a live run's folder from a killed run's
    import fcntl
except ImportError:  # pragma: no cover - Windows: leftover staging folders are kept
    fcntl = None

__all__ = [
    "RECORD_NAME",
    "OutputRecord",
    "StagedOutputDir",
    "check_output_dir",
    "csv_text",
    "json_text",
    "output_names",
    "read_record",
    "record_output",
    "write_text_atomic",
]

#: The record of the files imgclust wrote into an output folder.
RECORD_NAME = ".imgclust-outputs.json"
_RECORD_FORMAT = "imgclust-outputs/2"
#: Earlier records (no content digests) are still read.
_RECORD_FORMATS = ("imgclust-outputs/1", _RECORD_FORMAT)
_LOCK_NAME = ".imgclust-staging.lock"
#: Written into a staging folder when its files start moving into the output folder: what the
#: record must say when they are all there. A run killed during the moves leaves it, and the
#: next run into the folder finishes the moves from it (:func:`_roll_forward`).
_COMMIT_NAME = ".imgclust-commit.json"
_STAGING_SUFFIX = ".tmp"
#: Staging folders inside an output folder that exists already (a mounted volume, say: its
#: parent may be another file system, across which nothing can be renamed).
_INNER_PREFIX = ".imgclust-staging."
_SHOWN = 3  # paths named in a refusal


#: A file's size, modification time (ns), inode and content digest (None for a hard-linked
#: export of the user's photo, a link, or a record of an earlier version) as imgclust left it.
Stamp = tuple[int, int, int, "str | None"]
#: Modification times within this of the recorded one still match (files without a digest):
#: ZIP archives and FAT keep them to 2 s.
_MTIME_SLACK_NS = 2_000_000_000
_DIGEST_BYTES = 16
_CHUNK = 1 << 20


def _digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path, known: str | None = None) -> Stamp:
    """How ``path`` is now, with the digest of its content: an edit that keeps size and time
    is still seen, and a copy of the folder (``cp -r``, new times and inodes) is still
    recognised. ``known`` is the digest of an exported photo (a copy or a hard link), taken
    from the bytes read for its features, so that no photo is read again; a link has none."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        digest = None
    elif known is not None:
        digest = known
    else:
        digest = _digest(path) if info.st_nlink == 1 else None
    return info.st_size, info.st_mtime_ns, info.st_ino, digest


def _unchanged(path: Path, stamp: Stamp) -> bool:
    """Whether ``path`` is still the file imgclust left there: the same content (its digest:
    untouched files, with their size, time and inode as recorded, are not read again); for a
    file without a digest, the same size and time, or the same inode with another name
    besides (a hard-linked export of a photo the user has edited since: removing imgclust's
    name for it loses nothing)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if info.st_ino == stamp[2] and info.st_nlink > 1 and not stat.S_ISLNK(info.st_mode):
        return True  # a hard-linked export of a photo, edited or not: the user keeps the photo
    digest = stamp[3] if len(stamp) > 3 else None
    if digest is not None:
        if not stat.S_ISREG(info.st_mode) or info.st_size != stamp[0]:
            return False
        if (info.st_mtime_ns, info.st_ino) == (stamp[1], stamp[2]):
            return True
        try:
            return _digest(path) == digest
        except OSError:
            return False
    return info.st_size == stamp[0] and abs(info.st_mtime_ns - stamp[1]) <= _MTIME_SLACK_NS


@dataclass
class OutputRecord:
    """What imgclust wrote into an output folder: relative POSIX paths of files (and links)
    with their stamps (size, modification time, inode, content digest), and the folders it
    created. ``readable`` is False when a record exists but cannot be used (then nothing in
    the folder counts as imgclust's).

    A recorded file still counts as imgclust's only while its content is what imgclust wrote
    (:func:`_unchanged`): a file the user has since replaced or edited is the user's.
    """

    folder: Path = field(default_factory=Path)
    files: dict[str, Stamp] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    readable: bool = True

    def owns(self, relative: str, is_folder: bool) -> bool:
        """Whether ``relative`` (a file, or a folder) is imgclust's, unchanged since."""
        if is_folder:
            return relative in self.folders
        stamp = self.files.get(relative)
        return stamp is not None and _unchanged(self.folder / relative, stamp)

    def owned_files(self) -> dict[str, Stamp]:
        """The recorded files that are still as imgclust left them."""
        return {path: stamp for path, stamp in self.files.items() if self.owns(path, False)}


def _safe_relative(value: object) -> str | None:
    """``value`` as a relative path inside a folder, or None (absolute, ``..``, not text)."""
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value:
        return None
    # plain string checks (a record of 100,000 exports is read on every commit: PurePosixPath
    # took 1.2 s of a 20,000-image folder's); stricter than a path's parts (no "a//b", no
    # trailing "/"), which imgclust never writes
    if value.startswith("/") or any(part in ("", ".", "..") for part in value.split("/")):
        return None
    return value


def read_record(folder: str | os.PathLike) -> OutputRecord:
    """The record of what imgclust wrote into ``folder`` (empty if it has none).

    Paths that are absolute or climb out of the folder are ignored, so a record that was
    tampered with cannot make a run delete anything outside its folder.
    """
    folder = Path(folder)
    path = folder / RECORD_NAME
    if not path.is_file():
        return OutputRecord(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") not in _RECORD_FORMATS:
            raise ValueError("not an imgclust output record")
        files = {_safe_relative(name): _read_stamp(value) for name, value in data["files"].items()}
        files.pop(None, None)
        folders = {p for p in map(_safe_relative, data["folders"]) if p}
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
        OverflowError,
    ):  # OverflowError: a stamp of 1e400 (JSON's infinity) is no whole number
        return OutputRecord(folder, readable=False)
    return OutputRecord(folder, files, folders)


def _read_stamp(value) -> Stamp:
    """A recorded stamp: ``[size, mtime, inode]`` (earlier records) or with a digest."""
    size, mtime, inode, *rest = value
    digest = rest[0] if rest else None
    if len(rest) > 1 or not (digest is None or isinstance(digest, str)):
        raise ValueError("not a stamp")
    return int(size), int(mtime), int(inode), digest


def _write_record(folder: Path, files: dict[str, Stamp], folders: Iterable[str]) -> None:
    from imgclust import __version__

    data = {
        "format": _RECORD_FORMAT,
        "note": "Files imgclust wrote here, with their size, modification time (ns), inode "
        "and content digest (BLAKE2b; none for hard-linked exports); a run with --overwrite "
        "replaces or deletes only these while they are unchanged, and keeps every other file.",
        "imgclust_version": __version__,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": {name: list(files[name]) for name in sorted(files)},
        "folders": sorted(set(folders)),
    }
    # compact, on one line: json_text's indentation and its walk for non-finite numbers (a
    # record holds none) took 0.2 s a write on a folder of 20,000 exports
    text = json.dumps(data, separators=(",", ":"))
    write_text_atomic(folder / RECORD_NAME, text)


def _contents(folder: Path) -> tuple[list[str], list[str]]:
    """Relative paths of the files (links included) and folders under ``folder``."""
    files: list[str] = []
    folders: list[str] = []
    for here, dirs, names in os.walk(folder):
        base = Path(here).relative_to(folder)
        for name in dirs:
            path = Path(here) / name
            (files if path.is_symlink() else folders).append((base / name).as_posix())
        files.extend((base / name).as_posix() for name in names)
    return files, folders


def _in_the_way(final: Path, record: OutputRecord, relative: str, is_folder: bool) -> bool:
    """Whether something not of imgclust's stands where ``relative`` is to be written."""
    path = final / relative
    if not os.path.lexists(path):
        return False
    if is_folder and path.is_dir() and not path.is_symlink():
        return not record.owns(relative, True)
    return not record.owns(relative, False) or (path.is_dir() and not path.is_symlink())


def _refuse_what_is_in_the_way(final: Path, in_the_way: list[str], record: OutputRecord):
    shown = ", ".join(str(final / p) for p in in_the_way[:_SHOWN])
    more = f" and {len(in_the_way) - _SHOWN} more" if len(in_the_way) > _SHOWN else ""
    if not record.readable:
        why = f"its record {RECORD_NAME} cannot be read"
    elif in_the_way[0] in record.files:
        why = "it changed since imgclust wrote it"
    else:
        why = "imgclust did not write it"
    raise OutputExistsError(
        f"{shown}{more} is in the way of this run's outputs and {why}; nothing was changed: "
        "move it away or choose another output folder"
    )


def _check_names(final: Path, names: Iterable[str]) -> None:
    """Refuse up front when a user's file or folder has the name of one of the outputs."""
    if not final.is_dir():
        return
    record = read_record(final)
    in_the_way = [
        name
        for name in names
        if os.path.lexists(final / name)
        and not record.owns(name, (final / name).is_dir() and not (final / name).is_symlink())
    ]
    if in_the_way:
        _refuse_what_is_in_the_way(final, in_the_way, record)


def _absolute(path: Path) -> Path:
    """``path`` absolute and normalised (``-o .`` and ``-o ..`` have a real name)."""
    return Path(os.path.abspath(path))


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def _check_writable(final: Path) -> None:
    """Make and remove a folder where the run will stage (inside ``final`` when it exists,
    else where it will be made), so that a location that cannot be written is refused before
    any work (a permission check alone is wrong for root, ACLs, read-only mounts)."""
    place = final if final.is_dir() else _nearest_existing(_absolute(final).parent)
    if not place.is_dir():
        raise OutputError(
            f"{place} is a file, so the output folder {final} cannot be made there; "
            "choose another output folder"
        )
    try:
        probe = place / f".imgclust-probe-{secrets.token_hex(6)}"
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        raise OutputError(
            f"cannot write in {place} ({exc.strerror or exc}); choose an output folder you "
            "can write to"
        ) from None


#: Characters of the output folder's name kept in its staging folder's name: the staging name
#: adds 14, and a file name may have 255 bytes at most (a legal 245-character output name
#: failed with "File name too long").
_NAME_KEPT = 200


def _outer_prefix(final: Path) -> str:
    """The start of the names of ``final``'s staging folders beside it."""
    name = final.name
    while len(os.fsencode(name)) > _NAME_KEPT:  # bytes, not characters, are limited
        name = name[:-1]
    return f".{name}."


def _is_inner_staging(name: str) -> bool:
    return name.startswith(_INNER_PREFIX) and name.endswith(_STAGING_SUFFIX)


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` holds anything but imgclust's own staging folders."""
    return any(not _is_inner_staging(entry.name) for entry in folder.iterdir())


def _staging_folders(place: Path, prefix: str) -> list[Path]:
    with contextlib.suppress(OSError):
        return [
            Path(entry.path)
            for entry in os.scandir(place)
            if entry.name.startswith(prefix)
            and entry.name.endswith(_STAGING_SUFFIX)
            and entry.is_dir(follow_symlinks=False)
        ]
    return []


def remove_abandoned_staging(final: str | os.PathLike) -> int:
    """Clear up after runs into ``final`` that were killed; return how many staging folders
    were removed.

    A staging folder (beside ``final``, or inside it when it existed) is touched only when it
    holds imgclust's lock file and no process holds that lock (a live run does, until it
    ends), so a run in progress is never disturbed. One whose files had started moving into
    ``final`` (its commit note is there) has the moves finished first, so the folder holds the
    killed run's results whole; any other is removed (its run had written nothing into
    ``final``). Temporary record files of killed runs go too, when no run is live.
    """
    final = _absolute(final)
    if fcntl is None:
        return 0
    candidates = _staging_folders(final.parent, _outer_prefix(final))
    if final.is_dir():
        candidates += _staging_folders(final, _INNER_PREFIX)
    outcomes = [_remove_if_abandoned(folder, final) for folder in candidates]
    if final.is_dir() and os.path.lexists(final / _LOCK_NAME):  # renamed in, then killed
        outcomes.append(_remove_stray_lock(final / _LOCK_NAME))
    if final.is_dir() and None not in outcomes:  # no live run: its record may be half-written
        for temporary in final.glob(f".{RECORD_NAME}.*{_STAGING_SUFFIX}"):
            with contextlib.suppress(OSError):
                temporary.unlink()
    return sum(1 for removed in outcomes if removed)


def _remove_stray_lock(path: Path) -> bool | None:
    """Remove the lock file of a staging folder renamed into place by a run killed before it
    removed it (None while a live run holds it)."""
    try:
        handle = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    finally:
        os.close(handle)
    path.unlink(missing_ok=True)
    return False


def _remove_if_abandoned(folder: Path, final: Path) -> bool | None:
    """True when ``folder`` was abandoned and is gone (its moves finished first), False when
    it is not imgclust's, None when a live run holds it."""
    try:
        handle = os.open(folder / _LOCK_NAME, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # not a staging folder of imgclust's (or it is being renamed into place)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return None  # a live run holds it
    try:
        if folder.parent == final and (folder / _COMMIT_NAME).is_file():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                _roll_forward(folder, final)
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(handle)
    return True


def check_output_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    names: Iterable[str] = (),
    merge: bool = False,
) -> Path:
    """Check an output folder before any work is done.

    Refuses a path that is a file, a folder that already holds files (unless ``overwrite``
    or ``merge``, see :class:`StagedOutputDir`), a file or folder of the user's that has the
    name of one of the outputs (``names``; files recorded as imgclust's may be replaced), and
    a location that cannot be written. Also removes staging folders left there by killed runs.

    Returns the path; raises :class:`OutputExistsError` or :class:`OutputError` with what to
    do about it.
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputExistsError(f"{path} exists and is not a folder; choose another output folder")
    remove_abandoned_staging(path)  # first: it finishes a killed run's moves
    record = path / RECORD_NAME
    if os.path.lexists(record) and (record.is_symlink() or not record.is_file()):
        raise OutputExistsError(
            f"{record} is not imgclust's record of its outputs (a folder or a link of that "
            "name); nothing was changed: move it away or choose another output folder"
        )
    if path.is_dir() and _holds_files(path):
        if not (overwrite or merge):
            raise OutputExistsError(
                f"{path} already holds files; pass --overwrite (overwrite=True) to replace the "
                "results of an earlier run in it, or choose another output folder"
            )
        _check_names(path, names)
    _check_writable(path)
    return path


class StagedOutputDir:
    """Context manager: write into :attr:`path`, which becomes ``final`` on success.

    On an exception the staging folder is removed and ``final`` is left as it was. With
    ``overwrite``, an existing ``final`` keeps every file that imgclust did not write; the
    files of an earlier run there (its record) are replaced or, when this run does not write
    them again, deleted. With ``merge``, the files are added to ``final`` (which may hold
    anything) and recorded with the earlier ones; nothing is deleted. Something of the user's
    in the way of an output is refused (:class:`OutputExistsError`) before anything moves.

    Parameters
    ----------
    final : path
        The output folder.
    overwrite : bool, default=False
        Replace an earlier run's results in a folder that holds files.
    merge : bool, default=False
        Add to the folder (its earlier outputs of imgclust's may be replaced).
    names : iterable of str
        The names the job may write at the top of the folder, checked before it starts.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result"
    >>> with StagedOutputDir(out) as stage:
    ...     _ = (stage.path / "a.txt").write_text("done")
    >>> (out / "a.txt").read_text()
    'done'
    """

    def __init__(
        self,
        final: str | os.PathLike,
        *,
        overwrite: bool = False,
        merge: bool = False,
        names: Iterable[str] = (),
    ) -> None:
        self.final = Path(final)
        self.overwrite = overwrite or merge
        self.merge = merge
        self.names = tuple(names)
        self.path: Path = Path()
        #: Digests known for files of the staging folder (relative path -> hex), so that the
        #: record need not read them: the exported photos.
        self.digests: dict[str, str] = {}
        self._lock: int | None = None
        self._made: list[Path] = []

    def __enter__(self) -> StagedOutputDir:
        check_output_dir(self.final, overwrite=self.overwrite, names=self.names, merge=self.merge)
        final = _absolute(self.final)
        if final.is_dir():  # stage inside: the same file system, whatever the parent is
            self.path = _make_staging_folder(final, _INNER_PREFIX)
        else:
            self._made = _make_folders(final.parent)
            self.path = _make_staging_folder(final.parent, _outer_prefix(final))
        self._lock = _hold_lock(self.path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._clean_up()

    def _clean_up(self) -> None:
        """Remove what is left of the staging folder (all of it after an error, the emptied
        folders after a merge), release its lock, and remove the parents this run made if
        nothing landed in them. Moves interrupted half way (Ctrl+C, a full disk) are finished
        first; if they cannot be, the staging folder stays for the next run to finish."""
        if (self.path / _COMMIT_NAME).is_file():
            try:
                _roll_forward(self.path, _absolute(self.final))
            except (OSError, ValueError, KeyError, TypeError, KeyboardInterrupt):
                self._release()
                return
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty

    def _commit(self) -> None:
        files, folders = _contents(self.path)
        files.remove(_LOCK_NAME)
        final = self.final
        # it may have changed meanwhile
        check_output_dir(final, overwrite=self.overwrite, names=self.names, merge=self.merge)
        if not os.path.lexists(final):  # the rename is the whole commit
            stamps = {name: _stamp(self.path / name, self.digests.get(name)) for name in files}
            _write_record(self.path, stamps, folders)
            try:
                os.rename(self.path, final)
            except OSError as exc:
                raise OutputError(f"cannot create {final} ({exc.strerror or exc})") from None
            # the lock went along (unlinking it first left a lockless staging folder, never
            # recognised as abandoned, when a run was killed right there)
            (final / _LOCK_NAME).unlink(missing_ok=True)
            return
        try:
            self._merge_into(final, files, folders)
        except OutputExistsError:
            raise
        except OSError as exc:
            raise OutputError(
                f"writing the results into {final} failed ({exc.strerror or exc}); the files "
                f"listed in {final / RECORD_NAME} are imgclust's"
            ) from None

    def _merge_into(self, final: Path, files: list[str], folders: list[str]) -> None:
        record = read_record(final)
        in_the_way = [p for p in folders if _in_the_way(final, record, p, True)]
        in_the_way += [p for p in files if _in_the_way(final, record, p, False)]
        if in_the_way:
            _refuse_what_is_in_the_way(final, in_the_way, record)
        owned = record.owned_files()  # a file the user changed since is the user's now
        new = {name: _stamp(self.path / name, self.digests.get(name)) for name in files}
        # First record everything that is or will be imgclust's here, so that a run killed
        # in the middle of the moves leaves no file of its own unrecorded; then note in the
        # staging folder what the record says once every file is moved, so that the moves
        # can be finished by whoever comes next (this run's clean-up, or the next run).
        _write_record(final, owned | new, record.folders | set(folders))
        after = (owned | new, record.folders | set(folders)) if self.merge else (new, folders)
        _write_note(self.path, after[0], after[1])
        if not self.merge:
            _remove_stale(final, record, set(files), set(folders))
        _roll_forward(self.path, final)


def _write_note(stage: Path, files: dict[str, Stamp], folders: Iterable[str]) -> None:
    """The commit note of ``stage``: the record its output folder gets once every file of
    ``stage`` is there."""
    data = {
        "files": {name: list(files[name]) for name in sorted(files)},
        "folders": sorted(set(folders)),
    }
    write_text_atomic(stage / _COMMIT_NAME, json.dumps(data, separators=(",", ":")))


def _roll_forward(stage: Path, final: Path) -> None:
    """Move every file still in ``stage`` into ``final`` (its folders made first), write the
    record the commit note gives, then remove the note. Each move is a rename: doing this
    again after an interruption moves what is left. A path of the note that is not a plain
    relative one, or that passes through a link in ``final``, is not moved."""
    note = json.loads((stage / _COMMIT_NAME).read_text(encoding="utf-8"))
    files = {_safe_relative(name): _read_stamp(value) for name, value in note["files"].items()}
    files.pop(None, None)
    folders = [folder for folder in map(_safe_relative, note["folders"]) if folder]
    for folder in sorted(folders, key=lambda p: p.count("/")):
        if _plain_parents(final, folder) and not (final / folder).is_dir():
            os.mkdir(final / folder)
    waiting, _ = _contents(stage)
    for name in waiting:
        if name in files and _plain_parents(final, name):
            os.replace(stage / name, final / name)
    _write_record(final, files, folders)
    (stage / _COMMIT_NAME).unlink()


def _remove_stale(final: Path, record: OutputRecord, files: set[str], folders: set[str]) -> None:
    """Delete the files an earlier run wrote that this run does not, then the folders it made
    that are left empty; anything of the user's (and the folders holding it) stays."""
    for name in sorted(set(record.files) - files):
        path = final / name
        plain = path.is_symlink() or path.is_file()
        if _plain_parents(final, name) and plain and record.owns(name, False):
            path.unlink()
    for name in sorted(record.folders - folders, key=lambda p: -p.count("/")):
        path = final / name
        if _plain_parents(final, name) and path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty


def _plain_parents(final: Path, relative: str) -> bool:
    """Whether every folder between ``final`` and ``relative`` is a real folder, not a link
    (so that nothing outside ``final`` can be reached through one)."""
    here = final
    for part in PurePosixPath(relative).parts[:-1]:
        here = here / part
        if here.is_symlink() or not here.is_dir():
            return False
    return True


def _make_folders(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it made, outermost first."""
    missing = []
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    made = []
    try:
        for path in reversed(missing):
            os.mkdir(path)
            made.append(path)
    except OSError as exc:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise OutputError(f"cannot create {path} ({exc.strerror or exc})") from None
    return made


def _make_staging_folder(parent: Path, prefix: str) -> Path:
    """A new hidden folder ``prefix<random>.tmp`` in ``parent``, with the mode the umask
    gives."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}{_STAGING_SUFFIX}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write in {parent} ({exc.strerror or exc})") from None
    raise OutputError(f"cannot make a staging folder in {parent}")  # pragma: no cover


def _hold_lock(folder: Path) -> int | None:
    """Create the staging folder's lock file and hold its lock until the run ends."""
    handle = os.open(folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def output_names(names: Iterable[str], *, report: bool = True, without: Iterable[str] = ()):
    """The names of ``names`` a run will write: without ``report.html`` when it writes no
    report, and without ``without`` (outputs its options turn off)."""
    left_out = set(without) | (set() if report else {"report.html"})
    return tuple(name for name in names if name not in left_out)


def record_output(summary: dict, output: str | os.PathLike, report: bool) -> dict:
    """Add where a job wrote (``output``) and, if it wrote one, its ``report`` to its summary."""
    summary["output"] = str(Path(output))
    if report:
        summary["report"] = str(Path(output) / "report.html")
    return summary


def csv_text(header: list[str], rows) -> str:
    """A CSV file's text: ``header`` then ``rows``, one line each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _finite_or_none(value):
    """``value`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def json_text(data, *, indent: int | None = 2, default=None) -> str:
    """Strict JSON (RFC 8259) of ``data``: NaN and infinities become ``null``, since
    ``json.dumps`` would otherwise write ``NaN`` and ``Infinity``, which other readers
    refuse."""
    if default is not None:  # let ``default`` turn what it knows into plain values first
        data = json.loads(json.dumps(data, default=default, allow_nan=True))
    return json.dumps(_finite_or_none(data), indent=indent, allow_nan=False)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place: a
    reader sees the old file or the new one, never half of one. The file gets the mode the
    umask gives, as any file the user makes."""
    path = Path(path)
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}{_STAGING_SUFFIX}"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover
        raise OutputError(f"cannot make a temporary file beside {path}")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
