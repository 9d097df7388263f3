"""Hostile ONNX files beyond the converter's own refusal builders (``tests/fixtures/refusals.py``).

Each builder takes a folder and returns the path of the bad file it wrote there. The "bombs" declare
or compute tensors far larger than their data (a few hundred bytes that ask for gigabytes): they must
be refused from the declared sizes, before anything is allocated.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from tests.fixtures import onnx_graphs as graphs
from tests.fixtures import refusals

BILLION = 10**9


def _save(proto, folder: Path, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(proto.SerializeToString())  # no checker: several of these are invalid on purpose
    return path


def _dense(rng=None, features: int = 3, outputs: int = 4):
    rng = rng or np.random.default_rng(refusals.RNG_SEED)
    return graphs.dense(graphs.random(rng, features, outputs), graphs.random(rng, outputs))


def missing_file(folder):
    return folder / "absent.onnx"


def directory_instead_of_file(folder):
    path = folder / "model.onnx"
    path.mkdir()
    return path


def json_instead_of_onnx(folder):
    path = folder / "model.onnx"
    path.write_text('{"in_shape": [null, null, 3], "layers": []}\n')
    return path


def graph_without_nodes(folder):
    proto = _dense()
    del proto.graph.node[:]
    return _save(proto, folder)


def opset_too_old(folder):
    proto = _dense()
    proto.opset_import[0].version = 7
    return _save(proto, folder)


def inf_bias(folder):
    rng = np.random.default_rng(refusals.RNG_SEED)
    bias = graphs.random(rng, 4)
    bias[2] = np.inf
    return _save(graphs.dense(graphs.random(rng, 3, 4), bias), folder)


def gru_absurd_hidden_size(folder):
    w, r, b = refusals._gru_weights()
    proto = graphs.model([helper.make_node("GRU", ["x", "W", "R", "B"], ["y"], name="gru", hidden_size=BILLION, linear_before_reset=1)],
                         [graphs.value("x", ["time", "batch", 2])], [graphs.value("y", ["time", 1, "batch", BILLION])],
                         {"W": w, "R": r, "B": b}, check=False)
    return _save(proto, folder)


def lstm_absurd_declared_weights(folder):
    """hidden_size 10^9 with W, R, B declaring the matching shapes -- and 48 bytes of data behind them."""
    proto = graphs.model([helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], name="lstm", hidden_size=BILLION)],
                         [graphs.value("x", ["time", "batch", 2])], [graphs.value("y", ["time", 1, "batch", BILLION])],
                         {"W": np.zeros(12, np.float32), "R": np.zeros(12, np.float32), "B": np.zeros(12, np.float32)}, check=False)
    for tensor, dims in zip(proto.graph.initializer, ([1, 4 * BILLION, 2], [1, 4 * BILLION, BILLION], [1, 8 * BILLION])):
        del tensor.dims[:]
        tensor.dims.extend(dims)
    return _save(proto, folder)


def input_absurd_feature_size(folder):
    """The input declares 10^9 features per frame; the weight takes 3."""
    proto = _dense()
    proto.graph.input[0].type.tensor_type.shape.dim[2].dim_value = BILLION
    return _save(proto, folder)


def input_absurd_time_length(folder):
    """A fixed sequence length of 10^12 frames (as the dynamo exporter fixes the example's length)."""
    proto = _dense()
    for value in (proto.graph.input[0], proto.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_value, dims[1].dim_value = 1, 10**12
    return _save(proto, folder)


#: The computed weights below are [3, 4 * 10^9]: consistent with the 3-feature input, absurd in size.
BOMB_OUTPUTS = 4 * BILLION


def _computed_weight(folder, nodes, initializers):
    """``y = x @ W`` where ``W [3, 4e9]`` is computed by ``nodes`` from a few bytes of constants
    (constant folding must refuse to materialise it)."""
    nodes = nodes + [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")]
    proto = graphs.model(nodes, [graphs.value("x", ["batch", "time", 3])], [graphs.value("y", ["batch", "time", "outputs"])],
                         initializers, check=False)
    return _save(proto, folder)


def expand_bomb(folder):
    """W = Expand(one float, [3, 4e9]): 1.2e10 floats from 4 bytes."""
    return _computed_weight(folder, [helper.make_node("Expand", ["one", "shape"], ["W"], name="expand")],
                            {"one": np.ones((1, 1), np.float32), "shape": np.array([3, BOMB_OUTPUTS], np.int64)})


def constant_of_shape_bomb(folder):
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5])
    return _computed_weight(folder, [helper.make_node("ConstantOfShape", ["shape"], ["W"], name="fill", value=value)],
                            {"shape": np.array([3, BOMB_OUTPUTS], np.int64)})


def tile_bomb(folder):
    return _computed_weight(folder, [helper.make_node("Tile", ["w", "repeats"], ["W"], name="tile")],
                            {"w": np.ones((3, 4), np.float32), "repeats": np.array([1, BILLION], np.int64)})


def conv_dilation_bomb(folder):
    """A depthwise Conv over 16384 channels, kernel 2, dilation 65536: 128 KB of weights, but a streaming
    conv1d must remember 65537 past frames of 16384 channels (4 GiB of state)."""
    channels, dilation = 16384, 65536
    rng = np.random.default_rng(refusals.RNG_SEED)
    proto = graphs.model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv", group=channels, dilations=[dilation],
                                           pads=[dilation, 0], kernel_shape=[2])],
                         [graphs.value("x", ["batch", channels, "time"])], [graphs.value("y", ["batch", channels, "time"])],
                         {"W": graphs.random(rng, channels, 1, 2)}, check=False)
    return _save(proto, folder)


def external_data_fifo(folder):
    """The external-data file is a named pipe: reading it would block forever."""
    os.mkfifo(folder / "weights.bin")
    return refusals._external(folder, "weights.bin", None)


def external_data_device_file(folder):
    """An external-data location that is a symlink to a device inside the folder (reads forever)."""
    model_folder = folder / "model"
    model_folder.mkdir()
    os.symlink("/dev/zero", model_folder / "weights.bin")
    return refusals._external(model_folder, "weights.bin", None)


#: name -> (builder, WHERE, reason as a regular expression). "{folder}" is the model's folder.
CASES = {
    "missing_file": (missing_file, None, r"no such file"),
    "directory_instead_of_file": (directory_instead_of_file, None, r"not a regular file"),
    "json_instead_of_onnx": (json_instead_of_onnx, None, r"not an ONNX model \(.*\)"),
    "graph_without_nodes": (graph_without_nodes, None, r"not an ONNX model \(no IR version, opset or graph nodes: truncated or not ONNX\)"),
    "opset_too_old": (opset_too_old, "opset_import", r"opset 7 is outside the supported range 9\.\.\d+ \(upgrade old models with onnx\.version_converter\)"),
    "inf_bias": (inf_bias, "node 'add' (Add)", r"added constant 'b' contains NaN or Inf"),
    "gru_absurd_hidden_size": (gru_absurd_hidden_size, "node 'gru' (GRU)", r"hidden_size 1000000000 outside 1\.\.65536"),
    "lstm_absurd_declared_weights": (lstm_absurd_declared_weights, "initializer 'W'", r"declares 8000000000 elements, above the \d+ limit"),
    "input_absurd_feature_size": (input_absurd_feature_size, "graph input 'x'",
                                  r"declares a fixed shape \['batch', 'time', 1000000000\] of 1000000000 elements per run, above the 67108864 limit"),
    "input_absurd_time_length": (input_absurd_time_length, "graph input 'x'",
                                 r"declares a fixed shape \[1, 1000000000000, 3\] of 3000000000000 elements per run, above the 67108864 limit"),
    "expand_bomb": (expand_bomb, "node 'expand' (Expand)", r"would create a constant of 12000000000 elements, above the 67108864 limit"),
    "constant_of_shape_bomb": (constant_of_shape_bomb, "node 'fill' (ConstantOfShape)",
                               r"would create a constant of 12000000000 elements, above the 67108864 limit"),
    "tile_bomb": (tile_bomb, "node 'tile' (Tile)", r"would create a constant of 12000000000 elements, above the 67108864 limit"),
    "conv_dilation_bomb": (conv_dilation_bomb, "layers[0] (conv1d 'conv')",
                           r"a streaming conv1d keeps \(K-1\)\*dilation\+1 = 65537 past frames of 16384 channels: 1073758208 values "
                           r"of state, above the 16777216 limit"),
    "external_data_device_file": (external_data_device_file, "initializer 'W'",
                                  r"external data location 'weights\.bin' resolves outside the model's folder \(a symlink\?\)"),
    "external_data_fifo": (external_data_fifo, "initializer 'W'", r"external data file 'weights\.bin' is not a regular file"),
}
