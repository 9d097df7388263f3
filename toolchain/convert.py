"""``convert``: an ONNX file in, a validated RTNeural JSON file out -- plain, with ``in_skip``, or a kelly-tc graph
file, as the wiring needs (``toolchain.graph_json``) -- or an error and no file."""
from __future__ import annotations

import logging
from pathlib import Path

from toolchain.layers import Model
from toolchain.onnx_import import import_onnx
from toolchain.graph_json import write_model

log = logging.getLogger(__name__)


def default_json_path(onnx_path: str | Path) -> Path:
    """``MODEL.onnx`` -> ``MODEL.json`` beside it."""
    return Path(onnx_path).with_suffix(".json")


INT8_TAG = ".int8"


def output_paths(onnx_path: str | Path, json_path: str | Path | None = None, int8: bool = False) -> tuple[Path, Path | None]:
    """(float RTNeural JSON, INT8 extension JSON or None) that ``convert`` writes.

    ``MODEL.onnx`` -> ``MODEL.json`` (+ ``MODEL.int8.json`` with ``int8``). A model already named
    ``NAME.int8.onnx`` (``kelly-tc quantize``'s default output) keeps its name for the INT8 file,
    ``NAME.int8.json``, and its float JSON becomes ``NAME.int8.float.json`` -- never ``NAME.int8.int8.json``.
    An explicit ``json_path`` names the float file; the INT8 file goes beside it the same way."""
    target = Path(json_path) if json_path is not None else default_json_path(onnx_path)
    if not int8:
        return target, None
    stem = target.name[: -len(target.suffix)] if target.suffix else target.name
    if stem.endswith(INT8_TAG):
        if json_path is None:
            return target.with_name(f"{stem}.float.json"), target
        return target, target.with_name(f"{stem[: -len(INT8_TAG)]}{INT8_TAG}-weights.json")
    return target, target.with_name(f"{stem}{INT8_TAG}.json")


def convert_file(onnx_path: str | Path, json_path: str | Path | None = None) -> Model:
    """Convert ``onnx_path`` to RTNeural JSON at ``json_path`` (default: beside it) and return the model.

    The file is written atomically and only after the whole model converted and validated, so a
    refusal never leaves a file behind.
    """
    imported = import_onnx(onnx_path)
    target = Path(json_path) if json_path is not None else default_json_path(onnx_path)
    write_model(imported.model, target)
    log.info("wrote %s (%d layers, %d parameters)", target, len(imported.model.layers), imported.model.parameter_count())
    return imported.model


def convert_pair(onnx_path: str | Path, target: str | Path, int8_target: str | Path) -> Model:
    """``convert --int8``: both files validated before either is written, then written under one folder
    lock (concurrent runs into the same pair serialize); the int8 file records the float file's SHA-256
    (``quant.int8_json.check_pair``), so a reader never takes halves of two runs (issue 17, point 10)."""
    from quant.int8_json import quantize_model, write_int8_model
    from toolchain import atomic

    target, int8_target = Path(target), Path(int8_target)
    model = import_onnx(onnx_path).model
    quantized = quantize_model(model)
    with atomic.locked_folder(target.parent if target.parent.is_dir() else Path(".")):
        write_model(model, target)
        try:
            write_int8_model(quantized, int8_target, float_file=target)
        except BaseException:
            target.unlink(missing_ok=True)  # never leave half a pair
            raise
    return model


def convert_json_file(json_path: str | Path, target: str | Path | None = None) -> tuple[Model, float]:
    """Convert a third-party JSON model file (GuitarML SimpleRNN) to RTNeural JSON at ``target``; returns the
    model and its max abs error against a float64 evaluation of the source weights (``toolchain.guitarml``)."""
    from toolchain.errors import InputError
    from toolchain.guitarml import convert_guitarml, is_guitarml, looks_like
    from toolchain.rtneural_json import read_document

    json_path = Path(json_path)
    document = read_document(json_path, lambda d: d)
    if not is_guitarml(document):
        if isinstance(document, dict) and ("in_shape" in document or "layers" in document or "graph" in document):
            raise InputError("already an RTNeural model file: nothing to convert (kelly-tc check FILE.json checks it "
                             "against the reference pair it ships)", file=json_path)
        raise InputError(f"not a model format kelly-tc converts from JSON: looks like {looks_like(document)}", file=json_path)
    target = Path(target) if target is not None else json_path.with_name(f"{json_path.stem}.rtneural.json")
    if target.resolve() == json_path.resolve():
        raise InputError("the output would overwrite the input; choose another -o", file=json_path)
    return convert_guitarml(document, json_path, target)

