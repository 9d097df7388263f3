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
