"""GuitarML SimpleRNN JSON (model_data + state_dict) -> RTNeural JSON, and files kelly-tc does not know.

The GuitarML files are written here from real torch modules' state_dicts (as Automated-GuitarAmpModelling
saves them); the converted file is checked against torch's own float32 forward (independent of the
converter's float64 check). Tolerance 1e-5 absolute over 300 frames (float32; measured <= 1e-6)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import require_modules
from toolchain.graph_json import read_model

ATOL = 1e-5


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


def simple_rnn_file(folder, unit="LSTM", input_size=1, hidden=7, layers=1, skip=1, seed=0):
    """A GuitarML SimpleRNN file and a function computing its torch output on [F, in] frames."""
    require_modules("torch")
    import torch

    torch.manual_seed(seed)
    rec = getattr(torch.nn, unit)(input_size, hidden, num_layers=layers, batch_first=True)
    lin = torch.nn.Linear(hidden, 1)
    state = {f"rec.{k}": v.tolist() for k, v in rec.state_dict().items()} | {f"lin.{k}": v.tolist() for k, v in lin.state_dict().items()}
    document = {"model_data": {"model": "SimpleRNN", "input_size": input_size, "skip": skip, "output_size": 1, "unit_type": unit,
                               "num_layers": layers, "hidden_size": hidden, "bias_fl": True}, "state_dict": state}
    path = folder / f"{unit}{input_size}{layers}{skip}.json"
    path.write_text(json.dumps(document))

    def forward(frames):
        with torch.no_grad():
            x = torch.from_numpy(np.asarray(frames, np.float32))[None]
            y = lin(rec(x)[0]) + (x[:, :, :1] if skip else 0)
        return y[0].numpy()
    return path, forward


@pytest.mark.parametrize("unit,input_size,layers,skip", [("LSTM", 1, 1, 1), ("GRU", 1, 1, 1), ("LSTM", 3, 2, 0), ("GRU", 3, 1, 0)])
def test_simple_rnn_converts_and_matches_torch(tmp_path, unit, input_size, layers, skip):
    from reference_engine.model import load_engine
    from toolchain.check import run_engine

    source, forward = simple_rnn_file(tmp_path, unit, input_size, hidden=9, layers=layers, skip=skip)
    target = tmp_path / "out.json"
    result = invoke("convert", source, "-o", target)
    assert result.exit_code == 0, result.output
    assert "against a float64 evaluation of the source weights" in result.stdout
    document = json.loads(target.read_text())
    assert document.get("in_skip") == (1 if skip else None)
    assert [layer["type"] for layer in document["layers"]] == [unit.lower()] * layers + ["dense"]
    model = read_model(target).validate()
    assert model.input_size == input_size and model.output_size == 1
    frames = np.random.default_rng(1).uniform(-1, 1, (300, input_size)).astype(np.float32)
    np.testing.assert_allclose(run_engine(load_engine(target), frames, None), forward(frames), atol=ATOL, rtol=0)


def test_float64_check_catches_a_wrong_gate_order(tmp_path, monkeypatch):
    """The converter's own check is not a formality: a converter with PyTorch's gate order left in place fails it."""
    from toolchain import guitarml

    source, _ = simple_rnn_file(tmp_path, "GRU")
    monkeypatch.setattr(guitarml, "GRU_TORCH", guitarml.GRU_CANONICAL)  # "forget" to reorder r, z
    result = invoke("convert", source, "-o", tmp_path / "out.json")
    assert result.exit_code == 1 and "differs from a float64 evaluation of the state_dict" in result.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("change,where,reason", [
    (lambda d: d["model_data"].update(unit_type="RNN"), "model_data/unit_type",
     "unit_type 'RNN': RTNeural's recurrent layers are LSTM and GRU (a plain RNN has no RTNeural layer)"),
    (lambda d: d["model_data"].update(skip=2), "model_data/skip", "skip 2: RTNeural's in_skip adds input feature 0 only (skip 0 or 1)"),
    (lambda d: d["state_dict"].pop("lin.weight"), "state_dict/lin.weight", "missing (needed for (1, 7))"),
])
def test_refusals_are_one_line_with_exit_2(tmp_path, change, where, reason):
    source, _ = simple_rnn_file(tmp_path, "LSTM", hidden=7)
    document = json.loads(source.read_text())
    change(document)
    source.write_text(json.dumps(document))
    result = invoke("convert", source, "-o", tmp_path / "out.json")
    assert result.exit_code == 2
    assert result.stderr == f"error: {source}: {where}: {reason}\n"
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("document,looks", [
    ({"rec.weight_ih_l0": [[0.1]], "lin.bias": [0.0]}, "a PyTorch state dict (2 tensors such as 'rec.weight_ih_l0') without the model that reads it"),
    ({"version": "0.5.1", "architecture": "WaveNet", "config": {}, "weights": [0.1]}, "a NAM file (architecture 'WaveNet'): NAM models are not RTNeural files"),
    ({"clean": {"in_shape": [None, None, 1], "layers": []}, "crunch": {"in_shape": [None, None, 1], "layers": []}},
     "a dictionary of 2 RTNeural models (keys clean, crunch): extract one"),
])
def test_unknown_formats_say_what_they_look_like(tmp_path, document, looks):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(document))
    result = invoke("check", path)
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: not an RTNeural model file (no in_shape/layers): looks like {looks}\n"


def test_a_guitarml_file_read_as_rtneural_points_to_convert(tmp_path):
    source, _ = simple_rnn_file(tmp_path)
    result = invoke("check", source)
    assert result.exit_code == 2
    assert "looks like a GuitarML SimpleRNN file (model_data + state_dict): convert it with kelly-tc convert" in result.stderr
