"""``check``: prove a JSON file computes what its ONNX model computes, frame by frame.

The same input goes through onnxruntime as one sequence (the ONNX semantics, computed by an
independent implementation) and through the reference engine in blocks, as a plugin's audio
callback drives it (``Engine.run``; a block equals one ``forward()`` per frame to the bit). A second comparison resets the engine half way and checks the second half
against a fresh onnxruntime run on the second half alone: state handling is where converters break.

When the ONNX model declares a fixed time length (the dynamo exporter fixes it), both sides are
fed in chunks of that length, each chunk from zero state (onnxruntime: a separate run; engine:
``reset()``). A last partial chunk is padded with zeros on the ONNX side; every supported layer is
causal, so the padding cannot change the frames that are compared.

Errors per comparison: max absolute error, max relative error (max absolute error divided by the
reference's largest magnitude, so near-zero outputs do not blow it up), cosine similarity.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolchain.errors import InputError, KellyError
from toolchain.onnx_import import IOSpec, import_model_proto, load_onnx

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 64
DEFAULT_ATOL = 1e-5


@dataclass(frozen=True)
class Comparison:
    """One output stream compared: engine frames against onnxruntime frames."""

    output: str
    label: str  # "stream" or "after reset at frame N"
    frames: int
    max_abs_error: float
    max_rel_error: float
    cosine_similarity: float
    finite: bool

    def within(self, atol: float) -> bool:
        return self.finite and self.max_abs_error <= atol


@dataclass
class CheckReport:
    onnx_path: str
    json_path: str
    frames: int
    atol: float
    seed: int | None
    chunk: int | None  # the fixed time length the ONNX model was fed in, if any
    runtime: str = "onnxruntime"  # what computed the ONNX side
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.within(self.atol) for c in self.comparisons)

    @property
    def worst_abs_error(self) -> float:
        return max((c.max_abs_error if c.finite else float("inf")) for c in self.comparisons)

    def to_json(self) -> dict:
        document = asdict(self)
        document.update(passed=self.passed, worst_abs_error=_finite_or_none(self.worst_abs_error))
        for entry in document["comparisons"]:
            for key in ("max_abs_error", "max_rel_error", "cosine_similarity"):
                entry[key] = _finite_or_none(entry[key])
        return document


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None  # strict JSON has no NaN/Inf


def compare(output: str, label: str, engine: np.ndarray, reference: np.ndarray) -> Comparison:
    difference = np.abs(engine.astype(np.float64) - reference.astype(np.float64))
    finite = bool(np.all(np.isfinite(engine)) and np.all(np.isfinite(reference)))
    max_abs = float(difference.max()) if difference.size else 0.0
    scale = float(np.abs(reference).max()) if reference.size else 0.0
    a, b = engine.astype(np.float64).ravel(), reference.astype(np.float64).ravel()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b / norms) if norms > 0 else (1.0 if not a.any() and not b.any() else 0.0)
    return Comparison(output, label, int(engine.shape[0]), max_abs, max_abs / scale if scale > 0 else max_abs, cosine, finite)


# ------------------------------------------------------------------------------------------- runners
def run_onnx(session, io: IOSpec, frames: np.ndarray) -> np.ndarray:
    """``frames [T, in]`` through ``session`` (``.run(names, feeds)``); in fixed-length chunks if the
    model demands them."""
    chunk = io.fixed_time or len(frames)
    outputs = []
    for start in range(0, len(frames), chunk):
        piece = frames[start:start + chunk]
        padded = np.concatenate([piece, np.zeros((chunk - len(piece), piece.shape[1]), np.float32)]) if len(piece) < chunk else piece
        try:
            result = session.run([io.output.name], {io.input.name: io.onnx_input(padded)})[0]
        except Exception as error:  # the runtime's own error types: the model is not runnable as declared
            raise InputError(f"the ONNX runtime cannot run this model: {str(error).strip().splitlines()[0][:200]}") from None
        outputs.append(io.frames(result)[: len(piece)])
    return np.concatenate(outputs)


def run_engine(engine, frames: np.ndarray, chunk: int | None) -> np.ndarray:
    """``frames`` streamed through the engine from a reset (``Engine.run``: block after block, equal to
    one ``forward`` per frame), resetting every ``chunk`` frames."""
    if not chunk:
        engine.reset()
        return engine.run(frames)
    outputs = np.empty((len(frames), engine.output_size), np.float32)
    for start in range(0, len(frames), chunk):
        engine.reset()
        outputs[start:start + chunk] = engine.run(frames[start:start + chunk])
    return outputs


def reference_session(proto) -> tuple[str, object]:
    """(name, session) of the runtime that computes the ONNX side: onnxruntime, or onnx's own
    reference evaluator for models onnxruntime refuses (its CPU LSTM/GRU reject ``layout=1``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # the reference, not a benchmark: keep it off the other cores
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    # ONNX semantics for quantized models: onnxruntime otherwise fuses int8 DequantizeLinear -> MatMul into
    # its MatMulNBits contrib op, which also quantizes the activations (errors ~1e-2 vs the graph's math).
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return "onnxruntime", onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/NotImplemented types
        from onnx.reference import ReferenceEvaluator

        log.warning("onnxruntime cannot run this model (%s); using onnx.reference instead", str(error).splitlines()[0][:160])
        return "onnx.reference", ReferenceEvaluator(proto)


def read_input(path: str | Path, input_size: int) -> np.ndarray:
    """Frames from a ``.npy`` or ``.csv`` file: ``[frames, input_size]`` (``[frames]`` when the input size is 1)."""
    from reference_engine.frames import read_frames

    return validate_frames(read_frames(path, input_size), input_size, path)  # one reader: run's


def validate_frames(array: np.ndarray, input_size: int, source: str | Path | None = None) -> np.ndarray:
    """``array`` as C-contiguous float32 ``[frames >= 2, input_size]``, or an :class:`InputError`."""
    array = np.asarray(array)
    if array.ndim == 1 and input_size == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != input_size or array.shape[0] < 2:
        raise InputError(f"expected [frames >= 2, {input_size}], got {list(array.shape)}", file=source)
    if array.dtype.kind not in "iuf":
        raise InputError(f"must hold numbers, got dtype {array.dtype}", file=source)
    # The gate looks at the float32 values the model will see: float64 1e39 is finite but becomes inf.
    with np.errstate(over="ignore"):
        frames = np.ascontiguousarray(array, dtype=np.float32)
    if not np.all(np.isfinite(frames)):
        raise InputError("must hold finite float32 numbers (NaN, Inf or a value beyond +-3.4e38 found)", file=source)
    return frames


def input_frames(input_size: int, frames: int | None, inputs, seed: int) -> np.ndarray:
    """The given frames (array or .npy path), else ``frames`` seeded uniform(-1, 1) frames."""
    if inputs is not None:
        return validate_frames(inputs, input_size, "inputs") if isinstance(inputs, np.ndarray) else read_input(inputs, input_size)
    count = frames or DEFAULT_FRAMES
    if count < 2:
        raise InputError(f"--frames must be at least 2, got {count}")
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, input_size)).astype(np.float32)


def check_files(onnx_path: str | Path, json_path: str | Path, frames: int | None = None, inputs: np.ndarray | str | Path | None = None,
                atol: float = DEFAULT_ATOL, seed: int = 0, rtneural: str | Path | None = None) -> CheckReport:
    """Compare ``json_path`` (reference engine, frame by frame) with ``onnx_path`` (onnxruntime).

    ``rtneural``: an RTNeural checkout; the real C++ RTNeural (dynamic and compile-time APIs) then runs
    the same frames and is compared with both (``toolchain.cpp.apis.rtneural_check``)."""
    from reference_engine.model import load_engine

    proto = load_onnx(onnx_path)
    try:
        io = import_model_proto(proto, source=Path(onnx_path).name).io
    except KellyError as error:
        raise error.with_file(onnx_path)
    engine = load_engine(json_path)
    if (engine.input_size, engine.output_size) != (io.input_size, io.output_size):
        raise InputError(f"the JSON maps {engine.input_size} -> {engine.output_size} features but the ONNX model "
                         f"{io.input_size} -> {io.output_size}: not the same model", file=json_path)
    data = input_frames(io.input_size, frames, inputs, seed)
    seed = seed if inputs is None else None
    runtime, session = reference_session(proto)
    half = len(data) // 2
    report = CheckReport(str(onnx_path), str(json_path), len(data), float(atol), seed, io.fixed_time, runtime)
    name = io.output.name
    try:
        onnx_stream = run_onnx(session, io, data)
        onnx_second = run_onnx(session, io, data[half:])
    except KellyError as error:
        raise error.with_file(onnx_path)
    engine_stream = run_engine(engine, data, io.fixed_time)
    report.comparisons.append(compare(name, "stream", engine_stream, onnx_stream))
    run_engine(engine, data[:half], io.fixed_time)  # leave state behind, then reset() inside run_engine
    second = run_engine(engine, data[half:], io.fixed_time)
    report.comparisons.append(compare(name, f"after reset at frame {half}", second, onnx_second))
    if rtneural is not None:
        from toolchain.cpp.apis import rtneural_check

        for api, outputs in rtneural_check(json_path, data, rtneural, reset_every=io.fixed_time).items():
            report.comparisons.append(compare(name, f"RTNeural {api} vs {runtime}", outputs, onnx_stream))
            report.comparisons.append(compare(name, f"RTNeural {api} vs engine", outputs, engine_stream))
    log.info("check %s: worst abs error %.3g (atol %.3g)", onnx_path, report.worst_abs_error, atol)
    return report
