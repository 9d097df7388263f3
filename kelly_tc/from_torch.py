"""``from_torch``: a trained PyTorch module to a verified RTNeural model in one call.

Both of torch's ONNX exporters run (TorchScript with a dynamic time axis, and dynamo, which fixes the
example's sizes); each export is converted, and the conversions must agree with each other, with
onnxruntime (``toolchain.check``) and with PyTorch itself, frame by frame from a reset, within ``atol``.
Only then is the model returned (and written, when a path is given). A model that does not verify
raises :class:`CheckFailed` naming the comparison; one that cannot convert, the converter's error.
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.check import DEFAULT_ATOL
from toolchain.errors import CheckFailed, InputError, UnsupportedError
from toolchain.layers import Model

INPUT_NAME, OUTPUT_NAME = "input", "output"
#: Frames of seeded random input the conversions are compared on (besides onnxruntime's own check).
CHECK_FRAMES = 64
EXPORTERS = ("dynamo=False", "dynamo=True")


@dataclass(frozen=True)
class Verification:
    """The worst max abs errors found; every one is within ``atol`` or ``from_torch`` raised."""

    exporters: tuple[str, ...]
    vs_torch: float  # engine (one frame per call) vs the module on the same frames
    vs_onnxruntime: float  # per exporter, worst of toolchain.check's comparisons
    between_exporters: float  # the two conversions on the same frames
    atol: float

    def as_dict(self) -> dict:
        return {"exporters": list(self.exporters), "max_abs_vs_torch": self.vs_torch,
                "max_abs_vs_onnxruntime": self.vs_onnxruntime, "max_abs_between_exporters": self.between_exporters,
                "atol": self.atol}


@contextlib.contextmanager
def _quiet():
    """The exporters print deprecation warnings and progress lines; a notebook wants neither."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _export(module, example, path: Path, dynamo: bool) -> Path:
    import torch

    from toolchain import atomic

    try:  # into a temporary folder of from_torch's own, atomically all the same (one rule for every writer)
        with _quiet(), atomic.atomic_path(path, suffix=".onnx") as temporary:
            if dynamo:
                torch.onnx.export(module, (example,), str(temporary), dynamo=True, external_data=False, verbose=False,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
            else:
                axes = {0: "batch", 1: "time"}
                torch.onnx.export(module, (example,), str(temporary), dynamo=False, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
    except Exception as error:  # torch raises many types; the reason is what matters
        reason = " ".join(str(error).split())[:240]
        raise UnsupportedError(f"torch.onnx.export(dynamo={dynamo}) failed: {type(error).__name__}: {reason}") from None
    return path


def _torch_frames(module, frames: np.ndarray) -> np.ndarray:
    """The module's output for ``frames [T, in]`` fed as one ``[1, T, in]`` sequence, as ``[T, out]``."""
    import torch

    with torch.no_grad():
        output = module(torch.from_numpy(frames)[None])
    if isinstance(output, (tuple, list)):
        raise UnsupportedError("the module returns several outputs; RTNeural models have one")
    return output.detach().cpu().numpy().reshape(frames.shape[0], -1).astype(np.float32)


def _engine_frames(model: Model, frames: np.ndarray) -> np.ndarray:
    from reference_engine.model import Engine

    engine = Engine(model)
    engine.reset()
    return engine.run(frames)


def from_torch(module, example_input, path: str | Path | None = None, *, atol: float = DEFAULT_ATOL,
               frames: int = CHECK_FRAMES, seed: int = 0) -> Model:
    """Export ``module`` with both torch exporters, convert, verify, return the RTNeural model.

    ``example_input``: a tensor ``[1, time, features]`` as the module takes it (``time`` >= 2; the dynamo
    export fixes it, so ``check`` then feeds that export in chunks of this length). ``path``: also write
    the verified RTNeural JSON there (atomically). The returned model's
    ``metadata["kelly_tc"]["verification"]`` holds the errors measured (:class:`Verification`)."""
    import torch

    from toolchain.check import check_files
    from toolchain.onnx_import import import_onnx
    from toolchain.graph_json import write_model  # plain RTNeural JSON, with in_skip, or a graph file, as the wiring needs

    if not isinstance(module, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(module).__name__}", where="module")
    example = torch.as_tensor(example_input, dtype=torch.float32)
    if example.ndim != 3 or example.shape[0] != 1 or example.shape[1] < 2:
        raise InputError(f"expected [1, time >= 2, features], got {list(example.shape)}", where="example_input")
    was_training = module.training
    module.eval()
    try:
        data = np.random.default_rng(seed).uniform(-1.0, 1.0, (frames, example.shape[2])).astype(np.float32)
        expected = _torch_frames(module, data)
        with tempfile.TemporaryDirectory(prefix="kelly_tc-") as folder:
            converted, onnx_errors = [], []
            for dynamo in (False, True):
                onnx_path = _export(module, example, Path(folder) / f"dynamo_{dynamo}.onnx", dynamo)
                model = import_onnx(onnx_path).model
                json_path = onnx_path.with_suffix(".json")
                write_model(model, json_path)
                report = check_files(onnx_path, json_path, frames=frames, atol=atol, seed=seed)
                if not report.passed:
                    raise CheckFailed(f"the conversion of the dynamo={dynamo} export differs from onnxruntime by "
                                      f"{report.worst_abs_error:.3g} (atol {atol:g})")
                converted.append(model)
                onnx_errors.append(report.worst_abs_error)
    finally:
        module.train(was_training)
    outputs = [_engine_frames(model, data) for model in converted]
    vs_torch = float(np.abs(outputs[0].astype(np.float64) - expected).max())
    between = float(np.abs(outputs[0].astype(np.float64) - outputs[1]).max())
    if not (np.isfinite(vs_torch) and vs_torch <= atol):
        raise CheckFailed(f"the converted model differs from PyTorch by {vs_torch:.3g} over {frames} frames (atol {atol:g})")
    if not (np.isfinite(between) and between <= atol):
        raise CheckFailed(f"the two exporters' conversions differ by {between:.3g} (atol {atol:g})")
    model = converted[0]  # the TorchScript export keeps the time axis dynamic: no chunking anywhere
    verification = Verification(EXPORTERS, vs_torch, max(onnx_errors), between, float(atol))
    model.metadata.setdefault("kelly_tc", {})["verification"] = verification.as_dict()
    if path is not None:
        write_model(model, path)
    return model
