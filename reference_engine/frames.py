"""Frame files: ``[frames, features]`` arrays as ``.npy`` or as CSV in RTNeural's test-vector layout.

RTNeural's test vectors (``test_data/*_x_python.csv``) hold one frame per line, features separated by
commas (a single column when the model takes one value per frame). Values are read as float64 and
converted to float32 explicitly, as RTNeural's tests do.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from toolchain import atomic
from toolchain.errors import InputError
from toolchain.inputs import load_array, read_text

SUFFIXES = (".npy", ".csv")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"unsupported frame file type {suffix or '(none)'!r}; use .npy or .csv", file=path)
    return suffix


def read_frames(path: str | Path, input_size: int) -> np.ndarray:
    """Load ``[frames, input_size]`` float32 frames; a 1-D file is a single-feature stream when ``input_size`` is 1."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".npy":
        raw = single_array(load_array(path), path)  # by content: an .npz named .npy is recognised
    else:
        text = read_text(path)
        if not text.strip():
            raise InputError("empty CSV file: no frames", file=path)
        try:
            with warnings.catch_warnings():  # numpy warns on odd input; the error line says it all
                warnings.simplefilter("ignore")
                raw = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise InputError(f"not a readable CSV frame file: {str(error)[:200]}", file=path) from None
    if raw.size == 0:
        raise InputError("no frames", file=path)
    if raw.dtype.kind not in "iuf":
        raise InputError(f"expected numbers, got dtype {raw.dtype}", file=path)
    if raw.ndim == 1 and input_size == 1:
        raw = raw[:, None]
    if raw.ndim != 2 or raw.shape[1] != input_size:
        raise InputError(f"expected frames of shape [frames, {input_size}], got {list(raw.shape)}", file=path)
    with np.errstate(over="ignore"):  # float64 beyond float32 becomes Inf, as the engine docs say; no warning line
        return np.ascontiguousarray(raw, dtype=np.float32)


def single_array(loaded, path: str | Path) -> np.ndarray:
    """The array of a ``.npy`` file, or of an ``.npz`` archive holding exactly one."""
    if isinstance(loaded, np.ndarray):
        return loaded
    if len(loaded) != 1:
        raise InputError(f"is an .npz archive of {len(loaded)} arrays; frames need one [frames, features] array", file=path)
    return next(iter(loaded.values()))


def write_frames(path: str | Path, frames: np.ndarray) -> Path:
    """Write ``[frames, features]`` atomically as ``.npy`` (float32) or CSV (one frame per line)."""
    path = Path(path)
    suffix = _suffix(path)
    with atomic.atomic_path(path, suffix=suffix) as temporary:
        if suffix == ".npy":
            np.save(temporary, np.asarray(frames, dtype=np.float32))
        else:
            np.savetxt(temporary, np.asarray(frames, dtype=np.float64), delimiter=",", fmt="%.9e")
    return path


def default_output_path(input_path: str | Path) -> Path:
    """``X.npy`` -> ``X.out.npy`` beside the input (same format)."""
    input_path = Path(input_path)
    return input_path.with_name(f"{input_path.stem}.out{input_path.suffix}")
