"""The compressed variants of an exported model folder, for ``kelly-tc pipeline`` (issue 6 part 5).

From ``models/NAME.onnx`` (+ ``NAME.json`` with its reference pair), writes one folder per variant --
``models-int8/``, ``models-pruned/``, ``models-pruned-int8/`` -- each holding, per model, the variant's
``NAME.onnx`` (standard ONNX: QDQ for INT8, smaller dense tensors when pruned) and the ``NAME.json``
the engine runs (RTNeural JSON, or the INT8 JSON of ``quant.int8_json`` for the INT8 variants, quantized
as ``kelly-tc quantize --auto`` chooses: per tensor and int8 biases where the accuracy budget holds). The
JSON's reference pair is the float model's reference input with the *variant's* ONNX output
(onnxruntime), so ``validate`` and the pipeline's loader hold each file to its own model at float
tolerance. Each model is then checked twice with ``toolchain.check``: the JSON against its own ONNX
(conversion fidelity, must pass at ``atol``) and against the float ONNX (the compression's cost, reported).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quant import int8, int8_json, prune
from quant.onnx_graph import load_model, save_model

#: Variant name -> (folder suffix, prune?, int8?).
VARIANTS = {"int8": ("int8", False, True), "pruned": ("pruned", True, False), "pruned+int8": ("pruned-int8", True, True)}


@dataclass
class VariantFolder:
    name: str
    directory: Path
    errors: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # (None, max abs vs its own ONNX)
    costs: dict[str, float] = field(default_factory=dict)  # max abs vs the float model: the compression's accuracy cost
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the INT8 form chosen per model (--auto)


def write_variants(models_dir: Path, out: Path, names, amount: float = 0.5, atol: float = 1e-5,
                   on_model=None, samples_for=None) -> list[VariantFolder]:
    """Write and check every variant of every model in ``names`` found in ``models_dir``. ``samples_for(name,
    model)``: the calibration feeds ``--auto`` judges the INT8 form on (default: seeded random input)."""
    folders = [VariantFolder(name, Path(out) / f"models-{suffix}") for name, (suffix, _, _) in VARIANTS.items()]
    for model_name in names:
        source = Path(models_dir) / f"{model_name}.onnx"
        if not source.is_file():
            continue
        model = load_model(source)
        samples = samples_for(model_name, model) if samples_for else None
        pruned = prune.structured_prune(model, amount).model
        for folder in folders:
            _, pruned_variant, quantized = VARIANTS[folder.name]
            form = pruned if pruned_variant else model
            if quantized:
                form, chosen = auto_int8(form, samples)
                folder.notes.append(f"{folder.name} {model_name}: {chosen}")
            _write_variant(folder, model_name, form, quantized, Path(models_dir) / f"{model_name}.json", source, atol)
            if on_model:
                on_model(f"{folder.name}: {model_name}")
    return folders


def auto_int8(model, samples: list | None = None) -> tuple[object, str]:
    """``kelly-tc quantize --auto``'s form of ``model`` (per weight, one scale per tensor or per group of rows, and
    integer biases, where the error on the calibration ``samples`` stays within 1.1x of per-channel's: fewer
    engine bytes at the same accuracy budget; quant/granularity.py) and a one-line description of the choice.
    ``samples``: representative input (the model's validation sequences); default seeded random input, which
    may misjudge what a model's real input range tolerates."""
    from quant import calibration, granularity

    source = "validation input" if samples else "random input"
    samples = samples or calibration.random_samples(model)
    chosen = granularity.choose(model, samples, calibration.run(model, samples))
    return chosen.quantize(model).model, (f"INT8 --auto: {chosen.describe()} (error/signal within 1.1x of "
                                          f"per-channel's on {len(samples)} sequences of {source})")


def _write_variant(folder: VariantFolder, name: str, form, quantized: bool, float_json: Path, float_onnx: Path, atol: float):
    from toolchain.check import check_files
    from toolchain.convert import convert_file
    from toolchain.cpp.reference_pair import reference_pair, set_reference_pair
    from toolchain.rtneural_json import read_model, write_model

    onnx_path, json_path = folder.directory / f"{name}.onnx", folder.directory / f"{name}.json"
    save_model(form, onnx_path)
    converted = convert_file(onnx_path, json_path)
    pair = reference_pair(read_model(float_json)) if float_json.is_file() else None
    if pair is not None:
        set_reference_pair(converted, pair[0], _onnx_frames(onnx_path, pair[0]))
    if quantized:
        int8_json.write_int8_model(int8_json.quantize_model(converted), json_path)
    else:
        write_model(converted, json_path)
    own = check_files(onnx_path, json_path, atol=atol)
    if not own.passed:
        folder.problems.append(f"{json_path}: engine vs its own ONNX {own.worst_abs_error:.3g} > atol {atol:g}")
    folder.errors[name] = (None, own.worst_abs_error)
    # a measurement, not a check: a bound no error reaches (check refuses inf as an --atol)
    folder.costs[name] = check_files(float_onnx, json_path, atol=float(np.finfo(np.float32).max)).worst_abs_error


def _onnx_frames(onnx_path: Path, frames: np.ndarray) -> np.ndarray:
    """The ONNX model's output for ``frames [T, in]`` (onnxruntime, ONNX semantics), as ``[T, out]``."""
    from toolchain.check import reference_session, run_onnx
    from toolchain.onnx_import import import_model_proto, load_onnx

    proto = load_onnx(onnx_path)
    return run_onnx(reference_session(proto)[1], import_model_proto(proto).io, np.asarray(frames, np.float32))
