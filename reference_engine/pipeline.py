"""The five Kelly models as one streaming processor: the plugin's ``MultiModelProcessor``.

    processor = MultiModelProcessor("kelly-out/models")   # NAME.json for the five models
    processor.reset()
    outputs = processor.process_frame(features)            # float32 [224] feature frame -> dict of views
    sequences = processor.run_full_pipeline(features)      # [T, 224] -> dict of new [T, out] arrays

A feature frame is a row of ``toolchain.kelly.features.frame_features`` (the function that made the
training inputs): 128 log-mel bands | 64 semitone bins | 32 level values (``spec.FEATURE_GROUPS``).
Wiring: ``toolchain.kelly.spec.PIPELINE`` (the one source): log-mel -> EmotionRecognizer -> embedding;
semitone bins -> MelodyTransformer; [embedding, semitone bins] -> HarmonyPredictor; level ->
DynamicsEngine; [level, embedding dims 32-63] -> GroovePredictor. Models run in that order, each one frame per call with
its state kept between calls (the reference engine), so streaming a file frame by frame and
``run_full_pipeline`` on the whole file give the same outputs.

**Loading and fallbacks.** Each ``NAME.json`` goes through ``toolchain.kelly.validate.validate_file``:
it must load, map the spec's input size to its output size, and reproduce the reference pair stored
in it (what a C++ host's ``self_test()`` checks on load). A file without a reference pair is used with
a warning; a missing, unreadable, wrongly sized or tampered file is logged and replaced by its
fallback (:data:`FALLBACK_DESCRIPTIONS`), so the processor always produces all five outputs:

- EmotionRecognizer -> the neutral embedding ``encode_emotion(0, 0)`` (valence 0, arousal 0);
- MelodyTransformer -> uniform note probabilities, 1/128 for every pitch (no pitch preferred; below
  any note threshold, so the decoder plays no melody rather than an invented one);
- HarmonyPredictor -> a plain diatonic progression, I-IV-V-I in C major (C, F, G, C), each chord a
  one-hot distribution held for :data:`FALLBACK_CHORD_FRAMES` frames (2 s: one 4/4 bar at 120 bpm);
- DynamicsEngine -> neutral expression (:data:`NEUTRAL_EXPRESSION`: mezzo-forte, 120 bpm, on the grid);
- GroovePredictor -> a straight groove: no timing offsets, medium accents on the four quarter notes,
  no onsets on the other 16ths.

**No allocation per frame.** ``process_frame`` copies the frame into a buffer allocated at load time,
assembles every model's input with ``np.copyto`` between views made once, runs the engines (which
allocate nothing) and copies their outputs into the processor's output buffers. It returns the same
dict of those buffers every call: views that the next frame overwrites (copy them to keep them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.chords import class_index
from toolchain.kelly.spec import (EXPRESSION_PARAMETERS, FEATURE_SIZE, FRAME_RATE, GROOVE_STEPS, MODEL_NAMES, PIPELINE,
                                  encode_emotion, get_spec, pipeline_input)

log = logging.getLogger(__name__)

#: DynamicsEngine's fallback, in the units of ``datasets/music.py``'s measurement (each in [0, 1]).
NEUTRAL_EXPRESSION = {
    "velocity_mean": 80 / 127, "velocity_spread": 8 / 32, "velocity_max": 96 / 127, "velocity_min": 64 / 127,
    "velocity_trend": 0.5, "accent_contrast": 0.5, "note_density": 4 / 16, "articulation": 0.5,
    "timing_spread": 0.0, "timing_push": 0.5, "tempo": 120 / 240, "ioi_variation": 0.0,
    "polyphony": 4 / 8, "pitch_range": 24 / 48, "register": 60 / 127, "sustain_pedal": 0.0,
}
#: HarmonyPredictor's fallback: I-IV-V-I in C major, chord classes of ``toolchain.kelly.chords``.
FALLBACK_PROGRESSION = tuple(class_index(root, "maj") for root in (0, 5, 7, 0))
FALLBACK_CHORD_FRAMES = round(2.0 * FRAME_RATE)
#: GroovePredictor's fallback accent on the quarter-note steps (0 = velocity 64); -1 = no onset elsewhere.
QUARTER_STEPS = (0, 4, 8, 12)
FALLBACK_DESCRIPTIONS = {
    "EmotionRecognizer": "neutral embedding (valence 0, arousal 0)",
    "MelodyTransformer": "uniform note probabilities (1/128 each)",
    "HarmonyPredictor": "I-IV-V-I in C major, 2 s per chord",
    "DynamicsEngine": "neutral expression (mezzo-forte, 120 bpm, on the grid)",
    "GroovePredictor": "straight quarter notes, no timing offsets",
}


# ------------------------------------------------------------------------------------------- fallbacks
class Fallback:
    """A stand-in with the engine's streaming interface (``forward``, ``run``, ``reset``).

    Subclasses fill ``self.output`` for frame number ``self.frame`` in :meth:`_fill`; the base class
    returns a constant vector."""

    def __init__(self, name: str, values: np.ndarray):
        spec = get_spec(name)
        self.name, self.input_size, self.output_size = name, spec.input_size, spec.output_size
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.output = self.values.copy()
        self.frame = 0

    def reset(self) -> None:
        self.frame = 0

    def _fill(self) -> None:
        """Constant fallbacks keep ``self.output`` as it is."""

    def forward(self, frame: np.ndarray) -> np.ndarray:
        self._fill()
        self.frame += 1
        return self.output

    def run(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self.forward(frame).copy() for frame in frames]) if len(frames) else \
            np.zeros((0, self.output_size), np.float32)


class ProgressionFallback(Fallback):
    """HarmonyPredictor's stand-in: :data:`FALLBACK_PROGRESSION`, one-hot, in turn."""

    def __init__(self, name: str):
        super().__init__(name, np.zeros(get_spec(name).output_size, np.float32))
        self.chords = np.eye(self.output_size, dtype=np.float32)[list(FALLBACK_PROGRESSION)]

    def _fill(self) -> None:
        np.copyto(self.output, self.chords[(self.frame // FALLBACK_CHORD_FRAMES) % len(self.chords)])


def neutral_groove() -> np.ndarray:
    groove = np.zeros(2 * GROOVE_STEPS, np.float32)  # offsets 0, then accents
    groove[GROOVE_STEPS:] = -1.0
    groove[[GROOVE_STEPS + step for step in QUARTER_STEPS]] = 0.0
    return groove


def make_fallback(name: str) -> Fallback:
    """The documented stand-in for model ``name`` (see the module docstring)."""
    spec = get_spec(name)
    if name == "EmotionRecognizer":
        return Fallback(name, encode_emotion(0.0, 0.0))
    if name == "MelodyTransformer":
        return Fallback(name, np.full(spec.output_size, 1.0 / spec.output_size))
    if name == "HarmonyPredictor":
        return ProgressionFallback(name)
    if name == "DynamicsEngine":
        return Fallback(name, np.array([NEUTRAL_EXPRESSION[key] for key in EXPRESSION_PARAMETERS]))
    if name == "GroovePredictor":
        return Fallback(name, neutral_groove())
    raise InputError(f"no fallback for {name!r}")


# ------------------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class ModelStatus:
    """Where a model's outputs come from: ``"model"`` (the file at ``path``) or ``"fallback"``."""

    name: str
    source: str
    path: str
    reason: str = ""  # why the fallback is used, or a warning about the model

    def to_json(self) -> dict:
        return {"name": self.name, "source": self.source, "path": self.path, "reason": self.reason,
                "fallback": FALLBACK_DESCRIPTIONS[self.name] if self.source == "fallback" else None}


def load_stage(directory: Path, name: str, atol: float):
    """(engine or fallback, status) for ``directory/NAME.json``; never raises for a bad file."""
    from toolchain.kelly.validate import NO_REFERENCE, validate_file

    path = directory / f"{name}.json"
    spec = get_spec(name)
    verdict = validate_file(path, name, check_specs=False, atol=atol)
    problems = list(verdict.broken) + [f.message for f in verdict.failures if f.check != NO_REFERENCE]
    engine = verdict.engine
    if engine is not None and (engine.input_size, engine.output_size) != (spec.input_size, spec.output_size):
        problems.append(f"maps {engine.input_size} -> {engine.output_size}, the pipeline needs "
                        f"{spec.input_size} -> {spec.output_size}")
    if problems:
        reason = "; ".join(problems)
        log.warning("%s: %s; using the fallback: %s", path, reason, FALLBACK_DESCRIPTIONS[name])
        return make_fallback(name), ModelStatus(name, "fallback", str(path), reason)
    warning = "; ".join(f.message for f in verdict.failures)
    if warning:
        log.warning("%s: %s", path, warning)
    return engine, ModelStatus(name, "model", str(path), warning)


# ------------------------------------------------------------------------------------------- processor
class MultiModelProcessor:
    """The five models wired per ``spec.PIPELINE``, streaming one feature frame per call.

    Not thread-safe: one processor per audio thread (each engine holds its own state)."""

    def __init__(self, models_dir: str | Path, atol: float = 1e-5):
        self.models_dir = Path(models_dir)
        self.stages, self.status = {}, {}
        for name in PIPELINE:
            self.stages[name], self.status[name] = load_stage(self.models_dir, name, atol)
        self._features = np.zeros(FEATURE_SIZE, np.float32)
        self._frame_shape = (FEATURE_SIZE,)
        #: One output buffer per model (what process_frame returns, overwritten each frame).
        self.outputs = {name: np.zeros(get_spec(name).output_size, np.float32) for name in PIPELINE}
        self._inputs = {name: np.zeros(get_spec(name).input_size, np.float32) for name in PIPELINE}
        self._steps = [self._plan(name) for name in PIPELINE]

    def _plan(self, name: str):
        """(forward, input buffer, [(destination view, source view)], output buffer): made once."""
        sources = {"features": self._features, **self.outputs}
        copies, start = [], 0
        for piece in PIPELINE[name]:
            width = piece.stop - piece.start
            copies.append((self._inputs[name][start:start + width], sources[piece.source][piece.start:piece.stop]))
            start += width
        return self.stages[name].forward, self._inputs[name], tuple(copies), self.outputs[name]

    @property
    def fallbacks(self) -> list[str]:
        """Names of the models replaced by their fallback."""
        return [name for name, status in self.status.items() if status.source == "fallback"]

    def reset(self) -> None:
        """Zero every model's state (and restart the fallback progression)."""
        for stage in self.stages.values():
            stage.reset()

    def process_frame(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Run one ``[224]`` feature frame through the five models; returns views of the output buffers."""
        if type(features) is not np.ndarray or features.shape != self._frame_shape:
            raise InputError(f"expected a numpy array of shape [{FEATURE_SIZE}], got "
                             f"{list(np.shape(features)) if isinstance(features, np.ndarray) else type(features).__name__}")
        np.copyto(self._features, features)
        for forward, inputs, copies, output in self._steps:
            for destination, source in copies:
                np.copyto(destination, source)
            np.copyto(output, forward(inputs))
        return self.outputs

    def run_full_pipeline(self, features: np.ndarray, reset: bool = True) -> dict[str, np.ndarray]:
        """All five outputs for every frame of ``features [T, 224]``: a dict of new ``[T, out]`` arrays.

        Each model streams the whole sequence (``run``: one frame per step, state kept) before the next
        model starts; with no feedback in the wiring this equals calling :meth:`process_frame` per frame.
        ``reset``: start from zero state (default) or continue from the current one.
        """
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != FEATURE_SIZE or not np.all(np.isfinite(features)):
            raise InputError(f"expected finite features [frames, {FEATURE_SIZE}], got shape {list(features.shape)}")
        if reset:
            self.reset()
        values = {"features": np.ascontiguousarray(features, dtype=np.float32)}
        for name in PIPELINE:
            values[name] = self.stages[name].run(pipeline_input(name, values))
        if len(features):  # leave the last frame in the output buffers, as process_frame would
            for name in PIPELINE:
                np.copyto(self.outputs[name], values[name][-1])
        return {name: values[name] for name in PIPELINE}

    def describe(self) -> list[dict]:
        return [self.status[name].to_json() for name in MODEL_NAMES]
