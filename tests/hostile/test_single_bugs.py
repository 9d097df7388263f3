"""Issue 17, points 5, 6 and 10: numeric options at the CLI edge, the single bugs, ONNX edge cases,
capped error lines and the ``--int8`` pair.

Numbers are checked against independent computations: the sorted graph is compared with onnxruntime on
the original (unsorted) bytes' semantics through ``kelly-tc check``; the int8 file's recorded digest is
recomputed with hashlib here.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from tests.fixtures import onnx_graphs as graphs
from toolchain.cli import app


def invoke(*arguments):
    return CliRunner().invoke(app, [str(a) for a in arguments], env={"KELLY_TC_DEBUG": "0"})


def one_line(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(29)
    return graphs.save(graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5), "Tanh"), tmp_path / "m.onnx")


@pytest.fixture
def converted(model):
    assert invoke("convert", model).exit_code == 0
    return model.with_suffix(".json")


# ------------------------------------------------------------------------------- 5: numeric options
def test_numeric_options_are_refused_at_the_edge(model, converted, tmp_path):
    cases = [
        (["check", model, converted, "--frames", "100000000000"], "error: --frames: must be between 2 and 10000000, got 100000000000"),
        (["check", model, converted, "--seed", "-1"], "error: --seed: must be between 0 and 4294967295, got -1"),
        (["check", model, converted, "--atol", "nan"], "error: --atol: must be a finite number, got nan"),
        (["check", model, converted, "--atol", "-1"], "error: --atol: must be in [0, inf), got -1"),
        (["convert", model, "--frames", "1"], "error: --frames: must be between 2 and 10000000, got 1"),
        (["bench", converted, "--seed", "-1"], "error: --seed: must be between 0 and 4294967295, got -1"),
        (["bench", converted, "--memory-budget", "1e999GB"], "error: --memory-budget: '1e999GB' must be positive and at most 1024 PB"),
        (["bench", converted, "--budget", "1e400ms"], "error: --budget: '1e400ms' must be positive and finite"),
        (["train", "--seed", "-1", "--source", "synthetic", "-o", tmp_path / "t"], "error: seed: must be between 0 and 4294967295, got -1"),
        (["train", "--seq-len", "100000000", "--source", "synthetic", "-o", tmp_path / "t"],
         "error: seq_len: must be between 1 and 65536, got 100000000"),
        (["pipeline", "--seed", "-1", "--out", tmp_path / "p"], "error: --seed: must be between 0 and 4294967295, got -1"),
        (["prune", model, "--amount", "nan"], "error: --amount: must be a finite number, got nan"),
        (["quantize", model, "--int8", "--percentile", "0"], "error: --percentile: must be in (0, 100], got 0"),
        (["quantize", model, "--int8", "--max-error-growth", "inf"], "error: --max-error-growth: must be a finite number, got inf"),
        (["validate", tmp_path, "--atol", "nan"], "error: --atol: must be a finite number, got nan"),
    ]
    for arguments, expected in cases:
        assert one_line(invoke(*arguments)) == expected, arguments
    assert not (tmp_path / "t").exists() and not (tmp_path / "p").exists()


# ------------------------------------------------------------------------------ 6: the single bugs
def test_int8_of_denormal_weights_writes_positive_scales_that_run_accepts(tmp_path):
    tiny = graphs.save(graphs.dense(np.full((3, 5), 1e-45, np.float32), np.zeros(5, np.float32), "Tanh"), tmp_path / "tiny.onnx")
    result = invoke("convert", tiny, "--int8", "--check")
    assert result.exit_code == 0, result.stderr
    document = json.loads((tmp_path / "tiny.int8.json").read_text())
    scales = [s for s in document["layers"][0]["scales"] if s is not None][0]
    assert min(scales) >= np.finfo(np.float32).tiny
    frames = tmp_path / "frames.npy"
    np.save(frames, np.ones((4, 3), np.float32))
    assert invoke("run", tmp_path / "tiny.int8.json", "-i", frames).exit_code == 0


def test_a_size_zero_input_axis_is_refused_at_convert(tmp_path):
    rng = np.random.default_rng(31)
    proto = graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0
    path = graphs.save(proto, tmp_path / "zero.onnx")
    line = one_line(invoke("convert", path))
    assert line == f"error: {path}: graph input 'x': declares a size-0 axis in its shape [0, 'time', 3]: no frame can be fed"
    assert not (tmp_path / "zero.json").exists()


def test_identity_chain_walk_is_linear(tmp_path, monkeypatch):
    """Counts check_tensor calls (no timing): 1,000 chained nodes made 503,507 calls before the fix."""
    from bench.identity_chain import identity_chain
    from toolchain.converters import walk
    from toolchain.onnx_import import import_model_proto

    calls = {"count": 0}
    real = walk.check_tensor

    def counting(*arguments):
        calls["count"] += 1
        return real(*arguments)

    monkeypatch.setattr(walk, "check_tensor", counting)
    counts = {}
    for nodes in (250, 1000):
        calls["count"] = 0
        import_model_proto(identity_chain(nodes), source="chain")
        counts[nodes] = calls["count"]
    assert counts[1000] <= 4 * counts[250] + 10 and counts[1000] < 3 * 1000, counts


# --------------------------------------------------------------------------------- 10: ONNX edges
def test_onnx_is_loaded_by_content_whatever_its_name(model, tmp_path):
    disguised = tmp_path / "model.json"
    disguised.write_bytes(model.read_bytes())
    result = invoke("convert", disguised, "-o", tmp_path / "out.json")
    assert result.exit_code == 0, result.stderr


def _shuffled(proto: onnx.ModelProto) -> onnx.ModelProto:
    nodes = list(proto.graph.node)[::-1]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto


def test_nodes_out_of_topological_order_are_sorted_and_check_passes(tmp_path):
    rng = np.random.default_rng(37)
    proto = _shuffled(graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5), "Tanh"))
    path = tmp_path / "shuffled.onnx"
    path.write_bytes(proto.SerializeToString())  # onnx.save would not check; the file is out of order
    result = invoke("convert", path, "--check")  # onnxruntime on the sorted graph vs the engine
    assert result.exit_code == 0, result.stderr


def test_a_cycle_and_a_missing_tensor_are_named(tmp_path):
    cycle = helper.make_graph([helper.make_node("Relu", ["b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second"),
                               helper.make_node("Add", ["x", "b"], ["y"], name="add")], "g",
                              [graphs.value("x", ["batch", "time", 3])], [graphs.value("y", ["batch", "time", 3])])
    path = tmp_path / "cycle.onnx"
    path.write_bytes(helper.make_model(cycle, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert one_line(invoke("convert", path)) == (f"error: {path}: node 'first' (Relu): the nodes form a cycle "
                                                 "(a node needs, through other nodes, its own output)")
    missing = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")], "g",
                                [graphs.value("x", ["batch", "time", 3])], [graphs.value("y", ["batch", "time", 5])])
    path = tmp_path / "missing.onnx"
    path.write_bytes(helper.make_model(missing, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert one_line(invoke("convert", path)) == (f"error: {path}: node 'matmul' (MatMul): input 'W' is not a graph input, an "
                                                 "initializer or the output of any node (a missing initializer?)")


def test_a_sparse_initializer_is_named(tmp_path):
    rng = np.random.default_rng(41)
    proto = graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5))
    dense_weight = [t for t in proto.graph.initializer if t.name == "W"][0]
    values = numpy_helper.to_array(dense_weight)
    flat = np.flatnonzero(values)
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(values.ravel()[flat], "W"),
                                       numpy_helper.from_array(flat.astype(np.int64), "W_indices"), list(values.shape))
    proto.graph.initializer.remove(dense_weight)
    proto.graph.sparse_initializer.append(sparse)
    path = tmp_path / "sparse.onnx"
    path.write_bytes(proto.SerializeToString())
    assert one_line(invoke("convert", path)) == (f"error: {path}: node 'matmul' (MatMul): input 'W' is a sparse initializer; "
                                                 "kelly-tc reads dense initializers only (store it dense, e.g. with onnx.numpy_helper)")


def test_a_megabyte_name_gives_a_short_line(tmp_path):
    rng = np.random.default_rng(43)
    proto = graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5))
    proto.graph.node[0].input[1] = "W" * 1_000_000  # a tensor nothing defines, named by 1 MB
    path = tmp_path / "long.onnx"
    path.write_bytes(proto.SerializeToString())
    line = one_line(invoke("convert", path))
    assert len(line) < 1000 and "..." in line and "is not a graph input" in line


# -------------------------------------------------------------------------------- 10: --int8 pair
def test_the_int8_file_records_its_float_file_and_readers_check_it(model, tmp_path):
    assert invoke("convert", model, "--int8").exit_code == 0
    float_path, int8_path = tmp_path / "m.json", tmp_path / "m.int8.json"
    record = json.loads(int8_path.read_text())["float_model"]
    assert record == {"file": "m.json", "sha256": hashlib.sha256(float_path.read_bytes()).hexdigest()}
    frames = tmp_path / "frames.npy"
    np.save(frames, np.ones((4, 3), np.float32))
    assert invoke("run", int8_path, "-i", frames).exit_code == 0
    # Another run's float file beside it (what two concurrent runs into one pair could leave):
    rng = np.random.default_rng(47)
    other = graphs.save(graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5), "Tanh"), tmp_path / "other.onnx")
    assert invoke("convert", other, "-o", float_path).exit_code == 0
    line = one_line(invoke("run", int8_path, "-i", frames))
    assert line.startswith(f"error: {int8_path}: float_model: written for another version of m.json (recorded sha256 ")
    assert line.endswith("the pair comes from two different runs; rerun kelly-tc convert --int8")


def test_concurrent_int8_conversions_leave_a_consistent_pair(tmp_path):
    """Two rounds of two processes converting different models into the same pair: the pair always
    verifies (the folder lock serializes the two writes of a run)."""
    import subprocess
    import sys

    from quant.int8_json import read_int8_model
    from tests.conftest import REPO
    from tests.hostile.support import kelly_tc_environment

    rng = np.random.default_rng(53)
    sources = [graphs.save(graphs.dense(graphs.random(rng, 3, 5), graphs.random(rng, 5), "Tanh"), tmp_path / f"s{i}.onnx") for i in range(2)]
    target = tmp_path / "pair.json"
    script = ("import sys\nfrom toolchain.cli import main\nsys.argv = ['kelly-tc', 'convert', sys.argv[1], '-o', sys.argv[2], '--int8']\n"
              "main()\n")
    for _ in range(2):
        runs = [subprocess.Popen([sys.executable, "-c", script, str(source), str(target)], cwd=REPO, env=kelly_tc_environment(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for source in sources]
        for run in runs:
            assert run.wait(timeout=300) == 0, run.stderr.read()
        read_int8_model(tmp_path / "pair.int8.json")  # raises if the two files came from different runs
