"""Conversion time of a chain of N Identity nodes (issue 17, point 6: it was quadratic).

``python -m bench.identity_chain [--nodes 1000 10000 100000]`` builds ``x -> MatMul -> Identity x N -> y``
([batch, time, 3] -> 5 features), converts it with ``toolchain.convert.convert_file`` and prints the
wall time per size and per node. A linear walk keeps the per-node time flat as N grows; before the
fix 1,000 nodes made 503,507 ``check_tensor`` calls and 10,000 nodes took 282 s.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def identity_chain(nodes: int) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32), "w")
    graph_nodes = [helper.make_node("MatMul", ["x", "w"], ["t0"], name="matmul")]
    graph_nodes += [helper.make_node("Identity", [f"t{i}"], [f"t{i + 1}"], name=f"identity{i}") for i in range(nodes - 1)]
    graph_nodes.append(helper.make_node("Identity", [f"t{nodes - 1}"], ["y"], name=f"identity{nodes - 1}"))
    graph = helper.make_graph(graph_nodes, "identity_chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", 5])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def measure(nodes: int, folder: Path) -> float:
    from toolchain.convert import convert_file

    from toolchain import atomic

    path = folder / f"chain{nodes}.onnx"
    atomic.write_bytes(path, identity_chain(nodes).SerializeToString())
    started = time.perf_counter()
    convert_file(path, folder / f"chain{nodes}.json")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print("nodes      seconds   us/node")
        for nodes in arguments.nodes:
            seconds = measure(nodes, Path(folder))
            print(f"{nodes:>7}  {seconds:9.2f}  {seconds / nodes * 1e6:8.1f}")


if __name__ == "__main__":
    main()
