"""The 64 chord classes of HarmonyPredictor, and the chord-symbol parser that maps symbols onto them.

Classes (the one documented layout, used by datasets, training and the pipeline):

- ``0..59``: 12 roots x 5 qualities, ``index = 5 * root + quality`` with roots C=0, C#/Db=1, ... B=11 and
  qualities ``maj`` (0,4,7), ``min`` (0,3,7), ``7`` (0,4,7,10), ``min7`` (0,3,7,10), ``dim`` (0,3,6);
- ``60..63``: the four augmented triads. An augmented triad divides the octave into equal thirds, so
  C+ = E+ = G#+ are one pitch-class set: class ``60 + root % 4`` (C+, Db+, D+, Eb+).

Richer symbols reduce to these (the MIREX "majmin + sevenths" style of reduction): major sevenths,
sixths, added tones and sus chords -> ``maj``; minor sixths and minor-major sevenths -> ``min``;
dominant ninths, elevenths, thirteenths and altered dominants -> ``7``; minor ninths and up -> ``min7``;
half-diminished and diminished sevenths -> ``dim``. A slash bass (``C/E``, ``C:maj/3``) keeps the class
of the chord above it. ``N`` / ``X`` (no chord) have no class: :func:`parse_chord` returns ``None``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from toolchain.errors import InputError

ROOT_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
QUALITIES = ("maj", "min", "7", "min7", "dim")
QUALITY_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "min7": (0, 3, 7, 10),
                     "dim": (0, 3, 6), "aug": (0, 4, 8)}
CHORD_CLASS_COUNT = 5 * 12 + 4
NO_CHORD = ("N", "X", "NC", "N.C.")

#: Chord-symbol suffix (after the root; also Harte's ``root:quality``) -> one of QUALITIES or "aug".
SUFFIX_QUALITY: dict[str, str] = {}
for _quality, _suffixes in {
    "maj": ("", "maj", "M", "major", "5", "no3d", "6", "maj6", "M6", "add9", "add2", "add4", "2", "sus", "sus2",
            "sus4", "maj7", "M7", "Δ", "Δ7", "^", "^7", "ma7", "maj9", "M9", "maj11", "maj13", "6/9", "69", "maj7#11"),
    "min": ("m", "min", "mi", "-", "minor", "m6", "min6", "-6", "madd9", "m(add9)", "mmaj7", "m(maj7)", "minmaj7",
            "mM7", "-maj7", "m#7"),
    "7": ("7", "dom", "dom7", "9", "11", "13", "7sus", "7sus4", "9sus4", "7b9", "7#9", "7#11", "7b13", "7b5",
          "7#5", "+7", "aug7", "7alt", "alt"),
    "min7": ("m7", "min7", "mi7", "-7", "m9", "min9", "-9", "m11", "min11", "m13", "min13"),
    "dim": ("dim", "o", "°", "dim7", "o7", "°7", "m7b5", "m7-5", "-7b5", "min7b5", "ø", "ø7", "hdim", "hdim7"),
    "aug": ("aug", "+", "#5", "+5", "augmented"),
}.items():
    for _suffix in _suffixes:
        SUFFIX_QUALITY[_suffix] = _quality

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "b": -1, "♭": -1}
_ROOT = re.compile(r"([A-G])([#♯b♭]*)")
_BASS = re.compile(r"(?:[A-G][#♯b♭]*|[#b]*\d+)")


@dataclass(frozen=True)
class Chord:
    """A parsed chord symbol: its root pitch class, reduced quality, bass pitch class and class index."""

    symbol: str
    root: int
    quality: str  # one of QUALITIES or "aug"
    bass: int | None = None

    @property
    def index(self) -> int:
        return class_index(self.root, self.quality)


def class_index(root: int, quality: str) -> int:
    """The class of a chord with pitch-class ``root`` and reduced ``quality``."""
    if quality == "aug":
        return 60 + root % 4
    return 5 * (root % 12) + QUALITIES.index(quality)


def class_name(index: int) -> str:
    """A readable name of class ``index``: ``C``, ``Cm``, ``C7``, ``Cm7``, ``Cdim``, ``C+``."""
    if not 0 <= index < CHORD_CLASS_COUNT:
        raise ValueError(f"chord class {index} outside 0..{CHORD_CLASS_COUNT - 1}")
    if index >= 60:
        return ROOT_NAMES[index - 60] + "+"
    root, quality = divmod(index, 5)
    return ROOT_NAMES[root] + ("", "m", "7", "m7", "dim")[quality]


CHORD_CLASSES = tuple(class_name(i) for i in range(CHORD_CLASS_COUNT))


def class_pitch_classes(index: int) -> tuple[int, ...]:
    """The pitch classes of class ``index`` (root first)."""
    if index >= 60:
        return tuple((index - 60 + i) % 12 for i in QUALITY_INTERVALS["aug"])
    root, quality = divmod(index, 5)
    return tuple((root + i) % 12 for i in QUALITY_INTERVALS[QUALITIES[quality]])


def _pitch_class(letter: str, accidentals: str) -> int:
    return (_LETTERS[letter] + sum(_ACCIDENTALS[a] for a in accidentals)) % 12


def parse_chord(symbol: str) -> Chord | None:
    """Parse a chord symbol (``Am7``, ``Bb7``, ``F#m7b5``, ``C/E``, ``Ebmaj7``, Harte ``A:min7/b3``).

    Returns ``None`` for "no chord" symbols; raises :class:`InputError` for anything unparseable.
    """
    text = symbol.strip()
    if text.upper() in NO_CHORD:
        return None
    match = _ROOT.match(text)
    if not match:
        raise InputError(f"chord symbol {symbol!r} does not start with a root note A-G")
    root = _pitch_class(match.group(1), match.group(2))
    rest = text[match.end():]
    bass = None
    if "/" in rest and rest not in SUFFIX_QUALITY:  # "6/9" is a suffix, not a slash bass
        rest, _, bass_text = rest.rpartition("/")
        bass = _parse_bass(bass_text, root, symbol)
    quality = _suffix_quality(rest.removeprefix(":"), symbol)
    return Chord(symbol, root, quality, bass)


def _suffix_quality(suffix: str, symbol: str) -> str:
    if suffix in SUFFIX_QUALITY:
        return SUFFIX_QUALITY[suffix]
    stripped = re.sub(r"\([^)]*\)", "", suffix)  # "7(b9)", "maj7(#11)", "min7(9)": extensions in brackets
    if stripped != suffix and stripped in SUFFIX_QUALITY:
        return SUFFIX_QUALITY[stripped]
    raise InputError(f"unknown chord quality {suffix!r} in {symbol!r}")


def _parse_bass(text: str, root: int, symbol: str) -> int:
    if not _BASS.fullmatch(text):
        raise InputError(f"bad bass note {text!r} in {symbol!r}")
    if text[0] in _LETTERS:
        return _pitch_class(text[0], text[1:])
    # Harte's bass as a scale degree of the root: "/3" major third, "/b3" minor third, "/5" fifth ...
    degree_steps = (0, 2, 4, 5, 7, 9, 11)
    accidentals, digits = text.rstrip("0123456789"), text.lstrip("#b")
    return (root + degree_steps[(int(digits) - 1) % 7] + sum(_ACCIDENTALS[a] for a in accidentals)) % 12


def chord_templates() -> np.ndarray:
    """``[64, 12]`` unit-norm binary pitch-class templates, one row per class."""
    templates = np.zeros((CHORD_CLASS_COUNT, 12), np.float32)
    for index in range(CHORD_CLASS_COUNT):
        templates[index, list(class_pitch_classes(index))] = 1.0
    return templates / np.linalg.norm(templates, axis=1, keepdims=True)


def classes_from_chroma(chroma: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Label frames of a ``[T, 12]`` chroma by the best-matching template (cosine); ``-1`` where silent.

    An exact triad scores 1 against its own template and 0.87 against the seventh chords containing
    it, so a triad is never mislabelled as a seventh; ties go to the lower class index.
    """
    chroma = np.asarray(chroma, np.float32)
    norms = np.linalg.norm(chroma, axis=1)
    scores = (chroma / np.maximum(norms, floor)[:, None]) @ chord_templates().T
    labels = np.argmax(scores, axis=1).astype(np.int64)
    labels[norms <= floor] = -1
    return labels
