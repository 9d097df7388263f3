"""Tiny datasets in the real public layouts, made by the tests (pretty_midi writes the MIDI, soundfile
the audio), each with broken samples planted in it: the loaders must skip and count exactly those."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_modules

try:
    import pretty_midi
except ImportError:  # the tests that build MIDI skip themselves (see the datasets_dir fixture)
    pretty_midi = None

DEAM_CSV_DIR = "DEAM_Annotations/annotations/annotations averaged per song/song_level"


def sine_wav(path: Path, frequencies, seconds: float, level: float, sample_rate: int = 22050) -> None:
    import soundfile

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = sum(np.sin(2 * np.pi * f * t) for f in frequencies) * level / len(frequencies)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio.astype(np.float32), sample_rate)


def make_deam(root: Path) -> Path:
    """DEAM layout: songs 2 and 3 good; 4 has a missing valence, 5 a corrupt mp3, 6 no audio, 7 a 0 rating."""
    deam = root / "DEAM"
    audio = deam / "DEAM_audio" / "MEMD_audio"
    sine_wav(audio / "2.wav", (220, 277), 2.0, 0.05)
    sine_wav(audio / "3.wav", (440, 554, 659), 2.5, 0.5)
    (audio / "5.mp3").write_bytes(b"ID3 this is not an mp3 stream" * 10)
    annotations = deam / DEAM_CSV_DIR
    annotations.mkdir(parents=True)
    (annotations / "static_annotations_averaged_songs_1_2000.csv").write_text(
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
        "2, 3.1, 0.9, 5.4, 1.0\n3, 7, 1.1, 2, 0.8\n4, , 1, 5, 1\n5, 5, 1, 5, 1\n6, 5, 1, 5, 1\n7, 0, 1, 5, 1\n")
    return deam


def band_midi(path: Path, tempo: float = 120.0, drums: bool = True, minor: bool = False, velocity: int = 90) -> Path:
    """Four bars: a melody above block chords (C major or A minor), optionally a drum groove."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    beat = 60.0 / tempo
    piano, lead = pretty_midi.Instrument(0), pretty_midi.Instrument(73)
    chords = ((57, 60, 64), (53, 57, 60), (52, 55, 59), (57, 60, 64)) if minor else ((48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55))
    for bar, chord in enumerate(chords):
        piano.notes += [pretty_midi.Note(velocity, p, bar * 4 * beat, (bar + 1) * 4 * beat) for p in chord]
        for step in range(4):
            pitch = 72 + (bar + step) % 5
            lead.notes.append(pretty_midi.Note(velocity, pitch, (bar * 4 + step) * beat, (bar * 4 + step + 0.9) * beat))
    midi.instruments += [piano, lead]
    if drums:
        midi.instruments.append(drum_instrument(tempo, bars=4))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


#: The planted groove: (16th step, offset in half-steps, velocity) of each hit in every bar.
GROOVE_HITS = ((0, 0.0, 120), (4, 0.2, 70), (6, -0.4, 50), (8, 0.0, 110), (12, 0.3, 80))


def drum_instrument(tempo: float, bars: int):
    drums = pretty_midi.Instrument(0, is_drum=True)
    sixteenth = 60.0 / tempo / 4
    for bar in range(bars):
        for step, offset, velocity in GROOVE_HITS:
            start = (bar * 16 + step + offset / 2) * sixteenth
            drums.notes.append(pretty_midi.Note(velocity, 36, start, start + 0.05))
    return drums


def make_midi_trees(root: Path) -> Path:
    band_midi(root / "lmd_full" / "0" / "0a1b2c.mid")
    band_midi(root / "lmd_full" / "1" / "1d2e3f.mid", tempo=150, minor=True)
    (root / "lmd_full" / "1" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    empty = pretty_midi.PrettyMIDI()
    empty.instruments.append(pretty_midi.Instrument(0))
    empty.write(str(root / "lmd_full" / "2_empty.mid"))
    band_midi(root / "maestro-v3.0.0" / "2018" / "MIDI-Unprocessed_01.midi", tempo=90, drums=False, velocity=60)
    groove = pretty_midi.PrettyMIDI(initial_tempo=100)
    groove.instruments.append(drum_instrument(100, bars=3))
    (root / "groove" / "drummer1" / "session1").mkdir(parents=True)
    groove.write(str(root / "groove" / "drummer1" / "session1" / "1_funk_100_beat_4-4.mid"))
    return root


def make_harmony(root: Path) -> Path:
    folder = root / "harmony"
    folder.mkdir(parents=True)
    (folder / "progressions.json").write_text(json.dumps({"progressions": [
        ["C", "Am", "F", "G7"],
        {"chords": "Dm7 G7 Cmaj7 A7", "tempo": 120, "beats_per_chord": 2},
        ["C", "Hm7"],  # H is not a note name: skipped
    ]}))
    (folder / "chordonomicon.csv").write_text(
        'id,chords\n1,"<verse_1> C G Am F <chorus_1> F C G C"\n2,"Bb Eb/G Cm7 F7sus4"\n3,"C Fxyz"\n')
    return folder


@pytest.fixture(scope="session")
def datasets_dir(tmp_path_factory) -> Path:
    """One folder with every public layout: DEAM/, lmd_full/, maestro-v3.0.0/, groove/, harmony/."""
    require_modules("pretty_midi")
    require_modules("soundfile")
    root = tmp_path_factory.mktemp("datasets")
    make_deam(root)
    make_midi_trees(root)
    make_harmony(root)
    return root
