"""Property: random DAGs of supported layers and merges, written as ONNX graphs by hand (an independent
encoding: onnx.helper, not torch), convert, and the reference engine matches onnxruntime frame by frame.

Nodes on ``[batch, time, features]`` tensors: MatMul + bias Add (dense) with an optional Tanh/Relu/Sigmoid,
Add/Sub/Mul of two equal-size values, Sum of three, Concat on the feature axis, Slice of a feature range.
Every value not read by a later node is concatenated into the head, so there is no dead branch.
Tolerance 1e-5 absolute as for ``kelly-tc check`` (float32 against float32).
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

from tests.fixtures import onnx_graphs as graphs

OPS = ("dense", "add", "sub", "mul", "sum", "concat", "slice")


@st.composite
def dag(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    inputs = draw(st.integers(1, 4))
    values = [("x", inputs)]  # (tensor name, features)
    read: set[str] = set()
    nodes, initializers = [], {}

    def new(prefix):
        return f"{prefix}{len(nodes)}"

    def dense(source, size, out, activation=None):
        weight, bias, product, name = new("W"), new("b"), new("mm"), new("d")
        initializers[weight], initializers[bias] = graphs.random(rng, size, out), graphs.random(rng, out)
        nodes.append(helper.make_node("MatMul", [source, weight], [product], name=product))
        nodes.append(helper.make_node("Add", [product, bias], [name], name=name))
        if activation:
            nodes.append(helper.make_node(activation, [name], [name + "a"], name=name + "a"))
            name += "a"
        return name

    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(OPS))
        source, size = values[draw(st.integers(0, len(values) - 1))]
        read.add(source)
        if op == "dense" or (op in ("add", "sub", "mul", "sum") and len(values) == 1):
            out = draw(st.integers(1, 6))
            values.append((dense(source, size, out, draw(st.sampled_from([None, "Tanh", "Relu", "Sigmoid"]))), out))
        elif op in ("add", "sub", "mul", "sum"):
            partner = dense(source, size, size, "Tanh")  # a second branch of the same size
            operands = [source, partner] + ([values[-1][0]] if op == "sum" and values[-1][1] == size else [])
            read.update(operands)
            name = new("m")
            nodes.append(helper.make_node(op.capitalize(), operands, [name], name=name))
            values.append((name, size))
        elif op == "concat":
            other, other_size = values[draw(st.integers(0, len(values) - 1))]
            read.add(other)
            name = new("c")
            nodes.append(helper.make_node("Concat", [source, other], [name], name=name, axis=2))
            values.append((name, size + other_size))
        else:
            start = draw(st.integers(0, size - 1))
            stop = draw(st.integers(start + 1, size))
            if (start, stop) == (0, size):
                continue
            name, bounds = new("s"), new("k")
            initializers[bounds + "s"], initializers[bounds + "e"] = np.array([start], np.int64), np.array([stop], np.int64)
            initializers[bounds + "a"] = np.array([2], np.int64)
            nodes.append(helper.make_node("Slice", [source, bounds + "s", bounds + "e", bounds + "a"], [name], name=name))
            values.append((name, stop - start))
    loose = [(name, size) for name, size in values if name not in read] or [values[-1]]
    if len(loose) > 1:
        name = new("c")
        nodes.append(helper.make_node("Concat", [n for n, _ in loose], [name], name=name, axis=2))
        loose = [(name, sum(s for _, s in loose))]
    head = dense(loose[0][0], loose[0][1], draw(st.integers(1, 3)))
    nodes.append(helper.make_node("Identity", [head], ["y"], name="out"))
    proto = graphs.model(nodes, [graphs.value("x", ["batch", "time", inputs])], [graphs.value("y", ["batch", "time", None])],
                         initializers)
    return proto


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(proto=dag())
def test_random_dags_convert_and_match_onnxruntime(proto, tmp_path_factory):
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    folder = tmp_path_factory.mktemp("dag")
    path = graphs.save(proto, folder / "dag.onnx")
    convert_file(path, folder / "dag.json")
    report = check_files(path, folder / "dag.json", frames=64, atol=1e-5)
    assert report.passed, [(c.label, c.max_abs_error) for c in report.comparisons]
