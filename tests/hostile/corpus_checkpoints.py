"""Damaged training checkpoints: each builder copies a real training output folder and breaks both
``MODEL/best.ckpt`` (read by ``export``) and ``MODEL/latest.ckpt`` (read by ``train --resume``) the
same way. The exploit case carries a pickle that would create a marker file if it were ever unpickled.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

from toolchain.kelly.checkpoint import BEST, LATEST, MAGIC

from tests.hostile.support import CHECKPOINT_MODEL

#: Created by the exploit payload if anything ever unpickles it (the tests assert it never exists).
EXPLOIT_MARKER = "UNPICKLED-BY-KELLY-TC"


class Exploit:
    """Unpickling this calls ``os.makedirs(marker)``: code execution from a model file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


FIFO = object()  # a _damage change returning this puts a FIFO where the checkpoint was


def _with_header(data: bytes) -> bytes:
    return MAGIC + b"sha256 " + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def _damage(change):
    """A builder: copy ``source`` (a training output folder) to ``folder/run`` and ``change(raw, run) -> raw``
    both checkpoints of CHECKPOINT_MODEL; return the run folder."""
    def build(folder: Path, source: Path) -> Path:
        run = folder / "run"
        shutil.copytree(source, run)
        for name in (BEST, LATEST):
            path = run / CHECKPOINT_MODEL / name
            content = change(path.read_bytes(), run)
            if content is None:  # a directory where the file was
                path.unlink()
                path.mkdir()
            elif content is FIFO:  # a named pipe nobody writes to: a reader that opens it hangs (issue 17.3)
                path.unlink()
                os.mkfifo(path)
            else:
                path.write_bytes(content)
        return run
    build.__doc__ = change.__doc__
    return build


def _flip(raw, run):
    data = bytearray(raw)
    data[len(data) * 2 // 3] ^= 0x10
    return bytes(data)


def _plain_torch(raw, run):
    """The payload saved by torch.save alone, without kelly-tc's header."""
    return raw[raw.index(b"\n", len(MAGIC)) + 1:]


def _exploit(raw, run):
    import torch

    buffer = io.BytesIO()
    torch.save({"model_state": {}, "payload": Exploit(run.parent / EXPLOIT_MARKER)}, buffer)
    return _with_header(buffer.getvalue())


def _other_model(raw, run):
    """A sound checkpoint that claims to be another model's (digest recomputed over the edited payload)."""
    import torch

    payload = torch.load(io.BytesIO(_plain_torch(raw, run)), weights_only=True)
    payload["model"] = "GroovePredictor"
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return _with_header(buffer.getvalue())


CORRUPT = r"checkpoint is corrupt: its SHA-256 does not match the one recorded at save"

#: name -> (builder, reason regex; the WHERE part is empty, the file is MODEL/latest.ckpt or best.ckpt).
CHECKPOINT_CASES = {
    "checkpoint_flipped_byte": (_damage(_flip), CORRUPT),
    "checkpoint_truncated": (_damage(lambda raw, run: raw[: len(raw) * 3 // 4]), CORRUPT),
    "checkpoint_empty": (_damage(lambda raw, run: b""), r"not a kelly-tc checkpoint \(missing header\)"),
    "checkpoint_without_header": (_damage(_plain_torch), r"not a kelly-tc checkpoint \(missing header\)"),
    "checkpoint_damaged_header": (_damage(lambda raw, run: MAGIC + b"sha256 0123\n" + raw[len(MAGIC):]), r"damaged checkpoint header"),
    "checkpoint_pickle_exploit": (_damage(_exploit), r"checkpoint refused by torch\.load\(weights_only=True\): Trying to load unsupported GLOBAL os\.makedirs "
                                   r"whose module os is blocked\."),
    "checkpoint_of_another_model": (_damage(_other_model), r"checkpoint is for GroovePredictor .*, not .*"),
    "checkpoint_is_a_directory": (_damage(lambda raw, run: None), r"is a directory, not a regular file"),
    "checkpoint_is_a_fifo": (_damage(lambda raw, run: FIFO), r"is a FIFO \(named pipe\), not a regular file"),
}
