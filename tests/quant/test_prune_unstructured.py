"""Unstructured pruning: magnitude sparsity with unchanged shapes."""
from __future__ import annotations

import numpy as np
import pytest

from quant import calibration, prune
from quant.onnx_graph import Graph
from tests.quant.conftest import outputs


@pytest.mark.parametrize("kind", ["gemm", "lstm", "mixed"])
def test_the_smallest_weights_are_zeroed_and_shapes_stay(catalog, kind):
    model = catalog[kind]
    result = prune.unstructured_prune(model, 0.6)
    before, after = Graph(model), Graph(result.model)
    assert result.sparsity
    for name, (zeros, values) in result.sparsity.items():
        original, pruned = before.array(name), after.array(name)
        assert pruned.shape == original.shape and zeros == int(np.floor(0.6 * values + 1e-9))
        # every zeroed weight is no larger than every kept one
        assert np.max(np.abs(original[pruned == 0])) <= np.min(np.abs(original[pruned != 0]))
        np.testing.assert_array_equal(pruned[pruned != 0], original[pruned != 0])
    samples = calibration.random_samples(model, count=1)
    shapes = [v.shape for v in outputs(result.model, samples)[0].values()]
    assert shapes == [v.shape for v in outputs(model, samples)[0].values()]


def test_biases_are_not_sparsified(catalog):
    model = catalog["gemm"]
    result = prune.unstructured_prune(model, 0.9)
    biases = [n.input[2] for n in model.graph.node if n.op_type == "Gemm"]
    assert not set(biases) & set(result.sparsity)
