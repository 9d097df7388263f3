"""Training checkpoints: written atomically, with a SHA-256 checked before anything is unpickled.

File layout (``best.ckpt``, ``latest.ckpt``)::

    KELLY-TC-CHECKPOINT 1\\n
    sha256 <64 hex digits of the payload>\\n
    <payload: torch.save of a dict of tensors, numbers, strings, lists and dicts>

The digest sits in the same file as the payload, so one atomic rename replaces both: a killed run
leaves the old checkpoint or the new one, never a mismatched pair. Loading verifies the digest first
(a truncated or altered file is refused) and then uses ``torch.load(weights_only=True)``, which
refuses arbitrary pickled objects even in a file whose digest matches.
"""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import torch

from toolchain import atomic
from toolchain.errors import InputError
from toolchain.inputs import read_bytes

MAGIC = b"KELLY-TC-CHECKPOINT 1\n"
BEST, LATEST = "best.ckpt", "latest.ckpt"
#: The Kelly models are under 1 M parameters (a few MB); 2 GiB refuses only what cannot be a checkpoint of ours.
MAX_CHECKPOINT_BYTES = 2 << 30


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode("ascii")
    return atomic.write_bytes(path, MAGIC + b"sha256 " + digest + b"\n" + data)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The payload of a checkpoint; :class:`InputError` if it is missing, damaged or not ours."""
    path = Path(path)
    raw = read_bytes(path, MAX_CHECKPOINT_BYTES)  # regular files only: a FIFO would block forever
    if not raw.startswith(MAGIC):
        raise InputError("not a kelly-tc checkpoint (missing header)", file=path)
    header_end = raw.find(b"\n", len(MAGIC))
    header = raw[len(MAGIC):header_end]
    if header_end < 0 or not header.startswith(b"sha256 ") or len(header) != 7 + 64:
        raise InputError("damaged checkpoint header", file=path)
    data = raw[header_end + 1:]
    if hashlib.sha256(data).hexdigest().encode("ascii") != header[7:]:
        raise InputError("checkpoint is corrupt: its SHA-256 does not match the one recorded at save", file=path)
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises UnpicklingError/RuntimeError for what weights_only refuses
        raise InputError(f"checkpoint refused by torch.load(weights_only=True): {_one_line(error)}", file=path) from None
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise InputError("checkpoint holds no model_state", file=path)
    return payload


def _one_line(error: Exception) -> str:
    """torch's weights_only refusal spans many lines with terminal colour codes: keep the line that
    names what was refused (``... GLOBAL os.system ...``), else the first line, without the codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    named = [line for line in lines if "GLOBAL" in line or "WeightsUnpickler error" in line]
    return ((named or lines or [type(error).__name__])[0])[:200]


def load_trained_model(directory: str | Path, name: str, which: str = BEST):
    """The trained ``KellyModel`` ``name`` from a training output ``directory`` (``<dir>/<name>/best.ckpt``)."""
    from toolchain.kelly.models import build_model

    path = Path(directory) / name / which
    payload = load_checkpoint(path)
    model = build_model(name)
    if payload.get("model") != name or payload.get("stack") != model.spec.stack():
        raise InputError(f"checkpoint is for {payload.get('model')} {payload.get('stack')}, not {name} {model.spec.stack()}",
                         file=path)
    model.load_state_dict(payload["model_state"])
    return model.eval()
