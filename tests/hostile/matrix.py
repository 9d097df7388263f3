"""The bad-input corpus crossed with every command that reads a file of its kind.

An :class:`Invocation` is one (command, case): how to build the bad file, the command line that reads
it (good files in every other slot, every output sent into an ``out`` folder) and the expected line
``error: FILE: WHERE: reason`` (``reason`` a regular expression). docs/ERRORS.md tabulates the same.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.fixtures import refusals
from tests.hostile import corpus_checkpoints, corpus_files, corpus_onnx
from tests.hostile.support import CHECKPOINT_MODEL
from tests.toolchain.test_convert_refusals import EXPECTED as CONVERTER_REFUSALS
from toolchain.kelly.spec import MODEL_NAMES

KELLY_MODELS = MODEL_NAMES  # validate reads DIR/NAME.json for each


@dataclass(frozen=True)
class Invocation:
    command: str
    case: str
    kind: str  # onnx, json, frames, calibration, config, checkpoint, audio
    build: Callable  # (folder) -> bad path; checkpoint builders take (folder, trained_folder)
    where: str | None
    reason: str  # regular expression

    @property
    def id(self) -> str:
        return f"{self.command}-{self.case}"

    def expected_line(self, path: Path) -> str:
        """The regular expression of the whole stderr line for the bad file at ``path``."""
        folder = re.escape(str(path.parent.resolve()))  # "{folder}" in a reason: the model's folder
        reason = self.reason.replace(re.escape("{folder}"), folder).replace("{folder}", folder)
        return "error: " + ": ".join([re.escape(str(path))] + ([re.escape(self.where)] if self.where else []) + [reason])


# ------------------------------------------------------------------------------------ ONNX cases
#: Converter refusals that the quantize/prune loader meets first, with its own wording where it differs.
#: The other converter refusals are valid ONNX that those passes accept (test_quantize_and_prune_...).
QUANT_REFUSALS = {
    **{case: CONVERTER_REFUSALS[case] for case in (
        "empty_file", "random_bytes", "truncated_file", "unknown_opset", "missing_initializer", "initializer_absurd_dims",
        "external_data_outside_folder", "external_data_absolute_path", "external_data_symlink_out",
        "external_data_missing", "external_data_truncated")},
    "nan_weight": ("initializer 'W'", "contains NaN or Inf"),
    "lstm_hidden_size_contradicts_weights": ("node 'lstm' (LSTM)", "W has shape [1, 12, 2], expected [1, 20, 2] (hidden_size 5, 4 gates)"),
    "lstm_absurd_hidden_size": ("node 'lstm' (LSTM)", "W has shape [1, 12, 2], expected [1, 4000000000, 2] (hidden_size 1000000000, 4 gates)"),
}
QUANT_RUNTIME_REFUSALS = {"integer_input", "lstm_dynamic_weight"}  # onnxruntime cannot run them as declared

#: corpus_onnx cases whose quantize/prune wording differs from the converter's (None: accepted, valid ONNX).
#: ``convert`` tells JSON from ONNX by content (GuitarML / RTNeural JSON go to the JSON converter), so a
#: JSON file named ``.onnx`` gets the JSON converter's word for it.
CONVERT_ONNX_OVERRIDES = {
    "json_instead_of_onnx": (None, r"already an RTNeural model file: nothing to convert \(kelly-tc check FILE\.json checks it "
                                   r"against the reference pair it ships\)"),
}

QUANT_ONNX_OVERRIDES = {
    "inf_bias": ("initializer 'b'", r"contains NaN or Inf"),
    "gru_absurd_hidden_size": ("node 'gru' (GRU)", r"W has shape \[1, 9, 2\], expected \[1, 3000000000, 2\] \(hidden_size 1000000000, 3 gates\)"),
    "expand_bomb": ("node 'expand' (Expand)", r"computes 'W' of shape \[3, 4000000000\] \(12000000000 elements\), above the 67108864 limit"),
    "constant_of_shape_bomb": ("node 'fill' (ConstantOfShape)", r"computes 'W' of shape \[3, 4000000000\] \(12000000000 elements\), above the 67108864 limit"),
    "tile_bomb": ("node 'tile' (Tile)", r"computes 'W' of shape \[3, 4000000000\] \(12000000000 elements\), above the 67108864 limit"),
    "conv_dilation_bomb": None,
}


def onnx_invocations() -> list[Invocation]:
    found = []
    for name, (where, reason) in CONVERTER_REFUSALS.items():  # convert itself: tests/toolchain/test_convert_refusals.py
        found.append(Invocation("check", name, "onnx", getattr(refusals, name), where, re.escape(reason)))
    for command in ("quantize", "prune"):
        for name, (where, reason) in QUANT_REFUSALS.items():
            found.append(Invocation(command, name, "onnx", getattr(refusals, name), where, re.escape(reason)))
        for name in sorted(QUANT_RUNTIME_REFUSALS):
            found.append(Invocation(command, name, "onnx", getattr(refusals, name), None, r"onnxruntime failed on sample 0 \(.*\)"))
    for name, (build, where, reason) in corpus_onnx.CASES.items():
        for command in ("convert", "check"):
            found.append(Invocation(command, name, "onnx", build,
                                    *(CONVERT_ONNX_OVERRIDES.get(name, (where, reason)) if command == "convert" else (where, reason))))
        override = QUANT_ONNX_OVERRIDES.get(name, (where, reason))
        for command in ("quantize", "prune") if override else ():
            found.append(Invocation(command, name, "onnx", build, *override))
    return found


def quant_accepted_cases() -> list[str]:
    """Converter refusals that are valid ONNX for the compression passes (they write a model)."""
    return sorted(set(CONVERTER_REFUSALS) - set(QUANT_REFUSALS) - QUANT_RUNTIME_REFUSALS)


# ------------------------------------------------------------------------------------ other files
def file_invocations() -> list[Invocation]:
    found = []
    for name, (build, where, reason) in corpus_files.JSON_CASES.items():
        for command in ("check", "run", "bench", "cpp", "validate"):
            specific = corpus_files.VALIDATE_REASONS.get(name) if command == "validate" else None
            found.append(Invocation(command, name, "json", build, where, specific or reason))
    for name, (build, where, reason) in corpus_files.GRAPH_JSON_CASES.items():
        for command in ("check", "run", "bench"):  # cpp: the graph header (issue 11, graphcpp branch)
            found.append(Invocation(command, name, "json", build, where, reason))
    for name, (build, reasons) in corpus_files.FRAME_CASES.items():
        for command, reason in reasons.items():
            found.append(Invocation(command, name, "frames", build, None, reason))
    for name, (build, reason) in corpus_files.CALIBRATION_CASES.items():
        for command in ("quantize", "prune"):
            found.append(Invocation(command, name, "calibration", build, None, reason))
    for name, (build, where, reason) in corpus_files.CONFIG_CASES.items():
        found.append(Invocation("train", name, "config", build, where, reason))
    for name, (build, reason) in corpus_checkpoints.CHECKPOINT_CASES.items():
        for command in ("train", "export"):
            found.append(Invocation(command, name, "checkpoint", build, None, reason))
    for name, (build, reason) in corpus_files.AUDIO_CASES.items():
        found.append(Invocation("pipeline", name, "audio", build, None, reason))
    return found


INVOCATIONS = onnx_invocations() + file_invocations()


# ------------------------------------------------------------------------------------ command lines
def command_line(invocation: Invocation, bad: Path, good, out: Path) -> list[str]:
    """The arguments of ``kelly-tc`` reading ``bad`` in the invocation's slot (``good``: GoodFiles)."""
    command, kind = invocation.command, invocation.kind
    onnx_path = bad if kind == "onnx" else good.onnx
    json_path = bad if kind == "json" else good.json
    frames = bad if kind == "frames" else good.frames
    if command == "convert":
        return ["convert", onnx_path, "-o", out / "model.json"]
    if command == "check":
        return ["check", onnx_path, json_path, "-i", frames, "--json", out / "report.json"]
    if command == "run":
        return ["run", json_path, "-i", frames, "-o", out / "outputs.npy"]
    if command == "bench":
        return ["bench", json_path, "--frames", "50", "--warmup", "0", "--json", out / "bench.json", "--plot", out / "bench.png"]
    if command == "cpp":
        return ["cpp", json_path, "-o", out / "model.h"]
    if command == "validate":
        return ["validate", bad]  # ``bad``: a folder of five bad files (a --json report is validate's verdict, written on purpose)
    if command in ("quantize", "prune"):
        calibration = ["--calibration", bad] if kind == "calibration" else []
        options = ["--int8", "--no-compare"] if command == "quantize" else ["--no-latency"]
        return [command, onnx_path, *options, *calibration, "-o", out / "model.onnx", "--report", out / "report.json"]
    if command == "train" and kind == "config":
        return ["train", "--config", bad, "--output", out / "training"]
    if command == "train":  # ``bad`` is a training output folder with a damaged latest.ckpt
        return ["train", "--models", CHECKPOINT_MODEL, "--source", "synthetic", "--epochs", "2", "--seq-len", "8",
                "--batch-size", "16", "--resume", "--output", bad]
    if command == "export":
        return ["export", bad, "-o", out / "export", "--models", CHECKPOINT_MODEL]
    if command == "pipeline":
        return ["pipeline", "--audio", bad, "--models", good.empty, "--out", out / "pipeline"]
    raise ValueError(f"no command line for {invocation.id}")


def failing_file(invocation: Invocation, bad: Path) -> Path:
    """The file named in the error line (for checkpoints: the damaged checkpoint inside the folder)."""
    if invocation.kind == "checkpoint":
        from toolchain.kelly.checkpoint import BEST, LATEST

        return bad / CHECKPOINT_MODEL / (LATEST if invocation.command == "train" else BEST)
    return bad


def build_bad_file(invocation: Invocation, folder: Path, trained: Path | None) -> Path:
    """The bad input of ``invocation`` under ``folder`` (validate: a folder of five copies)."""
    if invocation.kind == "checkpoint":
        return invocation.build(folder, trained)
    if invocation.command != "validate":
        return invocation.build(folder)
    models = folder / "models"
    models.mkdir()
    for name in KELLY_MODELS:
        scratch = folder / f"scratch-{name}"
        scratch.mkdir()
        made = invocation.build(scratch)
        if made.exists() or made.is_symlink():
            made.rename(models / f"{name}.json")
        shutil.rmtree(scratch)
    return models


def expected_lines(invocation: Invocation, bad: Path) -> list[str]:
    if invocation.command == "validate":
        return [invocation.expected_line(bad / f"{name}.json") for name in KELLY_MODELS]
    return [invocation.expected_line(failing_file(invocation, bad))]
