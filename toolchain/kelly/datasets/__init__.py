"""Training data for the Kelly models: which source feeds which model, and the fallbacks.

Sources (one module each): ``deam`` (DEAM audio + static annotations), ``midi_trees`` (Lakh MIDI,
MAESTRO, Groove MIDI), ``progressions`` (chord-symbol JSON/CSV), ``corpus`` (music21's Bach chorales,
performed and rendered -- real music with no download), ``synthetic`` (learnable, seeded).

With ``source="auto"`` each model uses the public datasets found under ``datasets_dir``
(:data:`MODEL_DATASETS`); without them the corpus; without music21/pretty_midi/librosa synthetic
data. Every fallback is announced as a note.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.config import TrainConfig
from toolchain.kelly.datasets.base import ModelData, Piece, SkipCounter, Sequences, pieces_to_sequences, split
from toolchain.kelly.datasets.synthetic import synthetic_sequences
from toolchain.kelly.progress import Reporter

#: Folder names (matched case-insensitively) under --datasets-dir where each public dataset is looked for.
DATASET_DIRS = {
    "deam": ("DEAM",),
    "lakh": ("lmd_full", "lmd_matched", "lmd_aligned", "clean_midi", "lakh", "lmd"),
    "maestro": ("maestro-v3.0.0", "maestro-v2.0.0", "maestro-v1.0.0", "maestro"),
    "groove": ("groove", "groove-v1.0.0", "groove-v1.0.0-midionly"),
    "harmony": ("harmony", "progressions", "chords"),
}
#: The public datasets each model learns from, when present.
MODEL_DATASETS = {
    "EmotionRecognizer": ("deam",),
    "MelodyTransformer": ("lakh", "maestro"),
    "HarmonyPredictor": ("harmony", "lakh"),
    "DynamicsEngine": ("maestro", "lakh"),
    "GroovePredictor": ("groove", "lakh"),
}


def find_dataset(datasets_dir: str | Path | None, dataset: str) -> Path | None:
    if not datasets_dir or not Path(datasets_dir).is_dir():
        return None
    wanted = {name.lower() for name in DATASET_DIRS[dataset]}
    found = sorted(p for p in Path(datasets_dir).iterdir() if p.is_dir() and p.name.lower() in wanted)
    return found[0] if found else None


class DataBuilder:
    """Loads each source at most once and turns it into every requested model's sequences."""

    def __init__(self, config: TrainConfig, reporter: Reporter | None = None):
        self.config = config
        self.reporter = reporter or Reporter()
        self.skips = SkipCounter()
        self._pieces: dict[str, list[Piece]] = {}
        #: The pieces behind each model's sequences (``Sequences.groups`` index this list).
        self.used: dict[str, list[Piece]] = {}

    def pieces(self, source: str) -> list[Piece]:
        if source not in self._pieces:
            self._pieces[source] = self._load(source)
        return self._pieces[source]

    def _load(self, source: str) -> list[Piece]:
        config, reporter = self.config, self.reporter
        tick = reporter.advance
        if source == "corpus":
            from toolchain.kelly.datasets.corpus import corpus_pieces

            reporter.stage("corpus: performing and rendering Bach chorales", config.corpus_pieces)
            return corpus_pieces(config.corpus_pieces, config.seed, config.max_seconds, config.cache_dir, self.skips, tick)
        root = find_dataset(config.datasets_dir, source)
        reporter.stage(f"{source}: reading {root}", None)
        if source == "deam":
            from toolchain.kelly.datasets.deam import deam_pieces

            return deam_pieces(root, config.max_files, config.max_seconds, self.skips, tick)
        if source == "harmony":
            from toolchain.kelly.datasets.progressions import progression_pieces

            return progression_pieces(root, config.max_files, config.max_seconds, self.skips, tick)
        from toolchain.kelly.datasets.midi_trees import tree_pieces

        # every model reads audio features, so every MIDI file is rendered (Groove's drums too: fluidsynth
        # plays them; the sine fallback cannot, and its silent audio teaches GroovePredictor nothing)
        return tree_pieces(root, source, config.max_files, config.max_seconds, True, self.skips, tick)

    def sequences(self, name: str) -> tuple[Sequences, list[str], list[str]]:
        """(sequences, sources used, notes) for model ``name`` under the configured source policy."""
        config, notes = self.config, []
        seq_len, max_sequences, _ = config.windows(name)
        if config.source == "datasets" and not config.datasets_dir:
            raise InputError("source 'datasets' needs --datasets-dir")
        if config.source in ("auto", "datasets") and config.datasets_dir:
            present = [d for d in MODEL_DATASETS[name] if find_dataset(config.datasets_dir, d)]
            for dataset in MODEL_DATASETS[name]:
                if dataset not in present:
                    notes.append(f"{dataset} not found under {config.datasets_dir} "
                                 f"(looked for a folder named {' or '.join(DATASET_DIRS[dataset])})")
            pieces = [p for d in present for p in self.pieces(d)]
            data = pieces_to_sequences(name, pieces, seq_len, max_sequences, config.seed)
            if data is not None:
                self.used[name] = pieces
                return data, present, notes
            if config.source == "datasets":
                raise InputError(f"no usable training data for {name}: " + "; ".join(notes or ["the datasets gave no sequences"]),
                                 file=config.datasets_dir)
        if config.source in ("auto", "corpus"):
            from toolchain.kelly.datasets.corpus import corpus_available

            if corpus_available():
                data = pieces_to_sequences(name, self.pieces("corpus"), seq_len, max_sequences, config.seed)
                if data is not None:
                    self.used[name] = self.pieces("corpus")
                    return data, ["corpus"], notes + ([f"{name}: using the music21 corpus"] if notes else [])
                notes.append(f"{name}: the corpus gave no sequences")
            elif config.source == "corpus":
                raise InputError("the corpus source needs music21, pretty_midi and librosa (pip install 'kelly-tc[audio,synth]')")
            else:
                notes.append("music21/pretty_midi/librosa not installed: no corpus")
        if config.source != "synthetic":
            notes.append(f"{name}: using synthetic data")
        factor = seq_len // config.seq_len  # synthetic data: the same frames in longer windows
        data = synthetic_sequences(name, max(config.synthetic_sequences // factor, 2), seq_len, config.seed)
        return data, ["synthetic"], notes


def load_model_data(config: TrainConfig, reporter: Reporter | None = None) -> tuple[dict[str, ModelData], SkipCounter]:
    """Train/validation data of every model in ``config.models``, and the skipped-sample counts."""
    builder = DataBuilder(config, reporter)
    result, announced = {}, set()
    for name in config.models:
        data, sources, notes = builder.sequences(name)
        for note in notes:
            if note not in announced:
                builder.reporter.note(note)
                announced.add(note)
        if len(data) < 2:
            raise InputError(f"{name}: only {len(data)} sequence(s) of {config.windows(name)[0]} frames from {'+'.join(sources)}; "
                             "need at least 2 for a validation split (lower --seq-len or add data)")
        train, validation = split(data, config.val_fraction, config.seed)
        skipped = {source: builder.skips.counts[source] for source in sources if builder.skips.counts[source]}
        used = builder.used.get(name, [])
        unseen = [used[group] for group in np.unique(validation.groups)] if used else []
        result[name] = ModelData(name, train, validation, sources, notes, skipped, unseen)
    return result, builder.skips


#: Validation sequences --auto calibrates on (``validation_samples``): enough to see each model's input range.
CALIBRATION_SEQUENCES = 8


def validation_samples(name: str, input_name: str, config: TrainConfig | None = None,
                       count: int = CALIBRATION_SEQUENCES) -> list[dict]:
    """The first ``count`` validation sequences of model ``name`` as ONNX feeds ``{input_name: [1, T, F]}``: the
    input INT8 choices are judged on (``quant.granularity``), from the same data the model was validated on
    (``config``: the training configuration; default: the default corpus)."""
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kelly-tc-calibration-") as folder:
        base = config if config is not None else TrainConfig(output=folder)
        data = load_model_data(dataclasses.replace(base, models=[name]).validate())[0][name]
    return [{input_name: np.asarray(sequence, np.float32)[None]} for sequence in data.validation.inputs[:count]]
