"""The one output path of every command (issue 17, points 1, 2, 8, 9).

- A regular file (or a new name) is written atomically: a temporary file beside it, flushed, fsynced,
  renamed into place. An interrupted command leaves the old file or the new one, never half of one,
  and no temporary file (every exception, KeyboardInterrupt and SIGTERM's included, removes it).
  A symbolic link to a regular file is kept: its target is replaced, not the link.
- A target that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO, a terminal)
  is written THROUGH, never replaced: the bytes are produced in a private temporary file first (so
  a failing writer sends nothing), then copied into it.
- ``-`` is standard output, for the formats that allow it (:func:`check_output`'s ``stdout_ok``).
- Every OS error (a directory target, a missing folder, EROFS, EACCES, ENOSPC, ENAMETOOLONG) becomes
  one :class:`InputError` ``PATH: reason`` (exit 2). :func:`check_output` finds all of them but a
  full disk *before* a command does its long work, and refuses an output that is one of its inputs.

Temporary names are ``.NAME.XXXXXXXX.tmp[SUFFIX]``, shortened to fit the folder's NAME_MAX;
:func:`remove_stale_temps` (``train --resume``) recognises them by that shape.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from toolchain.errors import InputError

STDOUT = "-"
_TEMP_SHAPE = re.compile(r"^\..*\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]{1,8})?$")


def os_reason(error: OSError) -> str:
    """The reason of an OS error, in words (``No space left on device``)."""
    if error.errno == errno.EISDIR:
        return "is a directory"
    return error.strerror or str(error)


def _is_stdout(target: str | Path) -> bool:
    return str(target) == STDOUT


def _special(target: Path) -> bool:
    """True when ``target`` exists and is not a regular file or a directory (a device, FIFO, socket)."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _resolve_link(target: Path) -> Path:
    """A symbolic link is written through to what it names (the link stays a link)."""
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def same_file(a: str | Path, b: str | Path) -> bool:
    """Same device and inode (hard links, bind mounts, ``./x`` vs ``x``), or the same resolved path."""
    try:
        first, second = os.stat(a), os.stat(b)
        if (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(target: str | Path, *, inputs: Iterable[str | Path | None] = (), stdout_ok: bool = False,
                 what: str | None = None) -> None:
    """Refuse, before any long work, an output that cannot be written or would destroy an input.

    Probes the folder with a real temporary file of the length the atomic writer will use, so
    read-only file systems, permissions and over-long names are found now, not after the work."""
    try:
        _check_output(target, inputs, stdout_ok, what)
    except OSError as error:  # e.g. a folder on the way that cannot be searched
        raise InputError(os_reason(error), file=target, where=what) from None


def _check_output(target: str | Path, inputs: Iterable[str | Path | None], stdout_ok: bool, what: str | None) -> None:
    if _is_stdout(target):
        if not stdout_ok:
            raise InputError("this output cannot be standard output ('-'); give a file name", file=target, where=what)
        return
    target = Path(target)
    for given in inputs:
        if given is not None and not _is_stdout(given) and same_file(target, given):
            raise InputError(f"is also an input of this command (same file as {given}); refusing to overwrite it",
                             file=target, where=what)
    if target.is_dir():
        raise InputError("is a directory; give a file name", file=target, where=what)
    if _special(target):
        return  # written through: a FIFO or device is opened at write time, nothing to probe
    target = _resolve_link(target)
    parent = target.parent
    if not parent.is_dir():
        reason = "is not a directory" if parent.exists() else "does not exist"
        raise InputError(f"folder {parent} {reason}", file=target, where=what)
    if len(target.name.encode()) > _name_max(parent):
        raise InputError(os.strerror(errno.ENAMETOOLONG), file=target, where=what)
    try:
        with _temporary(target, "") as probe:
            probe.write_bytes(b"")
    except OSError as error:
        raise InputError(os_reason(error), file=target, where=what) from None
    try:
        space = os.statvfs(parent)
    except OSError:
        return
    if (space.f_bfree if os.geteuid() == 0 else space.f_bavail) == 0:  # root may use the reserved blocks
        raise InputError("No space left on device", file=target, where=what)


def check_folder(folder: str | Path, *, what: str | None = None) -> Path:
    """An output FOLDER (``export -o``, ``train -o``, ``pipeline --out``): refused, before the long work,
    if a file is in the way or the folder (or, when missing, its nearest existing parent, where it will
    be created) cannot be written. Creates nothing: a refused command leaves the tree as it was."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError("exists and is not a folder; give a folder name", file=existing, where=what)
    try:
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix=".probe.", suffix=".tmp")
        probe.close()
    except OSError as error:
        raise InputError(os_reason(error), file=existing, where=what) from None
    return folder


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


@contextlib.contextmanager
def _temporary(target: Path, suffix: str) -> Iterator[Path]:
    """A fresh empty file ``.NAME.XXXXXXXX.tmp[SUFFIX]`` beside ``target`` (NAME shortened to fit
    NAME_MAX), removed on exit unless renamed away."""
    tail = ".tmp" + suffix
    room = _name_max(target.parent) - len(".") - len(".XXXXXXXX") - len(tail.encode())
    name = target.name.encode()[:max(room, 1)].decode("utf-8", "ignore") or "out"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=tail, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``target`` (see the module docstring).

    On any exception the temporary file is removed and the target is left untouched. Use it for
    writers that want a path (``onnx.save``, ``np.save``, ``torch.save``, ``plt.savefig``).
    ``suffix`` lets writers that look at the extension (matplotlib, numpy) see the right one.
    """
    if _is_stdout(target) or _special(Path(target)):
        with _written_through(target, suffix) as tmp:
            yield tmp
        return
    target = _resolve_link(Path(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _temporary(target, suffix) as tmp:
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, _mode_for(target))
            os.replace(tmp, target)
    except OSError as error:
        raise InputError(os_reason(error), file=target) from None


@contextlib.contextmanager
def _written_through(target: str | Path, suffix: str) -> Iterator[Path]:
    """Produce the bytes privately, then copy them into the device/FIFO/stdout (never replacing it)."""
    with tempfile.TemporaryDirectory(prefix="kelly-tc-out-") as folder:
        tmp = Path(folder) / f"output{suffix or '.tmp'}"
        yield tmp
        try:
            if _is_stdout(target):
                sys.stdout.flush()
                with open(tmp, "rb") as source:
                    shutil.copyfileobj(source, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                with open(tmp, "rb") as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        except OSError as error:
            raise InputError(os_reason(error), file=target) from None


@contextlib.contextmanager
def locked_folder(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder`` (writers of a file PAIR, e.g. ``convert --int8``: two
    runs into the same pair then write one after the other, never interleaved)."""
    import fcntl

    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files a killed run left in ``folder`` (and below); returns them."""
    removed = []
    for path in Path(folder).rglob(".*"):
        if path.is_file() and _TEMP_SHAPE.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 & ~umask (mkstemp makes 0600)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (NaN and Infinity refused: RTNeural's parser rejects them)."""
    return write_text(target, json.dumps(obj, indent=indent, allow_nan=False) + "\n")
