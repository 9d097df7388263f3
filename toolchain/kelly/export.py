"""Export of the Kelly models: PyTorch -> ONNX -> RTNeural JSON, each file checked twice.

Per model ``NAME``, in the output folder:

- ``NAME.onnx``: ``torch.onnx.export`` of the whole ``[batch, time, in] -> [batch, time, out]`` model.
  The default TorchScript exporter (``dynamo=False``) gets ``dynamic_axes`` for batch and time, so the
  ONNX model runs any number of frames. The dynamo exporter (``dynamo=True``, onnxscript) fixes the
  time length to the example's :data:`DYNAMO_FRAMES`; ``check`` then feeds it in chunks of that length.
  Written without external data (one file), atomically.
- ``NAME.json``: the converter's layer list (``toolchain.onnx_import``) with kelly-tc's metadata under
  ``"kelly_tc"``: ``"model": NAME``, ``"features_version"`` (``spec.FEATURES_VERSION``: the feature frame and
  wiring the model was trained for) and the reference pair (``toolchain.cpp.reference_pair``):
  :func:`toolchain.kelly.models.reference_pair` frames and PyTorch's output for them from zero state.
  The file is written once, atomically, after the pair is in place.

Then two independent checks, both at ``atol`` (1e-5 by default):

- **PyTorch**: the reference engine runs the JSON one frame per call from ``reset()`` and must give
  PyTorch's own output: on the stored reference pair and on :data:`STREAM_FRAMES` seeded frames
  (PyTorch runs the same frames as one sequence). This checks the whole chain against the trained model.
- **onnxruntime**: ``toolchain.check.check_files`` (the ONNX semantics, frame by frame, with a reset
  half way).
"""
from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from toolchain import atomic
from toolchain.check import CheckReport, check_files
from toolchain.cpp.reference_pair import METADATA_KEY, set_reference_pair
from toolchain.errors import CheckFailed, InputError
from toolchain.kelly.models import KellyModel, reference_pair
from toolchain.kelly.spec import FEATURES_VERSION, MODEL_NAMES, get_spec
from toolchain.kelly.training import torch_threads
from toolchain.onnx_import import import_onnx
from toolchain.rtneural_json import write_model

log = logging.getLogger(__name__)

DEFAULT_ATOL = 1e-5
#: ONNX opset of the TorchScript exporter (the converter accepts 9..28; 17 is the exporter's tested range).
OPSET = 17
#: The time length the dynamo exporter bakes into its graph (the example input's length).
DYNAMO_FRAMES = 16
#: Frames of the stored reference pair (small: it ships in every model file and in C++ headers).
REFERENCE_FRAMES = 8
#: Seeded frames of the longer PyTorch comparison (state carried over all of them).
STREAM_FRAMES = 64
INPUT_NAME, OUTPUT_NAME = "features", "output"


@dataclass
class ExportedModel:
    """One model's files and its two checks."""

    name: str
    onnx_path: Path
    json_path: Path
    exporter: str  # "torchscript" or "dynamo"
    parameters: int  # as stored in the JSON
    json_bytes: int
    torch_error: float  # max abs error, engine vs PyTorch (reference pair and stream)
    check: CheckReport  # engine vs onnxruntime
    atol: float
    seconds: float

    @property
    def onnx_error(self) -> float:
        return self.check.worst_abs_error

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.torch_error)) and self.torch_error <= self.atol and self.check.passed

    def to_json(self) -> dict:
        finite = (lambda x: float(x) if np.isfinite(x) else None)  # strict JSON has no NaN/Inf
        return {"name": self.name, "onnx": str(self.onnx_path), "json": str(self.json_path), "exporter": self.exporter,
                "parameters": self.parameters, "json_bytes": self.json_bytes, "torch_max_abs_error": finite(self.torch_error),
                "onnx_max_abs_error": finite(self.onnx_error), "atol": self.atol, "passed": self.passed,
                "seconds": self.seconds, "check": self.check.to_json()}


@dataclass
class ExportReport:
    directory: Path
    models: list[ExportedModel] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.models) and all(m.passed for m in self.models)

    def failures(self) -> list[str]:
        """One line per model whose checks failed."""
        return [f"{m.json_path}: engine vs PyTorch {m.torch_error:.3g}, vs {m.check.runtime} {m.onnx_error:.3g} "
                f"(atol {m.atol:g})" for m in self.models if not m.passed]

    def to_json(self) -> dict:
        return {"directory": str(self.directory), "passed": self.passed, "models": [m.to_json() for m in self.models]}


# ------------------------------------------------------------------------------------------- steps
@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporters' noise that does not apply here: the RNN "batch size other than 1" warning
    is about models fed an initial state (ours start from zeros, which ONNX sizes to the batch), and
    dynamo logs every torchvision op it cannot register."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: chosen for its dynamic time axis
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # RNN size checks traced as constants: sizes are fixed
            yield
    finally:
        registration.setLevel(level)


def export_onnx(model: KellyModel, path: Path, dynamo: bool = False) -> Path:
    """Write ``model`` as ONNX at ``path`` (atomically); see the module docstring for the two exporters."""
    spec = model.spec
    model = model.eval()
    example = torch.zeros(1, DYNAMO_FRAMES if dynamo else REFERENCE_FRAMES, spec.input_size)
    with atomic.atomic_path(path, suffix=".onnx") as tmp, _quiet_exporter():
        if dynamo:
            torch.onnx.export(model, (example,), str(tmp), dynamo=True, external_data=False, verbose=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
        else:
            axes = {0: "batch", 1: "time"}
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
    return path


def write_json_with_reference(model: KellyModel, onnx_path: Path, json_path: Path, exporter: str) -> int:
    """Convert ``onnx_path`` and write it to ``json_path`` with the model name and the reference pair;
    returns the stored parameter count. (``toolchain.convert.convert_file`` does the same import and
    write; the pair must go in before the one atomic write, so the steps are called here.)"""
    converted = import_onnx(onnx_path).model
    inputs, outputs = reference_pair(model, frames=REFERENCE_FRAMES)
    converted.metadata.setdefault(METADATA_KEY, {}).update(model=model.name, stack=model.spec.stack(), exporter=exporter,
                                                            features_version=FEATURES_VERSION)
    set_reference_pair(converted, np.asarray(inputs), np.asarray(outputs))
    write_model(converted, json_path)
    return converted.parameter_count()


def torch_stream_error(model: KellyModel, json_path: Path, seed: int = 0) -> float:
    """Max abs error of the engine (one ``forward`` per frame from ``reset()``) against PyTorch: on the
    stored reference pair and on ``STREAM_FRAMES`` seeded frames. NaN/Inf anywhere gives ``inf``."""
    from reference_engine.model import load_engine
    from toolchain.cpp.reference_pair import reference_pair as stored_pair
    from toolchain.rtneural_json import read_model

    engine = load_engine(json_path)
    pair = stored_pair(read_model(json_path))
    if pair is None:
        raise InputError("the exported file has no reference pair", file=json_path)
    frames = np.random.default_rng(seed).uniform(-1.0, 1.0, (STREAM_FRAMES, model.spec.input_size)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(frames)[None])[0].numpy()
    worst = 0.0
    for inputs, outputs in (pair, (frames, expected)):
        engine.reset()
        produced = np.stack([engine.forward(frame).copy() for frame in inputs])
        if not (np.all(np.isfinite(produced)) and np.all(np.isfinite(outputs))):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(produced.astype(np.float64) - outputs.astype(np.float64)))))
    return worst


# ------------------------------------------------------------------------------------------- models
def export_model(model: KellyModel, directory: str | Path, dynamo: bool = False, atol: float = DEFAULT_ATOL,
                 seed: int = 0) -> ExportedModel:
    """Export one model to ``directory/NAME.onnx`` and ``directory/NAME.json`` and check both ways."""
    started = time.perf_counter()
    directory = Path(directory)
    onnx_path, json_path = directory / f"{model.name}.onnx", directory / f"{model.name}.json"
    exporter = "dynamo" if dynamo else "torchscript"
    with torch_threads(1):  # small models on shared cores: extra threads only spin (see training.torch_threads)
        export_onnx(model, onnx_path, dynamo)
        parameters = write_json_with_reference(model, onnx_path, json_path, exporter)
        torch_error = torch_stream_error(model, json_path, seed)
    report = check_files(onnx_path, json_path, atol=atol, seed=seed)
    exported = ExportedModel(model.name, onnx_path, json_path, exporter, parameters, json_path.stat().st_size,
                             torch_error, report, atol, time.perf_counter() - started)
    log.info("exported %s: %d parameters, engine vs PyTorch %.3g, vs %s %.3g", model.name, parameters,
             torch_error, report.runtime, report.worst_abs_error)
    return exported


def export_models(models: dict[str, KellyModel], directory: str | Path, dynamo: bool = False,
                  atol: float = DEFAULT_ATOL, seed: int = 0,
                  on_model: Callable[[str], None] | None = None) -> ExportReport:
    """Export every model of ``models`` (by name); ``on_model(name)`` is called before each one.

    Never raises for a failed check: the report says which failed (the CLI turns that into exit 1).
    """
    report = ExportReport(Path(directory))
    for name, model in models.items():
        if on_model:
            on_model(name)
        report.models.append(export_model(model, directory, dynamo, atol, seed))
    atomic.write_json(report_path(directory), report.to_json())
    return report


def report_path(directory: str | Path) -> Path:
    """``DIR`` -> ``DIR.export_report.json`` beside the folder, not inside it: the folder then holds only
    model files, so ``kelly-tc bench DIR/*.json`` (the README's command) matches models and nothing else."""
    directory = Path(directory)
    return directory.with_name(f"{directory.name}.export_report.json")


def load_checkpoints(checkpoint_dir: str | Path, names: list[str] | None = None) -> dict[str, KellyModel]:
    """The trained models of a ``kelly-tc train`` output folder (``<dir>/<NAME>/best.ckpt``)."""
    from toolchain.kelly.checkpoint import load_trained_model

    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise InputError("no such checkpoint folder (the --output of kelly-tc train)", file=checkpoint_dir)
    names = list(names or MODEL_NAMES)
    for name in names:
        get_spec(name)  # an unknown name is an InputError naming the five
    return {name: load_trained_model(checkpoint_dir, name) for name in names}


def export_checkpoints(checkpoint_dir: str | Path, directory: str | Path, names: list[str] | None = None,
                       dynamo: bool = False, atol: float = DEFAULT_ATOL, seed: int = 0,
                       on_model: Callable[[str], None] | None = None) -> ExportReport:
    """``kelly-tc export``: load the trained models, export and check each one."""
    return export_models(load_checkpoints(checkpoint_dir, names), directory, dynamo, atol, seed, on_model)


def require_passed(report: ExportReport) -> ExportReport:
    """Raise :class:`CheckFailed` (exit 1) naming the failed models, else return the report."""
    if not report.passed:
        raise CheckFailed("; ".join(report.failures()) or "nothing was exported")
    return report
