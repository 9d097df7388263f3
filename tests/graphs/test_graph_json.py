"""The graph file and the in_skip form: round trips, the form chosen from the wiring, and every refusal of the
reader as one line ``FILE: graph.nodes[i] (name): reason`` (exit 2 through the CLI, nothing written)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reference_engine import synthetic
from reference_engine.model import Engine, load_engine
from toolchain.errors import InputError
from toolchain.graph_json import FORMAT, in_skip_body, model_from_json, model_to_json, output_form, read_model, \
    with_in_skip, write_model
from toolchain.layers import Add, Concat, Model, Slice


def residual(rng) -> Model:
    """x -> dense(5, tanh) -> dense(5); add; concat with the input; dense head (odd sizes)."""
    return Model(3, [synthetic.dense(rng, 3, 5, "tanh"), synthetic.dense(rng, 5, 5), Add(inputs=(1, 2)),
                     Concat(inputs=(3, 0)), synthetic.dense(rng, 8, 2)]).validate()


def test_forms_follow_the_wiring(rng):
    stack = synthetic.dense_stack(rng, [3, 5, 1])
    assert output_form(stack) == "sequential" and "format" not in model_to_json(stack)
    skipped = with_in_skip(stack)
    assert output_form(skipped) == "in_skip"
    assert model_to_json(skipped)["in_skip"] == 1
    assert output_form(residual(rng)) == "graph"
    two_outputs_skip = with_in_skip(synthetic.dense_stack(rng, [3, 5, 1]))
    two_outputs_skip.layers[-2] = Slice(start=1, size=1, inputs=(0,))  # feature 1 is not AIDA-X's skip
    assert output_form(two_outputs_skip) == "graph"
    path_through_slice = Model(3, [Slice(start=1, size=2), synthetic.dense(rng, 2, 1)])  # found by the DAG property
    assert not path_through_slice.is_sequential() and output_form(path_through_slice) == "graph"


@pytest.mark.parametrize("build", ["residual", "wavenet", "in_skip"])
def test_round_trip_keeps_the_model_and_its_outputs(build, rng, tmp_path):
    model = {"residual": lambda: residual(rng), "wavenet": lambda: synthetic.wavenet(rng, 2, 3),
             "in_skip": lambda: with_in_skip(synthetic.dense_stack(rng, [2, 5, 1]))}[build]()
    path = write_model(model, tmp_path / "m.json")
    again = read_model(path)
    assert again.wiring() == model.wiring()
    frames = rng.standard_normal((31, model.input_size)).astype(np.float32)
    np.testing.assert_array_equal(Engine(model).run(frames), load_engine(path).run(frames))


def test_graph_file_is_not_a_sequential_file(rng, tmp_path):
    document = json.loads(write_model(residual(rng), tmp_path / "g.json").read_text())
    assert document["format"] == FORMAT and document["version"] == 1
    assert isinstance(document["in_shape"], str) and isinstance(document["layers"], str)  # RTNeural's parsers fail
    layer = document["graph"]["nodes"][0]["layer"]
    assert layer["type"] == "dense" and layer["shape"] == [None, None, 5] and len(layer["weights"]) == 2
    from toolchain.rtneural_json import model_from_json as sequential

    with pytest.raises(InputError, match="cannot apply 'graph'"):
        sequential(document)


def _graph_document(rng) -> dict:
    return model_to_json(residual(rng))


def _nodes(document):
    return document["graph"]["nodes"]


BAD = {
    "unknown_version": (lambda d: d.update(version=2), "version: version 2 is not supported (this kelly-tc reads version 1)"),
    "dangling": (lambda d: _nodes(d)[2].update(inputs=["dense_0", "nowhere"]), "graph.nodes[2] (add_2)/inputs: reads 'nowhere': dangling"),
    "cycle": (lambda d: _nodes(d)[2].update(inputs=["dense_0", "concat_3"]),
              "graph.nodes[2] (add_2)/inputs: reads 'concat_3': a cycle or forward reference (nodes must be in topological order)"),
    "self_loop": (lambda d: _nodes(d)[2].update(inputs=["add_2", "dense_0"]),
                  "graph.nodes[2] (add_2)/inputs: reads 'add_2': a cycle or forward reference (nodes must be in topological order)"),
    "duplicate": (lambda d: _nodes(d)[1].update(name="dense_0"), "graph.nodes[1] (dense_0)/name: name 'dense_0' is used twice"),
    "reserved": (lambda d: _nodes(d)[1].update(name="input"), "graph.nodes[1] (input)/name: name 'input' is reserved for the model input"),
    "bad_name": (lambda d: _nodes(d)[1].update(name="a-b"),
                 "graph.nodes[1] (a-b)/name: name 'a-b' is not an identifier [A-Za-z_][A-Za-z0-9_]* of at most 64 characters"),
    "unknown_op": (lambda d: _nodes(d)[2].update(op="max"),
                   "graph.nodes[2] (add_2)/op: unknown op 'max'; known: ['add', 'concat', 'mul', 'slice', 'sub']"),
    "size_mismatch": (lambda d: _nodes(d)[2].update(inputs=["dense_0", "input"]),
                      "graph.nodes[2] (add_2)/inputs: inputs have different sizes [5, 3]; an elementwise add needs equal sizes"),
    "unused": (lambda d: _nodes(d)[2].update(inputs=["dense_0", "dense_0"]),
               "graph.nodes[1] (dense_1): is never read (a dead branch); every value but the output must feed a node"),
    "output_not_last": (lambda d: d["graph"].update(output="add_2"),
                        "graph.output: must name the last node 'dense_4' (nodes are in topological order, one output), got 'add_2'"),
    "layer_and_op": (lambda d: _nodes(d)[0].update(op="add"),
                     "graph.nodes[0] (dense_0): needs exactly one of \"layer\" (an RTNeural layer object) or \"op\" (a merge)"),
    "layer_size": (lambda d: _nodes(d)[1].update(inputs=["input"]),
                   "graph.nodes[1] (dense_1)/layer (dense): weights take 5 inputs but its input gives 3"),
    "slice_range": (lambda d: _nodes(d).insert(4, {"name": "s", "inputs": ["concat_3"], "op": "slice", "start": 7, "size": 2}),
                    "graph.nodes[4] (s)/start: features [7, 7+2) are not inside the 8 features it reads"),
    "unknown_format": (lambda d: d.update(format="other"), "format: unknown format 'other'; this reader knows \"kelly-tc-graph\" and plain RTNeural JSON"),
    "in_skip_2": (lambda d: d.clear() or d.update({"in_shape": [None, None, 1], "layers": [], "in_skip": 2}),
                  "in_skip: expected 0 or 1 (AIDA-X adds input feature 0 to the output), got 2"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_reader_refuses_with_one_line(case, rng, tmp_path):
    from typer.testing import CliRunner

    from toolchain.cli import app

    document = _graph_document(rng)
    mutate, reason = BAD[case]
    mutate(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as raised:
        read_model(path)
    assert raised.value.line() == f"{path}: {reason}"
    result = CliRunner().invoke(app, ["run", str(path), "-i", str(tmp_path / "x.npy")])
    assert result.exit_code == 2 and result.stderr == f"error: {path}: {reason}\n"


def test_in_skip_needs_a_one_feature_output(rng):
    document = model_to_json(synthetic.dense_stack(rng, [2, 5, 3]))
    document["in_skip"] = 1
    with pytest.raises(InputError, match="in_skip adds input feature 0 to a 1-feature output, but the model gives 3"):
        model_from_json(document)


def test_others_in_skip_file_runs_with_the_skip(rng, tmp_path):
    """An AIDA-X style file: plain RTNeural layers plus "in_skip": 1; the engine adds input 0 (float64 reference)."""
    body = synthetic.dense_stack(rng, [2, 5, 1])
    document = model_to_json(body)
    document["in_skip"] = 1
    path = tmp_path / "aidax.json"
    path.write_text(json.dumps(document))
    frames = rng.standard_normal((17, 2)).astype(np.float32)
    d0, d1 = body.layers
    hidden = np.maximum(frames.astype(np.float64) @ d0.weight.T.astype(np.float64) + d0.bias, 0)
    expected = hidden @ d1.weight.T.astype(np.float64) + d1.bias + frames[:, :1]
    np.testing.assert_allclose(load_engine(path).run(frames), expected, atol=1e-5, rtol=0)
    assert in_skip_body(read_model(path)) is not None


def test_int8_graph_and_in_skip_files_round_trip(rng, tmp_path):
    from quant.int8_json import is_int8_json, quantize_model, read_int8_model, write_int8_model

    for model in (synthetic.wavenet(rng, 1, 3), with_in_skip(synthetic.dense_stack(rng, [2, 5, 1]))):
        quantized = quantize_model(model)
        path = write_int8_model(quantized, tmp_path / "m.int8.json")
        assert is_int8_json(path)
        again = read_int8_model(path)
        assert again.model.wiring() == model.wiring()
        frames = rng.standard_normal((23, model.input_size)).astype(np.float32)
        int8_out = load_engine(path).run(frames)
        np.testing.assert_allclose(int8_out, Engine(quantized.model).run(frames), atol=1e-4, rtol=0)
        document = json.loads(path.read_text())
        assert "weights_format" not in json.loads(json.dumps(model_to_json(again.model)))
        assert document.get("in_skip", 0) == (0 if document.get("graph") else 1)


def test_validate_loads_graph_and_in_skip_files(rng, tmp_path):
    """``kelly-tc validate`` loads each model through ``load_model_file``: every form is read, none is cut short."""
    from toolchain.kelly.validate import load_model_file

    for name, model in (("graph", synthetic.wavenet(rng, 1, 3)), ("skip", with_in_skip(synthetic.dense_stack(rng, [2, 5, 1])))):
        path = write_model(model, tmp_path / f"{name}.json")
        loaded, engine = load_model_file(path)
        assert loaded.wiring() == model.wiring()
        frames = rng.standard_normal((9, model.input_size)).astype(np.float32)
        np.testing.assert_array_equal(engine.run(frames), Engine(model).run(frames))
