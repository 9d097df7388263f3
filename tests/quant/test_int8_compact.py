"""The engine's compact INT8 forms: one stored scale for a matrix quantized per tensor, int8 biases for
biases that are exactly ``q * s``. They are chosen only where exact, so the INT8 engine computes what the
float engine computes on the dequantized weights (to float rounding order), with fewer weight bytes."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from quant.int8 import dequantize, quantize_symmetric
from quant.int8_json import BIAS_FIELDS, per_tensor_model, quantize_model
from reference_engine import synthetic
from reference_engine.kernels.int8 import compact_scale, exact_integers
from reference_engine.model import Engine
from toolchain.layers import Model

def quantized_per_tensor(model: Model, biases: bool | int) -> Model:
    """Weights per tensor; ``biases`` True (or 8): int8 biases, 16: biases on a 16-bit grid, False: float."""
    if biases != 16:
        return per_tensor_model(model, bool(biases))
    model = per_tensor_model(model, False)
    layers = [replace(layer, **{name: dequantize(*quantize_symmetric(getattr(layer, name), None, bits=16), None)
                                for name in BIAS_FIELDS.get(layer.kind, ())}) for layer in model.layers]
    return Model(model.input_size, layers, dict(model.metadata)).validate()


def stack(rng) -> Model:
    return synthetic.model(9, [synthetic.dense(rng, 9, 16, "relu"), synthetic.lstm(rng, 16, 11), synthetic.gru(rng, 11, 7),
                               synthetic.dense(rng, 7, 3, "tanh")])


def test_compaction_is_chosen_only_where_exact():
    assert compact_scale(np.full(12, 0.25, np.float32))[1] == 12
    assert compact_scale(np.array([0.25, 0.5], np.float32))[1] == 1
    values, scale = quantize_symmetric(np.linspace(-3, 2, 9).astype(np.float32), None)
    exact = dequantize(values, scale, None)
    q, s = exact_integers(exact)
    assert q.dtype == np.int8 and np.array_equal(q.astype(np.float32) * s, exact)
    assert exact_integers(np.array([1.0, 0.1234567], np.float32)) is None
    values16, scale16 = quantize_symmetric(np.linspace(-3, 2, 9).astype(np.float32), None, bits=16)
    on_grid = dequantize(values16, scale16, None)
    assert exact_integers(on_grid) is None  # too fine for int8
    q, s = exact_integers(on_grid, 16)
    assert q.dtype == np.int16 and np.array_equal(q.astype(np.float32) * s, on_grid)
    assert exact_integers(np.array([1.0, 0.1234567], np.float32), 16) is None


@pytest.mark.parametrize("biases", [False, True, 16], ids=["float-biases", "int8-biases", "int16-biases"])
def test_compact_int8_engine_computes_the_float_engine_on_the_same_weights_with_fewer_bytes(rng, biases):
    model = quantized_per_tensor(stack(rng), biases)
    frames = rng.standard_normal((70, 9)).astype(np.float32)
    int8_engine, float_engine = Engine(quantize_model(model)), Engine(model)
    expected = float_engine.run(frames)
    # float32 sums in another order (int8 values widened, the scale applied once per row): ~1e-7 relative.
    np.testing.assert_allclose(int8_engine.run(frames), expected, atol=2e-6, rtol=1e-5)
    per_row = Engine(quantize_model(stack(np.random.default_rng(1))))  # same shapes, per-row scales, float biases
    assert int8_engine.memory().weight_bytes < per_row.memory().weight_bytes
    from reference_engine.program import INT8_OPCODES, OP, PARAM2

    table = int8_engine.program.table
    forms = set(table[np.isin(table[:, OP], list(INT8_OPCODES.values())), PARAM2].tolist())
    assert forms == {{False: 0, True: 1, 16: 2}[biases]}  # float, int8 or int16 biases in every layer
    if biases:
        float_biases = Engine(quantize_model(quantized_per_tensor(stack(rng), False)))
        assert int8_engine.memory().weight_bytes < float_biases.memory().weight_bytes


def test_a_model_whose_biases_are_not_exact_keeps_float_biases(rng):
    model = quantized_per_tensor(stack(rng), biases=False)
    packed = Engine(quantize_model(model)).program.table
    from reference_engine.program import INT8_OPCODES, OP, PARAM2

    int8_rows = packed[np.isin(packed[:, OP], list(INT8_OPCODES.values()))]
    assert len(int8_rows) == 4 and not int8_rows[:, PARAM2].any()
    with_biases = Engine(quantize_model(quantized_per_tensor(stack(rng), biases=True))).program.table
    assert with_biases[np.isin(with_biases[:, OP], list(INT8_OPCODES.values())), PARAM2].all()
