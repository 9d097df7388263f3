"""The specialised program of a small per-sample model (reference_engine/specialise.py) computes exactly what the
table program computes: the same kernels on the same views, so the outputs and the state are equal to the bit,
frame by frame and block by block. Models that are not specialised keep the table program."""
from __future__ import annotations

import numpy as np
import pytest

from quant.int8_json import quantize_model
from reference_engine import specialise, synthetic
from reference_engine.model import Engine


def per_sample_every_kind(rng):
    """Every specialised row kind in one model (7 rows), odd and square sizes; the LSTM's [12, 6] and the GRU's
    [15, 3] matrices are packed by columns, the dense [3, 1], [9, 5] ones by rows."""
    layers = [synthetic.dense(rng, 1, 3, "tanh"), synthetic.lstm(rng, 3, 3), synthetic.batchnorm(rng, 3),
              synthetic.prelu(rng, 3), synthetic.gru(rng, 3, 5), synthetic.activation(5, "elu"),
              synthetic.dense(rng, 5, 9, "sigmoid")]
    return synthetic.model(1, layers)


def stereo_rows_layout(rng):
    """A stereo per-sample GRU whose matrices keep the row layout (17 columns > dense.COLUMNS_MAX_COLS)."""
    return synthetic.model(2, [synthetic.dense(rng, 2, 17, "relu"), synthetic.gru(rng, 17, 17), synthetic.dense(rng, 17, 2)])


@pytest.mark.parametrize("build", [per_sample_every_kind, stereo_rows_layout])
def test_specialised_equals_the_table_program_to_the_bit(rng, build):
    model = build(rng)
    special, table = Engine(model, block=16), Engine(model, block=16, specialised=False)
    assert specialise.specialisable(special.program)
    assert special._run_block is not table._run_block
    frames = rng.standard_normal((16 * 5 + 3, model.input_size)).astype(np.float32)
    np.testing.assert_array_equal(special.run(frames), table.run(frames))
    np.testing.assert_array_equal(special.state, table.state)
    assert not np.array_equal(special.state, 0)  # the recurrent state moved: the comparison above is not vacuous
    special.reset(), table.reset()
    for frame in frames[:40]:
        np.testing.assert_array_equal(special.forward(frame), table.forward(frame))
    np.testing.assert_array_equal(special.process(frames[:16]), table.process(frames[:16]))


def test_what_is_not_specialised(rng):
    feature = synthetic.model(3, [synthetic.lstm(rng, 3, 4), synthetic.dense(rng, 4, 1)])  # 3 inputs: not per-sample
    no_recurrence = synthetic.model(1, [synthetic.dense(rng, 1, 4, "tanh"), synthetic.dense(rng, 4, 1)])
    wide = synthetic.model(1, [synthetic.lstm(rng, 1, 33), synthetic.dense(rng, 33, 1)])
    conv = synthetic.model(1, [synthetic.conv1d(rng, 1, 4, 3), synthetic.gru(rng, 4, 4)])
    int8 = quantize_model(synthetic.model(1, [synthetic.lstm(rng, 1, 8), synthetic.dense(rng, 8, 1)]))
    for model in (feature, no_recurrence, wide, conv, int8):
        assert not specialise.specialisable(Engine(model, specialised=False).program)


def test_the_source_writes_the_table_in(rng):
    engine = Engine(per_sample_every_kind(rng), specialised=False)
    text = specialise.source(engine.program)
    assert "table[" not in text.split("def frame_program")[1]  # no table reads left in the frame program
    for kernel in ("dense(", "lstm(", "gru(", "batchnorm(", "prelu(", "activation("):
        assert kernel in text
