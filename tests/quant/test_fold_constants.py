"""``fold_constants``: weights computed from constants become initializers before INT8 and pruning.

The graph below spells out by hand what the dynamo exporter writes for weights above onnxscript's
folding limit: an LSTM's ``W``/``R`` shuffled from torch's gate order (i,f,g,o) into ONNX's (i,o,f,c)
by ``Slice``/``Concat``/``Unsqueeze``, and a dense weight read through a ``Transpose``.
"""
from __future__ import annotations

import numpy as np
import onnx

from quant import calibration, int8, prune
from quant.onnx_graph import Graph, fold_constants, parameter_count
from tests.quant.conftest import max_difference, outputs
from tests.quant.models import TIME, Builder

#: The folded model computes with bitwise the same weights; onnxruntime may still sum in another order.
FLOAT_TOLERANCE = 1e-6
INPUTS, HIDDEN, OUTPUTS = 5, 7, 3
TORCH_TO_ONNX_LSTM = (0, 3, 1, 2)  # ONNX block b is torch block TORCH_TO_ONNX_LSTM[b]


def _shuffled(b: Builder, torch_weight: str) -> str:
    """``Unsqueeze(Concat(Slice(torch_weight) per gate, in ONNX order), 0)``: the dynamo exporter's form."""
    axis = b.constant("axis", np.array([0], np.int64))
    blocks = [b.node("Slice", [torch_weight, b.constant("start", np.array([g * HIDDEN], np.int64)),
                               b.constant("end", np.array([(g + 1) * HIDDEN], np.int64)), axis])
              for g in TORCH_TO_ONNX_LSTM]
    return b.node("Unsqueeze", [b.node("Concat", blocks, axis=0), axis])


def dynamo_like_lstm(seed: int = 7) -> onnx.ModelProto:
    b = Builder(np.random.default_rng(seed))
    w, r = _shuffled(b, b.weight("weight_ih", 4 * HIDDEN, INPUTS)), _shuffled(b, b.weight("weight_hh", 4 * HIDDEN, HIDDEN))
    y, _ = b.multi("LSTM", ["x", w, r, b.weight("B", 1, 8 * HIDDEN)], 2, hidden_size=HIDDEN)
    y = b.node("Squeeze", [y, b.constant("axes", np.array([1], np.int64))])
    head = b.node("Transpose", [b.weight("head", OUTPUTS, HIDDEN)], perm=[1, 0])  # nn.Linear's [out, in], transposed
    return b.build([TIME, 1, INPUTS], b.node("MatMul", [y, head]))


def test_folding_turns_computed_weights_into_initializers_and_keeps_the_outputs():
    model = dynamo_like_lstm()
    folded = fold_constants(onnx.ModelProto.FromString(model.SerializeToString()))
    assert sorted(n.op_type for n in folded.graph.node) == ["LSTM", "MatMul", "Squeeze"]
    graph = Graph(folded, shapes=False)
    assert all(graph.is_initializer(n.input[1]) for n in folded.graph.node if n.op_type in ("LSTM", "MatMul"))
    samples = calibration.random_samples(model, count=2)
    assert max_difference(outputs(model, samples), outputs(folded, samples)) <= FLOAT_TOLERANCE


def test_folding_takes_only_the_values_the_graph_still_reads():
    # the torch-ordered originals are read only by the Slices: after folding they are gone, not copied
    model = dynamo_like_lstm()
    assert parameter_count(fold_constants(onnx.ModelProto.FromString(model.SerializeToString()))) == parameter_count(model)


def test_folding_keeps_dequantize_linear_so_a_quantized_model_stays_int8():
    quantized = int8.quantize_weights(dynamo_like_lstm()).model
    before = [n.op_type for n in quantized.graph.node]
    assert before.count("DequantizeLinear") == 3
    assert [n.op_type for n in fold_constants(quantized).graph.node] == before


def test_folding_leaves_tensor_building_ops_alone():
    # ConstantOfShape/Expand make tensors larger than their inputs: folding would only grow the file
    b = Builder(np.random.default_rng(1))
    zeros = b.node("ConstantOfShape", [b.constant("shape", np.array([1, INPUTS], np.int64))])
    model = b.build([TIME, INPUTS], b.node("Add", ["x", zeros]))
    assert [n.op_type for n in fold_constants(model).graph.node] == ["ConstantOfShape", "Add"]


def test_int8_quantizes_weights_behind_constant_subgraphs_per_gate_row():
    quantized = int8.quantize_weights(dynamo_like_lstm()).model
    graph = Graph(quantized, shapes=False)
    lstm = next(n for n in quantized.graph.node if n.op_type == "LSTM")
    for index in (1, 2):  # W and R: one scale per gate row
        dequantize = graph.producer[lstm.input[index]]
        assert dequantize.op_type == "DequantizeLinear"
        assert graph.array(dequantize.input[0]).dtype == np.int8
        assert graph.array(dequantize.input[1]).shape == (4 * HIDDEN,)


def test_structured_prune_follows_units_through_folded_weights():
    model = dynamo_like_lstm()
    result = prune.structured_prune(model, 0.5)
    assert [(p["op_type"], p["units_before"], p["units_after"]) for p in result.pruned] == [("LSTM", HIDDEN, HIDDEN - 3)]
    assert parameter_count(result.model) < 0.6 * parameter_count(model)
