"""The RTNeural JSON layer: round trips, strict reading, and refusal of what RTNeural would misread."""
from __future__ import annotations

import json

import numpy as np
import pytest

from toolchain.errors import InputError
from toolchain.layers import GRU, LSTM, Activation, BatchNorm, Conv1D, Dense, Model, PRelu
from toolchain.rtneural_json import model_from_json, model_to_json, read_model, write_model


def random_model(rng) -> Model:
    """One layer of every kind, odd sizes, chained."""
    r = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return Model(5, [
        Dense(r(7, 5), r(7), activation="tanh"),
        LSTM(r(4 * 3, 7), r(4 * 3, 3), r(4 * 3)),
        GRU(r(3 * 6, 3), r(3 * 6, 6), r(3 * 6), r(3 * 6)),
        Conv1D(r(4, 3, 3), r(4), dilation=2, groups=2, activation="relu"),
        BatchNorm(r(4), r(4), r(4), np.abs(r(4)) + 0.1, epsilon=1e-3),
        PRelu(r(4), size=4),
        Activation(activation="softmax", size=4),
        Dense(r(2, 4), r(2)),
    ])


def test_every_layer_kind_round_trips_exactly(rng):
    model = random_model(rng)
    again = model_from_json(json.loads(json.dumps(model_to_json(model))))
    assert [l.kind for l in again.layers] == [l.kind for l in model.layers]
    for before, after in zip(model.layers, again.layers):
        for name, array in before.arrays().items():
            np.testing.assert_array_equal(array, getattr(after, name), err_msg=f"{before.kind}.{name}")


def test_written_file_uses_rtneural_layouts(tmp_path, rng):
    model = random_model(rng)
    path = write_model(model, tmp_path / "m.json")
    document = json.loads(path.read_text())
    dense, lstm, gru, conv = document["layers"][:4]
    assert document["in_shape"] == [None, None, 5]
    assert np.array(dense["weights"][0]).shape == (5, 7)  # kernel [in][out]
    assert np.array(lstm["weights"][0]).shape == (7, 12) and np.array(lstm["weights"][2]).shape == (12,)
    assert np.array(gru["weights"][2]).shape == (2, 18)  # two bias rows, never summed
    assert np.array(conv["weights"][0]).shape == (3, 3, 4)  # [K][in/groups][out]: 6 inputs, 2 groups
    assert conv["kernel_size"] == [3] and conv["dilation"] == [2] and conv["groups"] == 2
    assert all(isinstance(layer["activation"], str) for layer in document["layers"])


def test_written_floats_read_back_bit_identical(tmp_path, rng):
    weight = rng.standard_normal((3, 2)).astype(np.float32)
    path = write_model(Model(2, [Dense(weight, np.zeros(3, np.float32))]), tmp_path / "m.json")
    np.testing.assert_array_equal(read_model(path).layers[0].weight, weight)


def test_nan_weight_is_refused_before_writing(tmp_path, rng):
    weight = rng.standard_normal((3, 2)).astype(np.float32)
    weight[1, 1] = np.nan
    with pytest.raises(InputError, match=r"layers\[0\].*weight: contains NaN"):
        write_model(Model(2, [Dense(weight, np.zeros(3, np.float32))]), tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []


def _document(**layer_overrides):
    layer = {"type": "dense", "activation": "", "shape": [None, None, 2], "weights": [[[1.0, 2.0]], [0.5, 0.5]]}
    layer.update(layer_overrides)
    return {"in_shape": [None, None, 1], "layers": [layer]}


@pytest.mark.parametrize("overrides, message", [
    ({"type": "dense2"}, r"unknown layer type 'dense2'"),
    ({"type": 3}, r"type: missing or not a string"),
    ({"activation": "linear"}, r"activation 'linear' is not one of"),
    ({"activation": "Tanh"}, r"activation 'Tanh' is not one of"),
    ({"activation": None}, r"activation None is not one of"),
    ({"shape": [None, None, 3]}, r"weights give 2 outputs but shape declares 3"),
    ({"shape": [None, None, "2"]}, r"shape: the last element must be a positive integer"),
    ({"weights": [[[1.0, "x"]], [0.5, 0.5]]}, r"weights\[0\]: expected a 2-D array of numbers"),
    ({"weights": [[[1.0, 2.0], [3.0]], [0.5, 0.5]]}, r"weights\[0\]: not a rectangular array"),
    ({"weights": [[[1.0, 2.0]], [0.5]]}, r"bias: shape \[1\] does not match the expected \[2\]"),
    ({"weights": [[[1.0, 2.0]], [0.5, 1e39]]}, r"contains NaN or Inf"),
    ({"weights": "no"}, r"weights: missing or not an array"),
])
def test_malformed_layer_is_refused_with_its_field(overrides, message):
    with pytest.raises(InputError, match=message):
        model_from_json(_document(**overrides))


def test_sizes_that_do_not_chain_are_refused():
    document = _document()
    document["in_shape"] = [None, None, 4]
    with pytest.raises(InputError, match=r"layers\[0\].*weights take 1 inputs but the previous layer gives 4"):
        model_from_json(document)


def test_batchnorm_with_three_arrays_is_refused():
    # RTNeural reads any count other than 4 as [mean, var]: a 3-array file would be silently misread.
    document = {"in_shape": [None, None, 2], "layers": [
        {"type": "batchnorm", "activation": "", "shape": [None, None, 2], "epsilon": 0.1, "weights": [[1, 1], [0, 0], [0, 0]]}]}
    with pytest.raises(InputError, match=r"expected 2 or 4 weight arrays, got 3"):
        model_from_json(document)


def test_gru_with_one_summed_bias_row_is_refused():
    document = {"in_shape": [None, None, 1], "layers": [
        {"type": "gru", "activation": "", "shape": [None, None, 1], "weights": [[[0, 0, 0]], [[0, 0, 0]], [[0, 0, 0]]]}]}
    with pytest.raises(InputError, match=r"GRU bias must be two rows"):
        model_from_json(document)


def test_rtneural_bad_lstm_is_refused(rtneural_testdata):
    path = rtneural_testdata / "models" / "bad_lstm.json"
    with pytest.raises(InputError, match=r"bad_lstm.json: layers\[0\] \(lstm\)/shape: weights give 20 outputs but shape declares 16"):
        read_model(path)


@pytest.mark.parametrize("content, message", [
    (b"", r"not a readable JSON file"),
    (b"{\"in_shape\": [null, null, NaN]}", r"NaN is not valid JSON"),
    (b"\xff\xfe garbage", r"not a readable JSON file"),
    (b"[1, 2, 3]", r"the top level must be an object"),
    (b"{\"in_shape\": [null, null, 1], \"layers\": []}", r"layers: missing, empty or not an array"),
    (b"[" * 100000, r"not a readable JSON file"),
])
def test_unreadable_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_model(path)
    assert "\n" not in caught.value.line() and str(path) in caught.value.line()


def test_files_above_the_size_limit_are_refused_before_parsing(tmp_path, monkeypatch):
    import toolchain.rtneural_json as rtneural_json

    monkeypatch.setattr(rtneural_json, "MAX_JSON_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_document()) + " " * 200)
    with pytest.raises(InputError, match=r"above the 100-byte limit"):
        read_model(path)


def test_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(InputError, match=r"nope.json: no such file"):
        read_model(tmp_path / "nope.json")
