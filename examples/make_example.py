"""Synthesize the shipped example recording: examples/example_chords.wav (+ its score, example_chords.mid).

Four bars at 120 bpm (8 s) of a small tune: the chords C | Am | F G7 | C, voiced as the training
progressions are (root in octave 2, chord tones from octave 3, piano, velocity 64), under a melody line
in octave 5 (piano, velocity 96) that moves in quarters, eighths and halves, with passing tones (the D5s)
between chord tones. Rendered with FluidSynth and the General MIDI SoundFont that pretty_midi ships (sine
waves when pyfluidsynth/libfluidsynth are missing), mono 22,050 Hz, 16-bit PCM (~370 KB).

    python examples/make_example.py            # rewrites both files beside this script
    kelly-tc pipeline --audio examples/example_chords.wav --reference examples/example_chords.mid

The MIDI is the score: instrument ``chords`` and instrument ``melody``; ``--reference`` scores the
pipeline's MIDI against it with mir_eval (melody note F1, chord accuracy).
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
#: (chord symbol, beats) in order: one chord per bar, two in the third.
CHORDS = (("C", 4), ("Am", 4), ("F", 2), ("G7", 2), ("C", 4))
#: The melody: (MIDI pitch, beats) in order, 16 beats in all.
MELODY = ((76, 1), (79, 1), (76, 0.5), (74, 0.5), (72, 1),     # C:  E G E-D C
          (69, 1), (72, 1), (76, 2),                           # Am: A C E--
          (77, 1), (81, 1), (79, 1), (77, 0.5), (74, 0.5),     # F G7: F A | G F-D
          (76, 1), (74, 1), (72, 2))                           # C:  E D C--
#: Each melody note sounds for this share of its beats (a small gap keeps the notes apart, as sung).
LEGATO = 0.95


def example_midi() -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    piano, lead = pretty_midi.Instrument(program=0, name="chords"), pretty_midi.Instrument(program=0, name="melody")
    beat = 60.0 / TEMPO
    time = 0.0
    for symbol, beats in CHORDS:
        chord = parse_chord(symbol)
        pitches = [36 + chord.root] + [48 + chord.root + i for i in QUALITY_INTERVALS[chord.quality]]
        piano.notes += [pretty_midi.Note(64, p, time, time + beats * beat) for p in pitches]
        time += beats * beat
    time = 0.0
    for pitch, beats in MELODY:
        lead.notes.append(pretty_midi.Note(96, pitch, time, time + LEGATO * beats * beat))
        time += beats * beat
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
