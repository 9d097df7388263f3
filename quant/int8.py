"""INT8 quantization written as standard ONNX: int8 initializers -> ``DequantizeLinear`` -> the original op.

Weights are quantized **symmetrically** (zero point 0, range -127..127 so that ``-w`` quantizes to
``-q``), with one scale per output channel by default: per row of a dense ``B``, per output channel
of a conv, per *gate row* of an LSTM/GRU ``W`` and ``R`` (the rules in ``quant.rules`` name the
axis). ``scale = max|w| / 127`` over the channel, so every ``|w - q * scale| <= scale / 2``. Biases
stay float by default (a few percent of the bytes, and the part of a layer rounding hurts most);
``biases=True`` quantizes them per tensor too.

With ``activations`` the inputs of the weighted ops also get a ``QuantizeLinear -> DequantizeLinear``
pair (int8, asymmetric, one scale per tensor) whose range comes from calibration (``quant.calibration``).
Any ONNX runtime executes the result; one with int8 kernels may fuse the pairs.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, version_converter

from toolchain.errors import UnsupportedError

from quant.onnx_graph import Graph, fold_constants, opset_version, topological_sort
from quant.rules import WeightInput, rule_for

log = logging.getLogger(__name__)

#: Symmetric int8 range: -127..127 (not -128) keeps zero exact and the range symmetric.
QMAX = 127
#: The 16-bit grid of biases that int8 would round too coarsely (``quantize_weights(bias_bits=16)``).
QMAX16 = 32767
#: Per-axis DequantizeLinear (an ``axis`` attribute with a 1-D scale) exists from opset 13; per-tensor from 10.
PER_AXIS_OPSET, PER_TENSOR_OPSET = 13, 10


def quantize_symmetric(array: np.ndarray, axis: int | None, group: int = 1, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``(q, scale)``: int8 ``q`` with ``array ~= q * scale``; ``scale`` has one entry per index of
    ``axis`` (1-D) or is a scalar when ``axis`` is None. An all-zero channel gets scale 1 (q is 0); a
    scale is never below the smallest normal float32. ``group`` (with ``axis``; it divides the axis): that many
    consecutive channels share one scale, the largest of theirs (an LSTM's gate block, 16 rows, ...); the
    scale array still has one entry per channel, repeated within a group, so the file stays standard
    per-axis ``DequantizeLinear`` and the engine stores one scale per group (``kernels/int8.py``). ``bits`` 16: a
    16-bit grid (|q| <= 32767; for biases), ``q`` then int32, the type ONNX's DequantizeLinear takes for it."""
    values = np.asarray(array, dtype=np.float32)
    if axis is None:
        peak = np.max(np.abs(values)) if values.size else np.float32(0)
    else:
        others = tuple(i for i in range(values.ndim) if i != axis)
        peak = np.max(np.abs(values), axis=others) if others else np.abs(values)
        if group > 1:
            if peak.shape[0] % group:
                raise ValueError(f"a group of {group} channels does not divide {peak.shape[0]}")
            peak = np.repeat(peak.reshape(-1, group).max(axis=1), group)
    # Floor at the smallest normal float32: peak / 127 of a 1e-45 weight underflows to 0, a scale every
    # reader refuses (issue 17, point 6); at the floor such weights quantize to 0, an error below 1e-38.
    qmax, dtype = (QMAX, np.int8) if bits == 8 else (QMAX16, np.int32)
    scale = np.where(peak > 0, np.maximum(peak / np.float32(qmax), np.finfo(np.float32).tiny), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(values / _broadcast(scale, values.ndim, axis)), -qmax, qmax).astype(dtype)
    return q, np.asarray(scale, dtype=np.float32)


def dequantize(q: np.ndarray, scale: np.ndarray, axis: int | None) -> np.ndarray:
    """``q * scale`` in float32, exactly as ``DequantizeLinear`` computes it (zero point 0)."""
    return (q.astype(np.float32) * _broadcast(np.asarray(scale, np.float32), q.ndim, axis)).astype(np.float32)


def _broadcast(scale: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    if axis is None or scale.ndim == 0:
        return scale
    shape = [1] * ndim
    shape[axis] = scale.shape[0]
    return scale.reshape(shape)


@dataclass
class QuantizedTensor:
    """One quantized tensor, for the report."""

    name: str
    node: str
    op_type: str
    shape: list[int]
    axis: int | None
    max_error: float  # max |w - dequantized w|
    max_scale: float


@dataclass
class QuantizeResult:
    model: onnx.ModelProto
    weights: list[QuantizedTensor] = field(default_factory=list)
    activations: dict[str, tuple[float, int]] = field(default_factory=dict)  # tensor -> (scale, zero point)
    opset_before: int = 0
    opset_after: int = 0


def ensure_opset(model: onnx.ModelProto, per_channel: bool) -> onnx.ModelProto:
    """``model`` at an opset where its DequantizeLinear nodes are legal, converted up if needed."""
    need = PER_AXIS_OPSET if per_channel else PER_TENSOR_OPSET
    have = opset_version(model)
    if have >= need:
        return model
    mode = "per-channel" if per_channel else "per-tensor"
    try:
        upgraded = version_converter.convert_version(model, need)
        onnx.checker.check_model(upgraded)
    except Exception as error:
        raise UnsupportedError(
            f"opset {have}: {mode} DequantizeLinear needs opset >= {need} and the upgrade failed "
            f"({type(error).__name__}: {str(error)[:160]})" + ("; try --per-tensor" if per_channel else ""),
            where="opset_import") from None
    log.info("upgraded the model from opset %d to %d for %s DequantizeLinear", have, need, mode)
    return upgraded


def quantize_weights(model: onnx.ModelProto, per_channel: bool = True, biases: bool = False,
                     per_tensor: frozenset[str] = frozenset(), grouped: dict[str, int] | None = None,
                     bias_bits: int = 8) -> QuantizeResult:
    """A copy of ``model`` whose rule-named float weights are int8 initializers behind DequantizeLinear.

    ``biases`` also quantizes the biases, per tensor: about 1.5% fewer bytes on a model with 40-unit
    layers, at some accuracy (a small bias next to a large one rounds to zero). ``per_tensor`` names
    weights (as in :attr:`QuantizedTensor.name`) that take one scale even when ``per_channel``; ``grouped``
    maps weights to a number of consecutive channels sharing one scale (with ``per_channel``). ``bias_bits`` 16
    puts the biases on a 16-bit grid instead (int32 ``DequantizeLinear``; the engine stores them as int16):
    half a float bias's bytes at ~1/256 of int8's rounding error."""
    grouped = grouped or {}
    before = opset_version(model)
    model = fold_constants(ensure_opset(copy.deepcopy(model), per_channel))  # weights behind constant subgraphs
    graph = Graph(model, shapes=False)
    result = QuantizeResult(model, opset_before=before, opset_after=opset_version(model))
    replaced: dict[str, str] = {}  # float initializer -> its DequantizeLinear output
    dequantize_nodes = []
    for node in list(model.graph.node):
        rule = rule_for(node)
        wanted = (rule.weights(node, graph) if rule else [])
        bias_inputs = {index for index in rule.biases(node, graph)} if rule and biases else set()
        wanted += [WeightInput(index, None) for index in sorted(bias_inputs)]
        for weight in wanted:
            name = node.input[weight.index]
            if name not in replaced:
                tensor = graph.initializers[name]
                if tensor.data_type != onnx.TensorProto.FLOAT:
                    continue
                if node.op_type == "LSTM" and weight.index in bias_inputs:
                    _fold_lstm_bias(graph, name)
                axis = weight.channel_axis if per_channel and name not in per_tensor else None
                replaced[name], dq, record = _replace_weight(graph, name, axis, node, grouped.get(name, 1) if axis is not None else 1,
                                                             bias_bits if weight.index in bias_inputs else 8)
                dequantize_nodes.append(dq)
                result.weights.append(record)
            node.input[weight.index] = replaced[name]
    for name, output in replaced.items():  # other readers of the same weight read the dequantized value
        for node, index in graph.consumers.get(name, []):
            node.input[index] = output
        graph.remove_initializer(name)
    model.graph.node.extend(dequantize_nodes)
    topological_sort(model.graph)
    return result


def _fold_lstm_bias(graph: Graph, name: str) -> None:
    """ONNX's LSTM adds its two biases, Wb and Rb (``B [directions, 8H]``), before every gate; RTNeural and the
    engine keep their sum. Quantized as they are, the sum of two grid values is off the grid (twice its range
    and rounded again in float32), so the engine could not store it as integers: move Rb into Wb first -- the
    same model -- so the one bias the engine keeps is exactly on the grid. Left alone if another node reads B."""
    if len(graph.consumers.get(name, [])) != 1:
        return
    array = graph.array(name).astype(np.float32)
    half = array.shape[-1] // 2
    folded = array.copy()
    folded[..., :half] += folded[..., half:]
    folded[..., half:] = 0
    graph.set_initializer(name, folded)


def _replace_weight(graph: Graph, name: str, axis: int | None, node: onnx.NodeProto, group: int = 1, bits: int = 8):
    array = graph.array(name).astype(np.float32)
    q, scale = quantize_symmetric(array, axis, group, bits)
    error = float(np.max(np.abs(dequantize(q, scale, axis) - array))) if array.size else 0.0
    quantized = graph.add_initializer(graph.unique_name(f"{name}_quantized"), q)
    scale_name = graph.add_initializer(graph.unique_name(f"{name}_scale"), scale)
    output = graph.unique_name(f"{name}_dequantized")
    # No zero point input: it is optional, defaults to 0 of x's type (int8 here), and per-channel
    # zero points would cost one more byte per row.
    attributes = {"axis": axis} if axis is not None else {}
    dq = helper.make_node("DequantizeLinear", [quantized, scale_name], [output], name=f"{name}_DequantizeLinear", **attributes)
    graph.producer[output] = dq
    record = QuantizedTensor(name, node.name, node.op_type, list(array.shape), axis, error, float(np.max(scale)))
    return output, dq, record


def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """The tensors that would take an activation QDQ pair: the rule-named inputs of weighted ops."""
    graph = Graph(model, shapes=False)
    names: list[str] = []
    for node in model.graph.node:
        rule = rule_for(node)
        for index in (rule.activations(node, graph) if rule else []):
            name = node.input[index]
            if name and name not in names and not graph.is_initializer(name):
                names.append(name)
    return names


def activation_qparams(low: float, high: float) -> tuple[float, int]:
    """Asymmetric int8 ``(scale, zero_point)`` for the range ``[low, high]`` widened to contain 0 (so
    that zero, the padding and ReLU floor, is exact)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < 255 * float(np.finfo(np.float32).tiny):  # (nearly) all zero: any scale is exact enough
        return 1.0, 0
    scale = (high - low) / 255.0
    zero_point = int(np.clip(np.rint(-128 - low / scale), -128, 127))
    return float(np.float32(scale)), zero_point


def add_activation_qdq(result: QuantizeResult, ranges: dict[str, tuple[float, float]]) -> QuantizeResult:
    """Insert ``QuantizeLinear -> DequantizeLinear`` on each calibrated activation tensor, in place.

    Only the readers that the rules name are rewired; others (a graph output) keep the float tensor.
    """
    model = result.model
    graph = Graph(model, shapes=False)
    wanted = set(activation_tensors(model)) & set(ranges)
    new_nodes = []
    for name in sorted(wanted):
        scale, zero_point = activation_qparams(*ranges[name])
        scale_name = graph.add_initializer(graph.unique_name(f"{name}_act_scale"), np.array(scale, np.float32))
        zero_name = graph.add_initializer(graph.unique_name(f"{name}_act_zero_point"), np.array(zero_point, np.int8))
        quantized, restored = graph.unique_name(f"{name}_act_quantized"), graph.unique_name(f"{name}_act_dequantized")
        graph.producer[quantized] = graph.producer[restored] = None  # reserve the names
        new_nodes += [helper.make_node("QuantizeLinear", [name, scale_name, zero_name], [quantized], name=f"{name}_QuantizeLinear"),
                      helper.make_node("DequantizeLinear", [quantized, scale_name, zero_name], [restored], name=f"{name}_act_DequantizeLinear")]
        for node, index in graph.consumers.get(name, []):
            rule = rule_for(node)
            if rule and index in rule.activations(node, graph):
                node.input[index] = restored
        result.activations[name] = (scale, zero_point)
    model.graph.node.extend(new_nodes)
    topological_sort(model.graph)
    return result
