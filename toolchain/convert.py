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

