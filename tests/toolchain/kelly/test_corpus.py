"""The offline real-music source: music21's Bach chorales, performed, rendered and labelled."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_modules

require_modules("music21")
require_modules("librosa")
from toolchain.kelly.datasets import corpus  # noqa: E402
from toolchain.kelly.datasets.base import SkipCounter  # noqa: E402
from toolchain.kelly.datasets.music import key_mode  # noqa: E402
from toolchain.kelly.spec import FEATURE_SIZE, FRAME_RATE  # noqa: E402


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return corpus.corpus_pieces(2, seed=0, max_seconds=12.0, cache_dir=cache, skips=SkipCounter()), cache


def test_chorales_become_pieces_with_every_stream_frame_aligned(chorales):
    pieces, _ = chorales
    assert len(pieces) == 2
    for piece in pieces:
        frames = len(piece.features)
        assert abs(frames - 12.0 * FRAME_RATE) < 2  # the first 12 s of audio
        assert piece.features.shape[1] == FEATURE_SIZE
        for stream in (piece.melody, piece.chords, piece.expression, piece.groove):
            assert abs(len(stream) - frames) <= 1
        assert (piece.melody >= 0).mean() > 0.9  # a chorale's soprano sings nearly all the time
        assert (piece.chords >= 0).mean() > 0.9
        assert -1 <= piece.emotion[0] <= 1 and -1 <= piece.emotion[1] <= 1


def test_cached_pieces_are_read_back_without_music21(chorales, monkeypatch):
    pieces, cache = chorales
    monkeypatch.setattr(corpus, "score_to_midi", lambda path: pytest.fail("the cache was not used"))
    again = corpus.corpus_pieces(2, seed=0, max_seconds=12.0, cache_dir=cache, skips=SkipCounter())
    for first, second in zip(pieces, again):
        np.testing.assert_array_equal(first.features, second.features)
        np.testing.assert_array_equal(first.chords, second.chords)
        assert first.emotion == second.emotion


def test_performance_sets_tempo_and_loudness_per_piece():
    midi = corpus.score_to_midi(corpus.chorale_paths(1)[0])
    length = midi.get_end_time()
    choices = corpus.perform(midi, np.random.default_rng(3))
    assert midi.get_end_time() == pytest.approx(length / choices["tempo_factor"], abs=0.1)
    velocities = np.array([n.velocity for inst in midi.instruments for n in inst.notes])
    assert abs(np.median(velocities) - choices["velocity"]) < 8
    assert key_mode(midi) in (-1, 1)


def test_unparseable_score_is_skipped_and_counted(tmp_path, monkeypatch):
    def broken(path):
        raise ValueError("not a score")

    monkeypatch.setattr(corpus, "score_to_midi", broken)
    skips = SkipCounter()
    assert corpus.corpus_pieces(1, seed=0, max_seconds=5.0, cache_dir=tmp_path, skips=skips) == []
    assert skips.counts["corpus"] == 1 and "not a score" in skips.reasons[0]
