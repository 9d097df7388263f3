"""The one input path of every reader (issue 17, points 3 and 4).

A FIFO given as a model would block forever, a link to ``/dev/zero`` would read until memory runs out,
a 128-byte ``.npy`` can declare a 112 GiB array. So every file kelly-tc reads comes through here:

- :func:`regular_file` -- it exists and is a regular file (links followed), else one ``InputError``
  naming the file and what it is (a FIFO, a character device, a folder);
- :func:`read_bytes` / :func:`read_text` -- the same, then a size cap checked from ``stat`` before a
  byte is read (and enforced while reading: a file that grows is cut at the cap and refused);
- :func:`load_array` -- ``.npy`` or ``.npz`` recognised by content (magic bytes), never by extension;
  every array's header (dtype, shape) is validated against :data:`MAX_ARRAY_BYTES` and against the
  bytes the file really holds BEFORE numpy allocates anything.
"""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from toolchain.errors import InputError

#: Largest array (declared dtype x shape) any frame or calibration file may hold: 1 GiB, far above a
#: real input ([frames, features] float32 of an hour of audio at 100 frames/s is a few MB).
MAX_ARRAY_BYTES = int(os.environ.get("KELLY_TC_MAX_ARRAY_BYTES", 1 << 30))
#: Largest text file (a CSV of frames, a config): 256 MiB.
MAX_TEXT_BYTES = int(os.environ.get("KELLY_TC_MAX_TEXT_BYTES", 256 << 20))
NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def regular_file(path: str | Path, what: str | None = None) -> os.stat_result:
    """``os.stat(path)`` if ``path`` is a regular file (after links), else an :class:`InputError`."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file", file=path, where=what) from None
    except OSError as error:
        raise InputError(error.strerror or str(error), file=path, where=what) from None
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a regular file")
        raise InputError(f"is {kind}, not a regular file", file=path, where=what)
    return status


def read_bytes(path: str | Path, limit: int, what: str | None = None, setting: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, refused above ``limit`` bytes (``setting``: the
    environment variable that moves the limit, named in the refusal)."""
    size = regular_file(path, what).st_size
    if size > limit:
        raise InputError(f"file is {size} bytes, above the {limit}-byte limit" + (f" ({setting})" if setting else ""),
                         file=path, where=what)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise InputError(error.strerror or str(error), file=path, where=what) from None
    if len(data) > limit:
        raise InputError(f"file grew above the {limit}-byte limit while being read", file=path, where=what)
    return data


def read_text(path: str | Path, limit: int = MAX_TEXT_BYTES, what: str | None = None) -> str:
    """The UTF-8 text of the regular file ``path`` (a BOM is dropped), refused above ``limit`` bytes."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start})", file=path, where=what) from None


def _npy_header(stream, path: str | Path, member: str | None, available: int, limit: int) -> None:
    """Validate one ``.npy`` header read from ``stream``: a plain numeric dtype, a declared size
    within ``limit`` and no larger than the ``available`` bytes that follow the header."""
    where = f"array '{member}'" if member else None
    start = stream.tell()
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=10_000)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=10_000)
    except (ValueError, EOFError, OSError) as error:
        raise InputError(f"not a readable .npy array: {str(error)[:160]}", file=path, where=where) from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise InputError(f"expected numbers, got dtype {dtype}", file=path, where=where)
    count = 1
    for dimension in shape:
        count *= int(dimension)  # Python ints: a declared (10**10, 3) cannot overflow here
    declared = count * dtype.itemsize
    if declared > limit:
        raise InputError(f"header declares shape {list(shape)} of {dtype} ({declared} bytes), above the "
                         f"{limit}-byte limit (KELLY_TC_MAX_ARRAY_BYTES)", file=path, where=where)
    held = available - (stream.tell() - start)
    if declared > held:
        raise InputError(f"truncated: header declares shape {list(shape)} of {dtype} ({declared} bytes) but "
                         f"the file holds {held}", file=path, where=where)


def load_array(path: str | Path, limit: int = MAX_ARRAY_BYTES, what: str | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """An ``.npy`` file's array, or an ``.npz`` file's arrays by name, whatever the file is called."""
    size = regular_file(path, what).st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(NPY_MAGIC))
            handle.seek(0)
            if head.startswith(NPY_MAGIC):
                _npy_header(handle, path, None, size, limit)
                handle.seek(0)
                return np.load(handle, allow_pickle=False)
            if head.startswith(ZIP_MAGIC):
                return _load_npz(handle, path, limit)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"not a readable .npy/.npz file: {str(error)[:160]}", file=path, where=what) from None
    raise InputError("not a .npy or .npz file (no NumPy or zip magic bytes)", file=path, where=what)


def _load_npz(handle, path: str | Path, limit: int) -> dict[str, np.ndarray]:
    arrays, total = {}, 0
    with zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with archive.open(info) as member:
                header = io.BytesIO(member.read(10_100))  # magic + the largest header allowed
                _npy_header(header, path, name, info.file_size, limit - total)
            total += info.file_size
            with archive.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays
