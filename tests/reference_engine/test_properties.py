"""Property: for random stacks (kinds, sizes, dilations, groups, activations), the engine equals the
independent float64 NumPy reference frame by frame, and running in chunks equals running frame by frame."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_engine import synthetic
from reference_engine.model import Engine
from tests.reference_engine.numpy_reference import reference_run
from toolchain.rtneural_json import model_to_json

KINDS = ("dense", "lstm", "gru", "conv1d", "batchnorm", "prelu", "activation")
ACTIVATIONS = ("", "tanh", "relu", "sigmoid", "elu")  # softmax is covered in test_kernels (it needs bounded inputs)


@st.composite
def stacks(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    size = draw(st.integers(1, 19))
    input_size, layers = size, []
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4)):
        out = draw(st.integers(1, 19))
        if kind == "dense":
            layers.append(synthetic.dense(rng, size, out, draw(st.sampled_from(ACTIVATIONS))))
        elif kind in ("lstm", "gru"):
            layers.append(getattr(synthetic, kind)(rng, size, out))
        elif kind == "conv1d":
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if size % g == 0]))
            out = out * groups
            layers.append(synthetic.conv1d(rng, size, out, draw(st.integers(1, 4)), draw(st.integers(1, 3)), groups,
                                           draw(st.sampled_from(ACTIVATIONS))))
        elif kind == "batchnorm":
            layers.append(synthetic.batchnorm(rng, size))
            out = size
        elif kind == "prelu":
            layers.append(synthetic.prelu(rng, size, shared=draw(st.booleans())))
            out = size
        else:
            layers.append(synthetic.activation(size, draw(st.sampled_from(ACTIVATIONS[1:]))))
            out = size
        size = layers[-1].out_size
    return synthetic.model(input_size, layers), seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_random_stacks_match_the_numpy_reference_frame_by_frame(stack):
    model, seed = stack
    frames = np.random.default_rng(seed).standard_normal((25, model.input_size)).astype(np.float32)
    engine = Engine(model)
    outputs = np.array([engine.forward(frame).copy() for frame in frames])
    expected = reference_run(model_to_json(model), frames)
    # float32 vs float64 through up to four layers and 25 frames of recurrence: ~1e-6 seen; 2e-5 allowed.
    np.testing.assert_allclose(outputs, expected, atol=2e-5, rtol=1e-5)
    engine.reset()
    chunked = np.vstack([engine.run(frames[:7]), engine.run(frames[7:8]), engine.run(frames[8:])])
    np.testing.assert_array_equal(chunked, outputs)
