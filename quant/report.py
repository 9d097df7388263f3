"""What a compression step costs and saves: size figures and accuracy against the original model.

Accuracy is measured per model output over all samples together (every value of every sample):

- ``max_abs``:         the largest absolute difference;
- ``error_to_signal``: ``||candidate - reference||_2 / ||reference||_2`` (0 is exact; 0.01 is 40 dB SNR);
- ``cosine``:          cosine similarity of the flattened outputs (1 is exact; direction only).

Both models run in onnxruntime, so the figures are ONNX semantics measured by an independent runtime.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from toolchain.errors import KellyError

from quant import calibration
from quant.onnx_graph import Graph, parameter_count, weight_bytes
from quant.rules import rule_for

log = logging.getLogger(__name__)


def size_figures(model: onnx.ModelProto, path: str | Path | None = None) -> dict:
    """Bytes on disk (of ``path``, else of the serialized model), weight bytes and parameter count."""
    on_disk = Path(path).stat().st_size if path is not None else model.ByteSize()
    return {"file_bytes": int(on_disk), "weight_bytes": weight_bytes(model), "parameters": parameter_count(model)}


def ratios(before: dict, after: dict) -> dict:
    """``after / before`` for every size figure."""
    return {key: (after[key] / before[key] if before[key] else None) for key in before}


def output_errors(reference: list[dict], candidate: list[dict]) -> dict[str, dict]:
    """Per output name: max_abs, error_to_signal and cosine over all samples."""
    figures = {}
    for name in reference[0]:
        ref = np.concatenate([np.asarray(r[name], np.float64).ravel() for r in reference])
        out = np.concatenate([np.asarray(c[name], np.float64).ravel() for c in candidate])
        error = out - ref
        ref_norm, out_norm = np.linalg.norm(ref), np.linalg.norm(out)
        figures[name] = {
            "max_abs": float(np.max(np.abs(error))) if error.size else 0.0,
            "error_to_signal": float(np.linalg.norm(error) / ref_norm) if ref_norm > 0 else float(np.linalg.norm(error)),
            "cosine": float(ref @ out / (ref_norm * out_norm)) if ref_norm > 0 and out_norm > 0 else float(ref_norm == out_norm),
        }
    return figures


def worst(errors: dict[str, dict]) -> dict:
    """The worst figure over all outputs (lowest cosine, highest errors)."""
    return {"max_abs": max(e["max_abs"] for e in errors.values()),
            "error_to_signal": max(e["error_to_signal"] for e in errors.values()),
            "cosine": min(e["cosine"] for e in errors.values())}


def ort_dynamic(model_path: Path, samples: list, reference: list[dict], per_channel: bool) -> dict:
    """The same figures for ``onnxruntime.quantization.quantize_dynamic`` (int8 weights) on the same model.

    Records which weighted nodes it left in float: its integer-op registry has no Gemm, PRelu or GRU,
    and it quantizes LSTM only into the ``com.microsoft`` contrib op ``DynamicQuantizeLSTM``, which
    only onnxruntime runs.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from toolchain.onnx_import import load_onnx

    original = load_onnx(model_path)  # by content and checked, like every ONNX read (issue 17, point 10)
    with tempfile.TemporaryDirectory(prefix="kelly-tc-ortq-") as folder:
        output = Path(folder) / "dynamic.onnx"
        try:
            logging.disable(logging.WARNING)  # it advises pre-processing on the root logger, on every call
            try:
                quantize_dynamic(str(model_path), str(output), weight_type=QuantType.QInt8, per_channel=per_channel)
            finally:
                logging.disable(logging.NOTSET)
            quantized = onnx.load(str(output))
            outputs = calibration.run(quantized, samples, fused=True)  # its integer ops are the point
        except (Exception, KellyError) as error:  # its failure is a finding to report, not ours to raise
            return {"status": "failed", "reason": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
        sizes = size_figures(quantized, output)
    left_float, converted = _node_changes(original, quantized)
    return {
        "status": "ok",
        "size": sizes,
        "accuracy": output_errors(reference, outputs),
        "quantized_nodes": converted,
        "float_nodes": left_float,
        "non_standard_ops": sorted({f"{n.domain}.{n.op_type}" for n in quantized.graph.node if n.domain not in ("", "ai.onnx")}),
    }


def _node_changes(original: onnx.ModelProto, quantized: onnx.ModelProto) -> tuple[list[str], dict[str, str]]:
    """Weighted nodes of ``original`` that ``quantized`` still runs in float, and what the others became."""
    graph = Graph(original, shapes=False)
    weighted = [n for n in original.graph.node if rule_for(n) and rule_for(n).weights(n, graph)]
    kept = {(n.name, n.op_type) for n in quantized.graph.node}
    left_float, converted = [], {}
    for node in weighted:
        label = f"{node.name} ({node.op_type})"
        if (node.name, node.op_type) in kept:
            left_float.append(label)
        else:
            successors = sorted({n.op_type for n in quantized.graph.node if node.name and n.name.startswith(node.name)})
            converted[label] = "+".join(successors) or "?"
    return left_float, converted


def build_engine(onnx_path: Path, quantized: bool = False):
    """The model converted to RTNeural JSON (INT8 JSON if ``quantized``) and loaded in the reference
    engine, or a string saying why not (converter or engine missing, model not convertible)."""
    try:
        from reference_engine.model import Engine
        from toolchain.convert import convert_file
    except ImportError as error:
        return f"reference engine or converter not importable ({error})"
    from quant.int8_json import quantize_model

    with tempfile.TemporaryDirectory(prefix="kelly-tc-engine-") as folder:
        try:
            model = convert_file(onnx_path, Path(folder) / "model.json")
        except KellyError as error:
            return f"conversion failed: {error.line()}"
    return Engine(quantize_model(model) if quantized else model)


def time_engines(engines: list, frames: int = 2000, rounds: int = 7) -> list[dict]:
    """Per-frame latency of each engine, measured round-robin (every round times every engine once,
    so a load change on the shared machine hits all of them alike), best round kept.

    ``seconds_per_frame``: ``engine.run`` over ``frames`` frames -- the engine's compiled frame loop,
    one frame at a time with the state carried, as a C++ host calls it -- divided by ``frames``.
    ``seconds_per_call``: one Python ``engine.forward`` call (adds a fixed Python overhead of about a
    microsecond, which dominates on the smallest models).
    """
    data = [np.random.default_rng(0).standard_normal((frames, e.input_size)).astype(np.float32) for e in engines]
    loop, call = [np.inf] * len(engines), [np.inf] * len(engines)
    for engine, frames_in in zip(engines, data):
        engine.run(frames_in[:50])  # warm-up: compile and touch the buffers
    for _ in range(rounds):
        for index, (engine, frames_in) in enumerate(zip(engines, data)):
            engine.reset()
            start = time.perf_counter()
            engine.run(frames_in)
            loop[index] = min(loop[index], (time.perf_counter() - start) / frames)
            engine.reset()
            start = time.perf_counter()
            for frame in frames_in[:200]:
                engine.forward(frame)
            call[index] = min(call[index], (time.perf_counter() - start) / 200)
    return [{"status": "ok", "seconds_per_frame": float(a), "seconds_per_call": float(b), "frames": frames, "rounds": rounds}
            for a, b in zip(loop, call)]
