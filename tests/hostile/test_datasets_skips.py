"""Bad samples in real dataset layouts do not stop training: ``kelly-tc train`` skips and counts them
and its summary says how many (the loaders' own counts are tested in tests/toolchain/kelly)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import require_modules
from typer.testing import CliRunner

from toolchain.cli import app

require_modules("torch")
require_modules("librosa")
pretty_midi = require_modules("pretty_midi")

from tests.toolchain.kelly.conftest import make_deam, make_midi_trees  # noqa: E402  (the real-layout builders)

#: Planted there: DEAM -- a missing valence, a corrupt mp3, a song without audio, a 0 rating;
#: lmd_full -- a corrupt MIDI file and a MIDI file without notes.
PLANTED = {"deam": 4, "lakh": 2}


def test_training_on_datasets_with_bad_samples_goes_on_and_reports_how_many_were_skipped(tmp_path):
    datasets = tmp_path / "datasets"
    make_deam(datasets)
    make_midi_trees(datasets)
    output, config = tmp_path / "training", tmp_path / "config.json"
    config.write_text(json.dumps({"cache_dir": str(tmp_path / "cache"), "plot": False}))
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--datasets-dir", str(datasets), "--source", "datasets",
                                      "--models", "EmotionRecognizer,GroovePredictor", "--epochs", "1", "--seq-len", "8",
                                      "--output", str(output)], env={"KELLY_TC_DEBUG": "0"})
    assert result.exit_code == 0, result.stderr
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["skipped_total"] == sum(PLANTED.values())
    assert summary["models"]["EmotionRecognizer"]["skipped"] == {"deam": PLANTED["deam"]}
    assert summary["models"]["GroovePredictor"]["skipped"] == {"lakh": PLANTED["lakh"]}
    assert any("broken.mid" in reason for reason in summary["skipped_reasons"])
    assert f"skipped samples (unreadable audio, corrupt MIDI, bad annotation rows): {sum(PLANTED.values())}" in result.stdout
    for name in ("EmotionRecognizer", "GroovePredictor"):
        assert summary["models"][name]["epochs_run"] == 1
