"""Engine input through the command line (the Engine API's own checks are in tests/reference_engine):
NaN and Inf frames are not refused by ``run`` -- they propagate as in RTNeural's C++, and the command
says how many output values are not finite -- while ``check`` refuses them (tests/hostile/corpus_files.py)."""
from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from toolchain.cli import app
from toolchain.rtneural_json import read_model


def test_run_streams_nan_and_inf_frames_as_ieee_arithmetic_does_and_counts_them(good, tmp_path):
    frames = np.random.default_rng(4).uniform(-1, 1, (8, 3)).astype(np.float32)
    frames[2, 1], frames[5, 0] = np.nan, np.inf
    np.save(tmp_path / "frames.npy", frames)
    result = CliRunner().invoke(app, ["run", str(good.json), "-i", str(tmp_path / "frames.npy"), "-o", str(tmp_path / "out.npy")])
    assert result.exit_code == 0, result.stderr
    outputs = np.load(tmp_path / "out.npy")
    (dense,) = read_model(good.json).layers  # the good model: tanh(x W^T + b), no state
    with np.errstate(invalid="ignore", over="ignore"):
        expected = np.tanh(frames.astype(np.float64) @ dense.weight.T.astype(np.float64) + dense.bias)
    np.testing.assert_array_equal(np.isnan(outputs), np.isnan(expected))  # the NaN frame: NaN everywhere
    assert np.isnan(outputs[2]).all() and np.isfinite(outputs[5]).all()  # Inf input saturates tanh to +-1
    np.testing.assert_allclose(outputs[~np.isnan(outputs)], expected[~np.isnan(expected)], atol=1e-6)  # float32 vs float64
    count = int(np.count_nonzero(~np.isfinite(outputs)))
    assert count == outputs.shape[1]
    assert result.stderr.strip().endswith(f"warning: {count} output values are NaN or Inf")
