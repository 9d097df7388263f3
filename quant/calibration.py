"""Calibration: the model inputs a pass is measured on, and the activation ranges they produce.

Inputs come from a file (``.npy`` for a one-input model, ``.npz`` keyed by input name; an extra leading
axis holds several samples) or, without one, from a seeded normal generator, so every report is
reproducible. Ranges are measured with onnxruntime on the float model, one sample at a time with a
progress callback, by one of two methods:

- ``minmax``:     the smallest and largest value seen;
- ``percentile``: the ``p``-th and ``(100 - p)``-th percentiles of the values seen (default 99.99),
                  which ignores rare outliers at the cost of clipping them.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime

from toolchain.errors import InputError
from toolchain.inputs import load_array

log = logging.getLogger(__name__)

Sample = dict[str, np.ndarray]
Progress = Callable[[int, int], None]
METHODS = ("minmax", "percentile")
#: Values kept per tensor for percentiles (a seeded subsample beyond it): bounds memory on long inputs.
PERCENTILE_VALUES = 1 << 21
#: Size given to a symbolic input dim when generating random input (a batch dim gets 1).
RANDOM_DIM, RANDOM_SAMPLES = 16, 4


def model_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs that are not initializers."""
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _declared_dims(info: onnx.ValueInfoProto) -> list:
    """Each dim as an int, the name of a symbolic dim, or None."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in info.type.tensor_type.shape.dim]


def random_samples(model: onnx.ModelProto, count: int = RANDOM_SAMPLES, seed: int = 0) -> list[Sample]:
    """``count`` seeded standard-normal samples; symbolic dims get 1 (batch) or ``RANDOM_DIM``."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = {}
        for info in model_inputs(model):
            shape = [d if isinstance(d, int) else (1 if d and "batch" in d.lower() else RANDOM_DIM) for d in _declared_dims(info)]
            sample[info.name] = rng.standard_normal(shape).astype(np.float32)
        samples.append(sample)
    return samples


def rename_inputs(samples: list[Sample], model: onnx.ModelProto) -> list[Sample]:
    """``samples`` keyed by ``model``'s input names, matched by position (a re-export renames inputs)."""
    names = [info.name for info in model_inputs(model)]
    return [dict(zip(names, sample.values())) for sample in samples]


def load_samples(path: str | Path, model: onnx.ModelProto) -> list[Sample]:
    """Read calibration input from ``path``; raise a one-line :class:`InputError` when it does not fit."""
    path = Path(path)
    inputs = model_inputs(model)
    loaded = load_array(path)  # headers checked before anything is allocated
    if isinstance(loaded, np.ndarray):
        if len(inputs) != 1:
            raise InputError(f"the model has {len(inputs)} inputs; give an .npz keyed by input name", file=path)
        arrays = {inputs[0].name: loaded}
    else:
        arrays = loaded
    per_input = {info.name: _split_samples(path, info, arrays) for info in inputs}
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1:
        raise InputError(f"the inputs hold different sample counts {sorted(counts)}", file=path)
    return [{name: per_input[name][i] for name in per_input} for i in range(counts.pop())]


def _split_samples(path: Path, info: onnx.ValueInfoProto, arrays: dict) -> list[np.ndarray]:
    if info.name not in arrays:
        raise InputError(f"no array for the model input '{info.name}'", file=path)
    array, dims = arrays[info.name], _declared_dims(info)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputError(f"'{info.name}' has dtype {array.dtype}, expected real numbers", file=path)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise InputError(f"'{info.name}' contains NaN or Inf", file=path)
    if array.ndim == len(dims) + 1:
        samples = list(array)
    elif array.ndim == len(dims):
        samples = [array]
    else:
        raise InputError(f"'{info.name}' has shape {list(array.shape)}; the model input has {len(dims)} dims "
                         f"{dims} (one more leading axis holds samples)", file=path)
    for sample in samples:
        if any(isinstance(d, int) and d > 0 and d != s for d, s in zip(dims, sample.shape)):
            raise InputError(f"'{info.name}' sample shape {list(sample.shape)} does not fit the model input {dims}", file=path)
    if not samples:
        raise InputError(f"'{info.name}' holds no samples", file=path)
    return samples


def session(model: onnx.ModelProto, file=None, fused: bool = False) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for ``model`` (one thread: the machine is shared, results repeatable).

    By default onnxruntime's QDQ fusions are off, so a quantized model computes what its ONNX graph
    says (dequantize, then the float op). With them on (``fused``), onnxruntime 1.2x rewrites an
    int8 ``DequantizeLinear -> MatMul`` into its ``MatMulNBits`` contrib op, which also quantizes the
    *activations* to int8 (accuracy level 4): faster, less accurate, and not the ONNX semantics.
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 4  # a failed run reaches the user as one InputError line, not also as onnxruntime's log
    if not fused:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise InputError(f"onnxruntime cannot load the model ({str(error).splitlines()[0][:200]})", file=file) from None


def run(model_or_session, samples: list[Sample], progress: Progress | None = None, file=None,
        fused: bool = False) -> list[dict[str, np.ndarray]]:
    """The outputs of every sample, by output name (see :func:`session` for ``fused``)."""
    runner = model_or_session if isinstance(model_or_session, onnxruntime.InferenceSession) else session(model_or_session, file, fused)
    names = [o.name for o in runner.get_outputs()]
    results = []
    for index, sample in enumerate(samples):
        try:
            values = runner.run(names, sample)
        except Exception as error:
            raise InputError(f"onnxruntime failed on sample {index} ({str(error).splitlines()[0][:200]})", file=file) from None
        results.append(dict(zip(names, values)))
        if progress:
            progress(index + 1, len(samples))
    return results


def collect_ranges(model: onnx.ModelProto, samples: list[Sample], tensors: list[str], method: str = "minmax",
                   percentile: float = 99.99, progress: Progress | None = None) -> dict[str, tuple[float, float]]:
    """The calibrated ``(low, high)`` of each tensor in ``tensors`` over ``samples``."""
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; use one of {METHODS}")
    if not 50 < percentile <= 100:
        raise InputError(f"percentile {percentile} must be in (50, 100]")
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    listed = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in listed:  # onnxruntime returns any intermediate tensor named as a graph output
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    rng = np.random.default_rng(0)
    lows, highs, kept = {}, {}, {name: [] for name in tensors}
    for outputs in run(probe, samples, progress):
        for name in tensors:
            values = np.asarray(outputs[name], dtype=np.float32).ravel()
            lows[name] = min(lows.get(name, np.inf), float(values.min(initial=np.inf)))
            highs[name] = max(highs.get(name, -np.inf), float(values.max(initial=-np.inf)))
            if method == "percentile":
                share = PERCENTILE_VALUES // max(len(samples), 1)
                kept[name].append(values if values.size <= share else rng.choice(values, share, replace=False))
    if method == "minmax":
        return {name: (lows[name], highs[name]) for name in tensors}
    ranges = {}
    for name in tensors:
        values = np.concatenate(kept[name])
        ranges[name] = (float(np.percentile(values, 100 - percentile)), float(np.percentile(values, percentile)))
    return ranges
