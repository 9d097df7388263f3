"""Synthesize the shipped example recording: examples/example_chords.wav (+ its score, example_chords.mid).

Four bars at 120 bpm (8 s): the progression C - Am - F - G7, one chord per bar, voiced as the training
progressions are (root in octave 2, chord tones from octave 3), with a quarter-note melody of chord tones
above it. Rendered with FluidSynth and the General MIDI SoundFont that pretty_midi ships (sine waves when
pyfluidsynth/libfluidsynth are missing), mono 22,050 Hz, 16-bit PCM (~350 KB).

    python examples/make_example.py            # rewrites both files beside this script
    kelly-tc pipeline --audio examples/example_chords.wav

The MIDI holds the truth the pipeline's output can be compared with (chords per bar, melody notes).
"""
from __future__ import annotations

from pathlib import Path

import pretty_midi
import soundfile

from toolchain.atomic import atomic_path
from toolchain.kelly.chords import QUALITY_INTERVALS, parse_chord
from toolchain.kelly.features import render_midi
from toolchain.kelly.spec import SAMPLE_RATE

HERE = Path(__file__).resolve().parent
TEMPO = 120.0
PROGRESSION = ("C", "Am", "F", "G7")
#: Melody per bar: four quarter notes (MIDI pitches), chord tones of that bar.
MELODY = ((72, 76, 79, 76), (72, 69, 76, 72), (69, 72, 77, 72), (71, 74, 79, 77))


def example_midi() -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    piano, lead = pretty_midi.Instrument(program=0, name="chords"), pretty_midi.Instrument(program=0, name="melody")
    beat = 60.0 / TEMPO
    for bar, (symbol, tune) in enumerate(zip(PROGRESSION, MELODY)):
        chord = parse_chord(symbol)
        start, end = bar * 4 * beat, (bar + 1) * 4 * beat
        pitches = [36 + chord.root] + [48 + chord.root + i for i in QUALITY_INTERVALS[chord.quality]]
        piano.notes += [pretty_midi.Note(70, p, start, end) for p in pitches]
        lead.notes += [pretty_midi.Note(90, p, start + k * beat, start + (k + 0.95) * beat) for k, p in enumerate(tune)]
    midi.instruments += [piano, lead]
    return midi


def main() -> None:
    midi = example_midi()
    audio = render_midi(midi, max_seconds=midi.get_end_time() + 0.5)
    with atomic_path(HERE / "example_chords.wav", suffix=".wav") as tmp:
        soundfile.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16")
    with atomic_path(HERE / "example_chords.mid", suffix=".mid") as tmp:
        midi.write(str(tmp))
    print(f"wrote {HERE / 'example_chords.wav'} ({len(audio) / SAMPLE_RATE:.2f} s) and {HERE / 'example_chords.mid'}")


if __name__ == "__main__":
    main()
