"""Structured pruning: smaller dense models whose every touched tensor stays consistent."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolchain.errors import InputError

from quant import calibration, prune
from quant.onnx_graph import Graph, parameter_count
from quant.validate import check_weight_shapes
from tests.quant.conftest import max_difference, outputs
from tests.quant.models import KINDS, recurrent_model

#: float32 sums in a different order (fewer terms) differ by a few ulps of values ~1-10.
FLOAT_TOLERANCE = 1e-5


def _groups(model):
    graph = Graph(model)
    groups, _ = prune.find_groups(graph)
    return graph, {group.node.name: group for group in groups}


def _zero_units(model: onnx.ModelProto, units: int, incoming: bool) -> onnx.ModelProto:
    """A copy of ``model`` where the first ``units`` of every prunable group have all-zero incoming
    parameters (weights and biases, every gate block, every joined producer) or all-zero outgoing ones."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model = prune.prepare(model)  # as structured_prune sees it (folded, shared weights copied, zero states dropped)
    graph, groups = _groups(model)
    zero_group_units(graph, groups.values(), units, "incoming" if incoming else "outgoing")
    return model


def zero_group_units(graph, groups, units: int, role: str) -> None:
    """Set every parameter of ``role`` of the first ``units`` units of each group to zero (in place)."""
    for group in groups:
        for piece in (p for p in group.pieces if p.role == role):
            array = graph.array(piece.tensor).copy()
            view = np.moveaxis(array, piece.axis, 0)
            for unit in range(min(units, group.size)):
                view[group.positions(piece, unit)] = 0
            graph.set_initializer(piece.tensor, array)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_amount_zero_is_the_identity(catalog, kind):
    model = catalog[kind]
    pruned = prune.structured_prune(model, 0.0).model
    assert pruned.graph.node == model.graph.node
    assert pruned.graph.initializer == model.graph.initializer


@pytest.mark.parametrize("incoming", [True, False], ids=["zero-incoming", "zero-outgoing"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_removing_units_with_all_zero_weights_leaves_the_outputs_unchanged(catalog, kind, incoming):
    # Relu/tanh layers and LSTM/GRU cells from a zero state output exactly 0 for a unit whose incoming
    # weights and biases are 0; a unit with zero outgoing weights is read by nobody. Either scores 0.
    model = _zero_units(catalog[kind], units=4, incoming=incoming)
    result = prune.structured_prune(model, amount=0.34)  # floor(0.34 * n) <= 4 for every layer here (n <= 13)
    assert result.pruned, "the model has prunable layers"
    samples = calibration.random_samples(model, count=2)
    assert max_difference(outputs(model, samples), outputs(result.model, samples)) < FLOAT_TOLERANCE
    assert parameter_count(result.model) < parameter_count(model)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_pruned_model_is_smaller_keeps_its_outputs_and_runs_in_onnxruntime(catalog, kind):
    model = catalog[kind]
    result = prune.structured_prune(model, 0.5)
    samples = calibration.random_samples(model, count=1)
    before, after = outputs(model, samples), outputs(result.model, samples)
    assert [o.shape for o in before[0].values()] == [o.shape for o in after[0].values()]
    assert parameter_count(result.model) <= 0.6 * parameter_count(model)
    check_weight_shapes(result.model)


def test_final_output_units_are_never_pruned(catalog):
    result = prune.structured_prune(catalog["gemm"], 0.9)
    final = result.model.graph.node[-1]
    assert Graph(result.model).shape(final.input[1])[0] == 5  # the last Gemm keeps its 5 outputs
    assert any("graph output" in entry["reason"] for entry in result.skipped)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(["LSTM", "GRU"]), inputs=st.integers(1, 9), hidden=st.integers(2, 17),
       second=st.integers(2, 13), outputs_=st.integers(1, 7), amount=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_pruned_shapes_agree_across_gates_recurrent_matrices_and_the_next_layer(op, inputs, hidden, second, outputs_, amount, seed):
    rng = np.random.default_rng(seed)
    model = recurrent_model(rng, op, inputs=inputs, hidden=hidden, outputs=outputs_, layers=1)
    model = _stack_second_layer(model, op, hidden, second, rng)
    result = prune.structured_prune(model, amount)
    graph = Graph(result.model)
    gates = 4 if op == "LSTM" else 3
    layers = [n for n in result.model.graph.node if n.op_type == op]
    kept = []
    for node, original in zip(layers, (hidden, second)):
        size = next(a.i for a in node.attribute if a.name == "hidden_size")
        assert size == original - min(int(np.floor(amount * original + 1e-9)), original - 1)
        assert graph.shape(node.input[1])[1:] == [gates * size, kept[-1] if kept else inputs]
        assert graph.shape(node.input[2])[1:] == [gates * size, size]
        assert graph.shape(node.input[3])[1:] == [2 * gates * size]
        kept.append(size)
    head = next(n for n in result.model.graph.node if n.op_type == "MatMul")
    assert graph.shape(head.input[1]) == [kept[-1], outputs_]
    samples = calibration.random_samples(result.model, count=1)
    assert next(iter(outputs(result.model, samples)[0].values())).shape[-1] == outputs_


def _stack_second_layer(model, op, hidden, second, rng):
    """Rebuild ``model`` with a second recurrent layer of ``second`` units before the head."""
    from tests.quant.models import Builder

    b = Builder(rng)
    x = b.recurrent(op, b.recurrent(op, "x", model.graph.input[0].type.tensor_type.shape.dim[2].dim_value, hidden), hidden, second)
    head_outputs = Graph(model).shape(next(n for n in model.graph.node if n.op_type == "MatMul").input[1])[1]
    return b.build(["time", 1, model.graph.input[0].type.tensor_type.shape.dim[2].dim_value], b.matmul_add(x, second, head_outputs))


def test_each_kept_unit_keeps_its_rows_in_every_gate_block(catalog):
    model = catalog["lstm"]
    graph, groups = _groups(model)
    group = groups[next(n.name for n in model.graph.node if n.op_type == "LSTM")]
    keep = np.array([0, 3, 4, 9])
    result = prune.structured_prune(model, 0.5, keep={group.node.name: keep})
    pruned = Graph(result.model)
    recurrent = next(n for n in result.model.graph.node if n.op_type == "LSTM")
    rows = np.concatenate([block * 11 + keep for block in range(4)])
    np.testing.assert_array_equal(pruned.array(recurrent.input[1]), graph.array(recurrent.input[1])[:, rows])
    np.testing.assert_array_equal(pruned.array(recurrent.input[2]), graph.array(recurrent.input[2])[:, rows][:, :, keep])
    biases = np.concatenate([block * 11 + keep for block in range(8)])
    np.testing.assert_array_equal(pruned.array(recurrent.input[3]), graph.array(recurrent.input[3])[:, biases])


@pytest.mark.parametrize("forgotten", ["recurrent columns", "one gate block", "next layer columns"])
def test_an_inconsistent_prune_is_detected(catalog, forgotten):
    model = onnx.ModelProto.FromString(catalog["lstm"].SerializeToString())
    graph, groups = _groups(model)
    group = next(iter(groups.values()))
    w, r = group.node.input[1], group.node.input[2]
    if forgotten == "recurrent columns":
        group.pieces = [p for p in group.pieces if not (p.role == "outgoing" and p.axis == 2 and p.tensor == r)]
    elif forgotten == "one gate block":  # the 4th gate block of W keeps every row (its ids belong to nobody)
        group.pieces = [prune.Piece(p.tensor, p.axis, np.concatenate([p.ids[:3 * group.size], group.units.fresh(group.size)]), p.role)
                        if p.tensor == w and p.axis == 1 else p for p in group.pieces]
    else:
        group.pieces = [p for p in group.pieces if not (p.role == "outgoing" and p.tensor != r)]
    group.keep = np.arange(0, group.size, 2)
    prune.apply_groups(graph, [group])
    with pytest.raises(InputError, match="LSTM|MatMul"):
        check_weight_shapes(model)


def test_units_stop_at_ops_that_mix_axes():
    from tests.quant.models import Builder

    b = Builder(np.random.default_rng(2))
    hidden = b.node("Relu", [b.gemm("x", 6, 10)])
    split = b.node("Reshape", [hidden, b.constant("shape", np.array([-1, 2, 5], np.int64))])  # units over 2 axes
    merged = b.node("Reshape", [split, b.constant("shape", np.array([-1, 10], np.int64))])
    model = b.build(["batch", 6], b.gemm(merged, 10, 3))
    result = prune.structured_prune(model, 0.5)
    assert result.pruned == []
    assert any("Reshape" in entry["reason"] for entry in result.skipped)


def test_amount_outside_zero_to_one_is_refused(catalog):
    with pytest.raises(InputError, match="amount 1.0 must be in"):
        prune.structured_prune(catalog["gemm"], 1.0)
