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

Judging (:mod:`toolchain.reference64`): by default the same ONNX graph also runs in float64 and every
float32 result is measured against it. onnxruntime's own distance to it is the *float32 spread* of this
model on this input; a result passes when its distance is at most ``SPREAD_FACTOR`` times the spread (and
never less than ``FLOOR``). A correct conversion sits at about the spread (measured: 0.5-2x); a wrong gate
order or a missing bias is 10^3-10^6 times it (tests/toolchain/test_check_tolerance.py). With ``atol``
(and/or ``rtol``) given, the fixed bound ``|result - onnxruntime| <= atol + rtol * max|onnxruntime|``
applies instead, as before; it is also the fallback when the graph cannot run in float64.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from toolchain.errors import InputError, KellyError
from toolchain.onnx_import import IOSpec, import_model_proto, load_onnx

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 64
#: The fixed bound when the user gives --atol, and the fallback when no float64 reference can be run.
DEFAULT_ATOL = 1e-5
#: Default judgment: error vs float64 <= max(FLOOR, SPREAD_FACTOR * onnxruntime's float32 error vs float64).
#: 10x: a correct float32 conversion sums in another order than onnxruntime (measured 0.5-2x the spread);
#: the floor keeps a model that onnxruntime happens to compute exactly from demanding exactness of the engine.
SPREAD_FACTOR = 10.0
FLOOR = 1e-6
#: ...and never more than CEILING x max(1, max|float64 output|): on a chaotic model (a recurrent layer whose
#: state amplifies rounding) float32 itself diverges from float64 -- measured 1.7 on a random GRU32 with
#: weights ~U(-1, 1) -- and a bound from that spread would pass anything. Such a check fails, saying so.
CEILING = 1e-3


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
    #: The compared float32 result's max abs error against the float64 run of the ONNX graph (None: not run).
    float64_error: float | None = None
    #: The largest error allowed: on ``float64_error`` (default judgment) or on ``max_abs_error`` (fixed bound).
    bound: float | None = None

    def within(self, atol: float | None = None) -> bool:
        if not self.finite:
            return False
        if self.bound is None:
            return self.max_abs_error <= (DEFAULT_ATOL if atol is None else atol)
        return (self.float64_error if self.float64_error is not None else self.max_abs_error) <= self.bound


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
    #: "float64" (errors against the float64 run, bound from the float32 spread) or "fixed" (atol + rtol).
    tolerance: str = "fixed"
    rtol: float = 0.0
    #: onnxruntime's float32 max abs error against the float64 run, per segment ("stream", "after reset").
    float32_spread: dict = field(default_factory=dict)
    #: Why the float64 reference was not used, if it was not.
    tolerance_note: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.within(self.atol) for c in self.comparisons)

    @property
    def worst_ratio(self) -> float:
        """The worst error as a multiple of its bound (>1 fails)."""
        ratios = [((c.float64_error if c.float64_error is not None else c.max_abs_error) / c.bound) if c.bound else
                  c.max_abs_error / max(self.atol, 1e-30) for c in self.comparisons]
        return max(ratios, default=0.0)

    @property
    def worst_abs_error(self) -> float:
        return max((c.max_abs_error if c.finite else float("inf")) for c in self.comparisons)

    def to_json(self) -> dict:
        document = asdict(self)
        document.update(passed=self.passed, worst_abs_error=_finite_or_none(self.worst_abs_error))
        for entry in document["comparisons"]:
            for key in ("max_abs_error", "max_rel_error", "cosine_similarity", "float64_error", "bound"):
                entry[key] = None if entry[key] is None else _finite_or_none(entry[key])
        document["float32_spread"] = {k: _finite_or_none(v) for k, v in self.float32_spread.items()}
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
def run_onnx(session, io: IOSpec, frames: np.ndarray, dtype=np.float32) -> np.ndarray:
    """``frames [T, in]`` through ``session`` (``.run(names, feeds)``); in fixed-length chunks if the
    model demands them. ``dtype``: of the returned frames (float64 for the float64 reference)."""
    chunk = io.fixed_time or len(frames)
    outputs = []
    for start in range(0, len(frames), chunk):
        piece = frames[start:start + chunk]
        padded = np.concatenate([piece, np.zeros((chunk - len(piece), piece.shape[1]), np.float32)]) if len(piece) < chunk else piece
        try:
            result = session.run([io.output.name], {io.input.name: io.onnx_input(padded)})[0]
        except Exception as error:  # the runtime's own error types: the model is not runnable as declared
            if type(error).__name__ == "Float64Unavailable":
                raise
            raise InputError(f"the ONNX runtime cannot run this model: {str(error).strip().splitlines()[0][:200]}") from None
        outputs.append(io.frames(result, dtype)[: len(piece)])
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
    # The graph as written: onnxruntime's rewrites are not the ONNX semantics we check against, and one of
    # them (MatMul+Add -> Gemm with an input reshape, ORT_ENABLE_BASIC) fails at run time on dynamo exports
    # with dynamic_shapes whose batch-first RNN feeds a Linear head (measured: onnxruntime 1.32, torch 2.13).
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
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


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def check_files(onnx_path: str | Path, json_path: str | Path, frames: int | None = None, inputs: np.ndarray | str | Path | None = None,
                atol: float | None = None, seed: int = 0, rtneural: str | Path | None = None, rtol: float | None = None) -> CheckReport:
    """Compare ``json_path`` (reference engine, frame by frame) with ``onnx_path`` (onnxruntime).

    Judged against a float64 run of the ONNX graph unless ``atol``/``rtol`` fix the bound (module docstring).
    ``rtneural``: an RTNeural checkout; the real C++ RTNeural (dynamic and compile-time APIs) then runs
    the same frames and is compared with both (``toolchain.cpp.apis.rtneural_check``)."""
    from reference_engine.model import load_engine
    from toolchain.reference64 import Float64Session, Float64Unavailable

    for label, value in (("--atol", atol), ("--rtol", rtol)):
        if value is not None and not (np.isfinite(value) and value >= 0):
            raise InputError(f"must be a finite number >= 0, got {value}", where=label)
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
    fixed = atol is not None or rtol is not None
    report = CheckReport(str(onnx_path), str(json_path), len(data), float(DEFAULT_ATOL if atol is None else atol), seed,
                         io.fixed_time, runtime, rtol=float(rtol or 0.0))
    name = io.output.name
    try:
        onnx_stream = run_onnx(session, io, data)
        onnx_second = run_onnx(session, io, data[half:])
    except KellyError as error:
        raise error.with_file(onnx_path)
    exact = {}  # segment -> float64 frames
    if not fixed:
        try:
            session64 = Float64Session(proto)
            exact = {"stream": run_onnx(session64, io, data, np.float64), "after reset": run_onnx(session64, io, data[half:], np.float64)}
            report.tolerance = "float64"
            report.float32_spread = {"stream": _max_abs(onnx_stream, exact["stream"]),
                                     "after reset": _max_abs(onnx_second, exact["after reset"])}
            if any(spread > CEILING * max(1.0, float(np.abs(exact[k]).max())) for k, spread in report.float32_spread.items()):
                report.tolerance_note = (f"onnxruntime's float32 run itself differs from the float64 run by "
                                         f"{max(report.float32_spread.values()):.3g}: the model amplifies rounding on this "
                                         "input (chaotic state), so no float32 result can be checked against it")
        except Float64Unavailable as reason:
            report.tolerance_note = f"no float64 reference ({reason}); fixed bound atol {DEFAULT_ATOL:g}"
            log.info("check %s: %s", onnx_path, report.tolerance_note)

    def judged(label: str, result: np.ndarray, reference: np.ndarray, segment: str) -> Comparison:
        plain = compare(name, label, result, reference)
        if segment in exact:
            ceiling = CEILING * max(1.0, float(np.abs(exact[segment]).max()) if exact[segment].size else 1.0)
            bound = min(max(FLOOR, SPREAD_FACTOR * report.float32_spread[segment]), ceiling)
            return replace(plain, float64_error=_max_abs(result, exact[segment]), bound=bound)
        scale = float(np.abs(reference).max()) if reference.size else 0.0
        return replace(plain, bound=report.atol + report.rtol * scale)

    engine_stream = run_engine(engine, data, io.fixed_time)
    report.comparisons.append(judged("stream", engine_stream, onnx_stream, "stream"))
    run_engine(engine, data[:half], io.fixed_time)  # leave state behind, then reset() inside run_engine
    second = run_engine(engine, data[half:], io.fixed_time)
    report.comparisons.append(judged(f"after reset at frame {half}", second, onnx_second, "after reset"))
    if rtneural is not None:
        from toolchain.cpp.apis import rtneural_check

        for api, outputs in rtneural_check(json_path, data, rtneural, reset_every=io.fixed_time).items():
            report.comparisons.append(judged(f"RTNeural {api} vs {runtime}", outputs, onnx_stream, "stream"))
            report.comparisons.append(judged(f"RTNeural {api} vs engine", outputs, engine_stream, "stream"))
    log.info("check %s: worst abs error %.3g (%s)", onnx_path, report.worst_abs_error, report.tolerance)
    return report
