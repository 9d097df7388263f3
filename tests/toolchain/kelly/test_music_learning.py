"""A loose "learned something" check on real wiring and real labels: MelodyTransformer, trained briefly on
two rendered pieces, predicts the top voice of a third piece it never heard better than the mean.

Before issue 14 the melody model read only the emotion embedding and stayed at the baseline (ratio
1.009 on the corpus); with the semitone bins it must beat it. The bar is loose on purpose (0.9): this
is a deterministic smoke test of the wiring, not a quality measurement (those are in the docs)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_modules
require_modules("torch")
require_modules("librosa")
pretty_midi = require_modules("pretty_midi")

from tests.toolchain.kelly.conftest import band_midi  # noqa: E402
from toolchain.kelly.config import load_config  # noqa: E402
from toolchain.kelly.datasets.base import ModelData, pieces_to_sequences  # noqa: E402
from toolchain.kelly.datasets.music import piece_from_midi  # noqa: E402
from toolchain.kelly.training import train_model  # noqa: E402


def test_melody_model_hears_the_top_voice_of_an_unseen_piece(tmp_path):
    pieces = [piece_from_midi(pretty_midi.PrettyMIDI(str(band_midi(tmp_path / f"{i}.mid", tempo=tempo, drums=False, minor=minor))),
                              str(i), "test", max_seconds=30.0)
              for i, (tempo, minor) in enumerate([(120, False), (100, True), (140, False)])]
    config = load_config(source="synthetic", output=str(tmp_path), epochs=6, batch_size=8, seq_len=32,
                         learning_rate=2e-3, patience=6, plot=False)
    data = pieces_to_sequences("MelodyTransformer", pieces, 32, 1000, 0)
    train, validation = data.take(np.flatnonzero(data.groups != 2)), data.take(np.flatnonzero(data.groups == 2))
    _, result = train_model(ModelData("MelodyTransformer", train, validation, ["test"]), config, tmp_path / "melody")
    assert result.best_epoch > 0 and result.ratio < 0.9, result
