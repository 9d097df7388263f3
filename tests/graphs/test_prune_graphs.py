"""Structured pruning across merges: residual adds (Add/Sub/Mul/Sum), Concat, Split and feature Slice (gates).

Graphs are written by hand with onnx.helper (fast, an encoding independent of the pass) on
``[batch, time, features]`` tensors, with odd sizes. Every pruned model must pass the ONNX checker, run in
onnxruntime, convert, and ``check`` against its converted JSON (1e-5 absolute, the project's check default:
float32 against float32). Removing planted all-zero units is exact up to float32 reassociation: 1e-6.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

from quant import calibration, prune
from quant.onnx_graph import Graph
from tests.fixtures import onnx_graphs as graphs
from tests.quant.test_prune_structured import zero_group_units

#: Planted zero units removed: only the order of float32 sums changes (fewer terms).
EXACT = 1e-6


class Net:
    """A tiny ONNX graph builder: dense layers (MatMul + bias Add), merges, splits, slices."""

    def __init__(self, seed: int, inputs: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.initializers, self.inputs = [], {}, inputs

    def name(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes)}"

    def constant(self, value) -> str:
        name = self.name("k") + f"_{len(self.initializers)}"
        self.initializers[name] = np.asarray(value)
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attributes) -> list[str] | str:
        names = [self.name(op.lower()) + (f"_{i}" if outputs > 1 else "") for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=names[0], **attributes))
        return names if outputs > 1 else names[0]

    def dense(self, source: str, size: int, out: int, activation: str | None = None) -> str:
        weight, bias = self.constant(graphs.random(self.rng, size, out)), self.constant(graphs.random(self.rng, out))
        value = self.node("Add", [self.node("MatMul", [source, weight]), bias])
        return self.node(activation, [value]) if activation else value

    def slice(self, source: str, start: int, stop: int) -> str:
        return self.node("Slice", [source, self.constant([start]), self.constant([stop]), self.constant([2])])

    def build(self, head: str) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [head], ["y"], name="out"))
        return graphs.model(self.nodes, [graphs.value("x", ["batch", "time", self.inputs])],
                            [graphs.value("y", ["batch", "time", None])], self.initializers)


def _matmuls(model) -> list[np.ndarray]:
    graph = Graph(model)
    return [graph.array(n.input[1]) for n in model.graph.node if n.op_type == "MatMul"]


def _converts_and_checks(model: onnx.ModelProto, folder) -> None:
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    onnx.checker.check_model(model)
    path = graphs.save(model, folder / "pruned.onnx")
    convert_file(path, folder / "pruned.json")
    report = check_files(path, folder / "pruned.json", frames=41, atol=1e-5)
    assert report.passed, [(c.label, c.max_abs_error) for c in report.comparisons]
    for output in calibration.run(model, calibration.random_samples(model, count=1)):
        assert all(np.isfinite(value).all() for value in output.values())


# ------------------------------------------------------------------------------ exact shapes per merge kind
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Sum"])
def test_elementwise_merge_removes_the_same_units_from_every_producer_and_reader(op, tmp_path):
    net = Net(1, 3)
    h = net.dense("x", 3, 7, "Tanh")
    branches = [h, net.dense(h, 7, 7, "Relu")] + ([net.dense(h, 7, 7)] if op == "Sum" else [])
    model = net.build(net.dense(net.node(op, branches), 7, 5))
    first = next(n.name for n in model.graph.node if n.op_type == "MatMul")
    keep = np.array([0, 2, 5])
    result = prune.structured_prune(model, 0.5, keep={first: keep})
    before, after = _matmuls(model), _matmuls(result.model)
    np.testing.assert_array_equal(after[0], before[0][:, keep])  # the producer of h: its columns
    for original, pruned in zip(before[1:-1], after[1:-1]):  # the joined branches read h and add into it
        np.testing.assert_array_equal(pruned, original[keep][:, keep])
    np.testing.assert_array_equal(after[-1], before[-1][keep])  # the reader of the sum: its rows
    joined = [e for e in result.pruned if e.get("joined_with")]
    assert len(joined) == len(branches) and all(e["units_after"] == 3 for e in joined)
    _converts_and_checks(result.model, tmp_path)


def test_concat_prunes_each_input_and_remaps_the_readers_columns(tmp_path):
    net = Net(2, 3)
    left, right = net.dense("x", 3, 5, "Tanh"), net.dense("x", 3, 7, "Relu")
    model = net.build(net.dense(net.node("Concat", [left, right], axis=2), 12, 3))
    names = [n.name for n in model.graph.node if n.op_type == "MatMul"]
    result = prune.structured_prune(model, 0.5, keep={names[0]: [0, 3], names[1]: [1, 2, 6]})
    before, after = _matmuls(model), _matmuls(result.model)
    np.testing.assert_array_equal(after[0], before[0][:, [0, 3]])
    np.testing.assert_array_equal(after[1], before[1][:, [1, 2, 6]])
    np.testing.assert_array_equal(after[2], before[2][[0, 3, 5 + 1, 5 + 2, 5 + 6]])  # concat offsets 0 and 5
    _converts_and_checks(result.model, tmp_path)


@pytest.mark.parametrize("halves", ["Split", "Slice"])
def test_gate_halves_lose_unit_k_together_at_both_offsets(halves, tmp_path):
    net = Net(3, 3)
    both = net.dense("x", 3, 10)
    if halves == "Split":
        a, b = net.node("Split", [both, net.constant([5, 5])], outputs=2, axis=2)
    else:
        a, b = net.slice(both, 0, 5), net.slice(both, 5, 10)
    gate = net.node("Mul", [net.node("Tanh", [a]), net.node("Sigmoid", [b])])
    model = net.build(net.dense(gate, 5, 3))
    producer = next(n.name for n in model.graph.node if n.op_type == "MatMul")
    result = prune.structured_prune(model, 0.5, keep={producer: [1, 4]})
    before, after = _matmuls(model), _matmuls(result.model)
    np.testing.assert_array_equal(after[0], before[0][:, [1, 4, 6, 9]])  # rows k and 5 + k of the producing layer
    np.testing.assert_array_equal(after[1], before[1][[1, 4]])
    assert result.pruned[0]["units_before"] == 10 and result.pruned[0]["units_after"] == 4
    graph = Graph(result.model)
    if halves == "Split":
        split = next(n for n in result.model.graph.node if n.op_type == "Split")
        assert graph.array(split.input[1]).tolist() == [2, 2]
    else:
        bounds = [(int(graph.array(n.input[1])[0]), int(graph.array(n.input[2])[0]))
                  for n in result.model.graph.node if n.op_type == "Slice"]
        assert bounds == [(0, 2), (2, 4)]
    _converts_and_checks(result.model, tmp_path)


def test_a_group_joined_with_the_graph_input_keeps_its_size_and_says_so(tmp_path):
    net = Net(4, 5)
    residual = net.node("Add", ["x", net.dense("x", 5, 5, "Tanh")])
    model = net.build(net.dense(net.dense(residual, 5, 7, "Relu"), 7, 3))
    result = prune.structured_prune(model, 0.5)
    first, hidden, head = _matmuls(result.model)
    assert first.shape == (5, 5) and hidden.shape == (5, 4) and head.shape == (4, 3)
    assert any("the graph input 'x', whose size is fixed" in e["reason"] for e in result.skipped), result.skipped
    _converts_and_checks(result.model, tmp_path)


# ------------------------------------------------------------------------------ random residual/gated graphs
@st.composite
def merge_graphs(draw):
    """A chain of blocks on a running value: dense, residual (Add/Sub/Mul/Sum of a branch), gate (Split or two
    Slices, tanh * sigmoid) or concat of two dense branches; a dense head."""
    features = draw(st.integers(1, 4))
    net = Net(draw(st.integers(0, 2**31)), features)
    size = draw(st.integers(2, 7))
    value = net.dense("x", features, size, "Tanh")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["dense", "residual", "gate", "concat"]))
        if kind == "dense":
            out = draw(st.integers(1, 7))
            value, size = net.dense(value, size, out, draw(st.sampled_from([None, "Tanh", "Relu"]))), out
        elif kind == "residual":
            op = draw(st.sampled_from(["Add", "Sub", "Mul", "Sum"]))
            operands = [value, net.dense(value, size, size, "Tanh")] + ([net.dense(value, size, size, "Relu")] if op == "Sum" else [])
            value = net.node(op, operands)
        elif kind == "gate":
            half = draw(st.integers(1, 5))
            both = net.dense(value, size, 2 * half)
            if draw(st.booleans()):
                a, b = net.node("Split", [both, net.constant([half, half])], outputs=2, axis=2)
            else:
                a, b = net.slice(both, 0, half), net.slice(both, half, 2 * half)
            value, size = net.node("Mul", [net.node("Tanh", [a]), net.node("Sigmoid", [b])]), half
        else:
            left, right = draw(st.integers(1, 5)), draw(st.integers(1, 5))
            parts = [net.dense(value, size, left, "Tanh"), net.dense(value, size, right, "Relu")]
            value, size = net.node("Concat", parts, axis=2), left + right
    return net.build(net.dense(value, size, draw(st.integers(1, 3))))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(model=merge_graphs(), amount=st.floats(0.0, 0.95))
def test_random_merge_graphs_prune_to_consistent_models_and_zero_is_the_identity(model, amount, tmp_path_factory):
    identity = prune.structured_prune(model, 0.0).model
    assert identity.graph.node == model.graph.node and identity.graph.initializer == model.graph.initializer
    result = prune.structured_prune(model, amount)
    _converts_and_checks(result.model, tmp_path_factory.mktemp("merge"))
    graph = Graph(model)
    groups, _ = prune.find_groups(graph)
    shrinking = []
    for group in groups:  # the selection: the lowest scores, but every producer and slice keeps one unit
        scores = prune.unit_scores(graph, group)
        shrinking.append(len(prune.keep_one_of_each(prune.choose_keep(scores, amount), scores, group.together)) < group.size)
    from quant.onnx_graph import parameter_count

    assert (parameter_count(result.model) < parameter_count(model)) == any(shrinking)
    assert bool(result.pruned) == any(shrinking)
    assert all(1 <= e["units_after"] <= e["units_before"] for e in result.pruned)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(model=merge_graphs(), role=st.sampled_from(["incoming", "outgoing"]))
def test_removing_planted_zero_units_of_merge_graphs_changes_nothing(model, role):
    planted = _plant_zeros(model, role)
    # Prune at most the 2 planted units of every group: floor(amount * n) <= 2 for every group size n (a concat
    # of two branches makes groups of up to 10 units, where 0.34 would take a third, non-zero unit).
    largest = max(group.size for group in prune.find_groups(Graph(prune.prepare(model)))[0])
    result = prune.structured_prune(planted, min(0.34, 2.5 / largest))
    samples = calibration.random_samples(planted, count=2)
    before, after = calibration.run(planted, samples), calibration.run(result.model, samples)
    for a, b in zip(before, after):
        for name in a:
            np.testing.assert_allclose(b[name], a[name], atol=EXACT, rtol=0)


def _plant_zeros(model: onnx.ModelProto, role: str, units: int = 2) -> onnx.ModelProto:
    """A copy of ``model`` whose first ``units`` units of every group have all-zero parameters of ``role``: zero
    incoming (every joined producer's rows and biases: each path gives exactly 0 through tanh/relu, and a gate
    tanh(0) * sigmoid(0) = 0) or zero outgoing (no reader sees them)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model = prune.prepare(model)  # as structured_prune sees it
    graph = Graph(model)
    groups, _ = prune.find_groups(graph)
    zero_group_units(graph, groups, units, role)
    return model


# ------------------------------------------------------------------------------ issue 11's torch models
@pytest.fixture(scope="module")
def torch_exports(tmp_path_factory):
    from tests.conftest import require_modules

    require_modules("torch", "onnxscript")
    from tests.fixtures import graph_models as gm
    from tests.fixtures.export import export_legacy

    folder = tmp_path_factory.mktemp("graph_prune")
    paths = {}
    for name in ("tcn", "wavenet", "dense_residual", "concat_branches", "simplernn_lstm_2in"):
        _, layout, features, _ = gm.PATTERNS[name]
        paths[name] = export_legacy(gm.build(name), gm.example(layout, features), folder / f"{name}.onnx",
                                    {0: "batch", 1 if layout == "btf" else 2: "time"})
    return paths


#: name -> producers that must be pruned (joined across a merge) at 40 %.
ACROSS = {"tcn": ["/residuals.0/Conv", "/residuals.1/Conv", "/blocks.0.1/conv/Conv", "/blocks.1.1/conv/Conv"],
          "wavenet": ["/input/Conv", "/residuals.0/Conv", "/residuals.1/Conv", "/hidden.0/conv/Conv", "/hidden.2/conv/Conv"],
          "dense_residual": ["/a/MatMul", "/b/MatMul"], "concat_branches": ["/left/MatMul", "/right/MatMul"],
          "simplernn_lstm_2in": ["/rec/LSTM"]}


@pytest.mark.parametrize("name", sorted(ACROSS))
def test_issue_11_models_prune_across_merges_convert_and_check(name, torch_exports, tmp_path):
    from quant.onnx_graph import load_model, parameter_count

    model = load_model(torch_exports[name])
    result = prune.structured_prune(model, 0.4)
    assert set(ACROSS[name]) <= {e["node"] for e in result.pruned}, result.skipped
    assert parameter_count(result.model) < 0.8 * parameter_count(model)
    _converts_and_checks(result.model, tmp_path)
    planted = _plant_zeros(model, "incoming")
    exact = prune.structured_prune(planted, 0.34)
    samples = calibration.random_samples(planted, count=1)
    for a, b in zip(calibration.run(planted, samples), calibration.run(exact.model, samples)):
        for key in a:
            np.testing.assert_allclose(b[key], a[key], atol=EXACT, rtol=0)
    assert parameter_count(exact.model) < parameter_count(planted)
