"""The commands' outputs replace an existing file by rename, not by writing into it: a hard link to the
old file keeps the old content (a write in place, or a truncate-then-write, would change it)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from reference_engine import synthetic
from toolchain.cli import app
from toolchain.rtneural_json import write_model


@pytest.fixture
def model_json(tmp_path):
    rng = np.random.default_rng(37)
    path = tmp_path / "m.json"
    write_model(synthetic.model(3, [synthetic.dense(rng, 3, 5, "tanh"), synthetic.gru(rng, 5, 7)]), path)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (9, 3)).astype(np.float32))
    return path


@pytest.mark.parametrize("command,target", [
    (["run", "{m}", "--input", "{d}/x.npy", "-o", "{d}/out.npy"], "out.npy"),
    (["cpp", "{m}", "-o", "{d}/out.h"], "out.h"),
    (["bench", "{m}", "--frames", "20", "--warmup", "0", "--json", "{d}/out.json"], "out.json"),
], ids=["run", "cpp", "bench-json"])
def test_an_existing_output_is_replaced_by_rename(model_json, tmp_path, command, target):
    (tmp_path / target).write_text("old")
    os.link(tmp_path / target, tmp_path / "snapshot")
    arguments = [part.format(m=model_json, d=tmp_path) for part in command]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "snapshot").read_text() == "old"
    assert (tmp_path / target).read_bytes() != b"old"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{target}.")]  # no temporary left
