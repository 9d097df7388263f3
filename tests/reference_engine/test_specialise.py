"""The specialised program of a small per-sample model (reference_engine/specialise.py) computes exactly what the
table program computes: the same kernels on the same views, so the outputs and the state are equal to the bit,
frame by frame and block by block. Models that are not specialised keep the table program."""
from __future__ import annotations

import numpy as np
import pytest

from quant.int8_json import quantize_model
from reference_engine import specialise, synthetic
from reference_engine.model import Engine
from toolchain.layers import Add, Concat, Model, Mul, Slice, Sub


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


def wired(layer, *inputs):
    layer.inputs = tuple(inputs)
    return layer


def stereo_graph_every_merge(rng):
    """A two-input graph with every merge row kind (concat = two COPY_INTO rows, mul, sub, slice, add): an
    LSTM and a GRU side by side, gated by a dense of both, and input feature 1 added back (an input skip)."""
    return Model(2, [
        wired(synthetic.lstm(rng, 2, 5), 0),                      # value 1
        wired(synthetic.gru(rng, 2, 3), 0),                       # 2
        wired(Concat(), 1, 2),                                    # 3 [8]
        wired(synthetic.dense(rng, 8, 5, "sigmoid"), 3),          # 4
        wired(Mul(), 1, 4),                                       # 5
        wired(Sub(), 5, 1),                                       # 6
        wired(synthetic.dense(rng, 5, 1), 6),                     # 7
        wired(Slice(start=1, size=1), 0),                         # 8
        wired(Add(), 7, 8),                                       # 9
    ]).validate()


@pytest.mark.parametrize("build", [per_sample_every_kind, stereo_rows_layout, stereo_graph_every_merge])
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
    """No table read is left, every view is bound once before the frame loop (the loop body slices nothing) and
    a linear activation costs no call."""
    engine = Engine(stereo_graph_every_merge(rng), specialised=False)
    assert specialise.specialisable(engine.program)
    text = specialise.source(engine.program)
    assert "table" not in text.split("def run_frame")[1]
    loop = text.split("for t in range(count):")[1]
    assert not any(name + "[" in loop for name in ("weights", "state", "work")), loop
    for kernel in ("dense(", "lstm(", "gru(", "merge(", "activation(3,"):
        assert kernel in loop
    assert "activation(0," not in text
    every_kind = specialise.source(Engine(per_sample_every_kind(rng), specialised=False).program)
    for kernel in ("batchnorm(", "prelu(", "activation(5,"):
        assert kernel in every_kind.split("for t in range(count):")[1]
