"""The INT8 variant of RTNeural JSON: a documented kelly-tc extension for engines with int8 kernels.

Real RTNeural loads only float JSON (``kelly-tc convert`` writes that, with any quantization error
baked into the floats). ``kelly-tc convert --int8`` also writes this variant; kelly-tc's reference
engine runs it with int8 kernels. The format is RTNeural's, layer by layer, with two changes:

- the top-level object **starts with** ``"format": "kelly-tc-int8", "version": 1`` (sniffed by loaders);
- a dense, lstm, gru or conv1d entry has no ``"weights"`` but ``"weights_int8"``: the same arrays in
  the same nesting and layout (dense ``[in][out]``, lstm ``W [in][4H]``, ``U [H][4H]``, conv1d
  ``[K][in/groups][out]``, ...), where the weight matrices hold integers in -127..127 and biases stay
  floats; and ``"scales"``: one entry per array, ``null`` for a float array, else a list of float
  scales, one per column (the LAST axis: one per output unit, per gate row of an LSTM/GRU). The real
  value is ``q * scale[column]`` (symmetric, zero point 0).

A graph model (docs/GRAPH_FORMAT.md) is written as a kelly-tc graph file whose third key is
``"weights_format": "kelly-tc-int8"`` (sniffed too) and whose layer objects carry the same change; a
stack plus input skip keeps the sequential form with ``"in_skip": 1``.

``kelly-tc convert --int8`` adds ``"float_model": {"file": NAME, "sha256": HEX}``: the float JSON file
written in the same run; a reader refuses the int8 file when that file lies beside it with another
digest (:func:`check_pair`), so a pair never mixes two runs.

Because ``"weights"`` is missing, real RTNeural's parser throws on this file instead of silently
reading integers as floats. Other layer kinds are written exactly as in float JSON.

Quantization from a float layer list is per row of the canonical layout (``quant.int8``). A weight
that already is ``q * scale`` for int8 ``q`` (a model quantized by ``kelly-tc quantize``, folded to
float by the converter) gets back the same ``q``, so the INT8 JSON computes what the quantized ONNX does.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from toolchain import atomic
from toolchain.errors import InputError, KellyError
from toolchain.layers import Layer, Model, f32
from toolchain import graph_json
from toolchain.inputs import read_bytes
from toolchain.rtneural_json import MAX_JSON_BYTES, layer_from_json, layer_to_json, model_from_json, read_document

from quant.int8 import QMAX, dequantize, quantize_symmetric

FORMAT, VERSION = "kelly-tc-int8", 1
#: Top-level key of ``convert --int8``'s pair record: ``{"file": "m.json", "sha256": "..."}``.
PAIR_KEY = "float_model"
#: Per layer kind: (field of the layer record, index in RTNeural's "weights" array) of each int8 matrix.
QUANTIZED_FIELDS = {"dense": (("weight", 0),), "lstm": (("weight_ih", 0), ("weight_hh", 1)),
                    "gru": (("weight_ih", 0), ("weight_hh", 1)), "conv1d": (("weight", 0),), "conv2d": (("weight", 0),)}
SNIFF_BYTES = 256


@dataclass(eq=False)
class QuantizedArray:
    """int8 ``values`` in the canonical layout (``toolchain.layers``) and one float32 ``scale`` per row."""

    values: np.ndarray
    scale: np.ndarray

    def dequantized(self) -> np.ndarray:
        return dequantize(self.values, self.scale, 0)


@dataclass(eq=False)
class Int8Model:
    """``model``: the float layer list the int8 weights stand for (every quantized array is exactly
    ``values * scale``); ``quantized[i]``: layer ``i``'s int8 arrays by field name (empty: all float)."""

    model: Model
    quantized: list[dict[str, QuantizedArray]] = field(default_factory=list)

    @property
    def input_size(self) -> int:
        return self.model.input_size

    @property
    def output_size(self) -> int:
        return self.model.output_size

    def parameter_count(self) -> int:
        return self.model.parameter_count()


def _requantize(array: np.ndarray) -> QuantizedArray:
    """Per-row int8 of ``array``; if it already is int8 times ONE scale (a per-tensor quantized model) or times
    one scale per group of consecutive rows (``--auto``'s grouped scales), those scales are kept so the values
    come back exactly."""
    values, scale = quantize_symmetric(array, 0)
    if np.array_equal(dequantize(values, scale, 0), array):
        return QuantizedArray(values, scale)
    rows = array.shape[0]
    for group in [rows] + [g for g in range(rows // 2, 1, -1) if rows % g == 0]:  # one scale, then the largest groups
        grouped, grouped_scale = quantize_symmetric(array, 0, group)
        if np.array_equal(dequantize(grouped, grouped_scale, 0), array):
            return QuantizedArray(grouped, grouped_scale)
    return QuantizedArray(values, scale)


#: Bias fields per layer kind (``per_tensor_model`` quantizes them on request).
BIAS_FIELDS = {"dense": ("bias",), "lstm": ("bias",), "gru": ("bias_ih", "bias_hh"), "conv1d": ("bias",)}


def per_tensor_model(model: Model, biases: bool = False) -> Model:
    """``model`` with every quantizable matrix (and with ``biases`` every bias) replaced by its INT8 value with
    ONE scale per tensor -- what ``kelly-tc quantize --per-tensor [--quantize-biases]`` bakes into a model.
    ``quantize_model`` of the result finds those exact scales again, and the engine stores them compactly."""
    layers = []
    for layer in model.layers:
        names = [name for name, _ in QUANTIZED_FIELDS.get(layer.kind, ())] + list(BIAS_FIELDS.get(layer.kind, ()) if biases else ())
        fields = {}
        for name in names:
            q, scale = quantize_symmetric(getattr(layer, name), None)
            fields[name] = dequantize(q, scale, None)
        layers.append(replace(layer, **fields))
    return Model(model.input_size, layers, dict(model.metadata)).validate()


def quantize_model(model: Model) -> Int8Model:
    """The INT8 form of a float layer list: dense, lstm, gru and conv1d matrices per row."""
    model.validate()
    layers, quantized = [], []
    for layer in model.layers:
        arrays = {name: _requantize(getattr(layer, name)) for name, _ in QUANTIZED_FIELDS.get(layer.kind, ())}
        layers.append(replace(layer, **{name: q.dequantized() for name, q in arrays.items()}))
        quantized.append(arrays)
    return Int8Model(Model(model.input_size, layers, dict(model.metadata)).validate(), quantized)


# ----------------------------------------------------------------------------------------- writing
def _values_layer(layer: Layer, arrays: dict[str, QuantizedArray]) -> Layer:
    """``layer`` with its int8 values (as floats) in place of the weights, for RTNeural's layout."""
    return replace(layer, **{name: f32(q.values) for name, q in arrays.items()})


def _entry(layer: Layer, arrays: dict[str, QuantizedArray]) -> dict[str, Any]:
    """One layer object: RTNeural's entry, with ``weights_int8`` and ``scales`` for a quantized layer."""
    entry = layer_to_json(layer)
    if arrays:
        integers = layer_to_json(_values_layer(layer, arrays))["weights"]
        weights = entry.pop("weights")
        scales = [None] * len(weights)
        for name, index in QUANTIZED_FIELDS[layer.kind]:
            weights[index] = np.asarray(integers[index]).astype(np.int64).tolist()
            scales[index] = arrays[name].scale.astype(np.float64).tolist()
        entry["weights_int8"], entry["scales"] = weights, scales
    return entry


def to_json(int8_model: Int8Model) -> dict[str, Any]:
    """The INT8 document: a graph file (``"weights_format"`` marks it INT8) for a graph, else the
    sequential form (with ``"in_skip": 1`` for a stack plus input skip), per layer as described above."""
    model, quantized = int8_model.model, int8_model.quantized
    form = graph_json.output_form(model)
    if form == "graph":
        return graph_json.graph_to_json(model, lambda index, layer: _entry(layer, quantized[index]),
                                        header={"weights_format": FORMAT})
    kept = graph_json.in_skip_layers(model) if form == "in_skip" else range(len(model.layers))
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "in_shape": [None, None, int8_model.input_size]}
    document["layers"] = [_entry(model.layers[index], quantized[index]) for index in kept]
    if form == "in_skip":
        document["in_skip"] = 1
    for key, value in model.metadata.items():
        document.setdefault(key, value)
    return document


def write_int8_model(int8_model: Int8Model, path: str | Path, float_file: str | Path | None = None) -> Path:
    """Validate (the document is read back by :func:`from_json` first) and write atomically. With
    ``float_file``: record that file's name and SHA-256, so a reader can tell the int8 file belongs
    to that exact float file (``convert --int8`` writes the two as a pair)."""
    try:
        document = to_json(int8_model)
        document.pop(PAIR_KEY, None)  # a record read from another file belongs to that file only
        if float_file is not None:
            float_file = Path(float_file)
            document[PAIR_KEY] = {"file": float_file.name, "sha256": _sha256(float_file)}
        from_json(document)  # nothing is written that the reader would refuse (e.g. a zero scale)
    except KellyError as error:
        raise error.with_file(path)
    return atomic.write_json(path, document, indent=None)


def _sha256(path: Path) -> str:
    return hashlib.sha256(read_bytes(path, MAX_JSON_BYTES)).hexdigest()


def check_pair(path: str | Path, record: Any) -> None:
    """Refuse an int8 file whose recorded float file (beside it) is not the one it was written with:
    two runs writing the same pair concurrently, or the float file regenerated without ``--int8``."""
    if record is None:
        return
    if not (isinstance(record, dict) and isinstance(record.get("file"), str) and isinstance(record.get("sha256"), str)
            and record["file"] and "/" not in record["file"] and record["file"] not in (".", "..")):
        raise InputError('expected {"file": NAME, "sha256": HEX}', file=path, where=PAIR_KEY)
    sibling = Path(path).parent / record["file"]
    if not sibling.is_file():
        return  # the int8 file travels alone: nothing to compare with
    actual = _sha256(sibling)
    if actual != record["sha256"]:
        raise InputError(f"written for another version of {record['file']} (recorded sha256 {record['sha256'][:12]}..., "
                         f"the file has {actual[:12]}...): the pair comes from two different runs; rerun kelly-tc convert --int8",
                         file=path, where=PAIR_KEY)


# ----------------------------------------------------------------------------------------- reading
def is_int8_json(path: str | Path) -> bool:
    """True if ``path`` starts like an INT8 JSON file (the format key, or a graph file's ``weights_format``,
    comes within the first bytes, see above)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a FIFO would block here; the strict reader names the problem
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    return f'"{FORMAT}"'.encode() in head and b'"format"' in head


def _integers(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        array = np.asarray([])
    # min/max, not abs: abs(-2**63) overflows to itself in int64 and slipped through (found by tests/hostile/fuzz.py)
    if array.dtype.kind not in "iu" or array.ndim == 0 or array.size == 0 or array.min() < -QMAX or array.max() > QMAX:
        raise InputError(f"expected integers in -{QMAX}..{QMAX}", where=where)
    return array


def _float_entry(entry: dict, where: str) -> tuple[dict, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """The layer entry with dequantized float ``weights`` (for the strict float reader) and, by weights
    index, the int8 array and its scales."""
    weights, scales = entry.get("weights_int8"), entry.get("scales")
    if not isinstance(weights, list) or not isinstance(scales, list) or len(scales) != len(weights):
        raise InputError("needs 'weights_int8' and 'scales' arrays of the same length", where=where)
    floats, integers = list(weights), {}
    for index, (value, scale) in enumerate(zip(weights, scales)):
        if scale is None:
            continue
        array = _integers(value, f"{where}/weights_int8[{index}]")
        try:
            scale = np.asarray(scale, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):  # strings, objects, ragged lists, 9**400 (tests/hostile/fuzz.py)
            raise InputError("expected an array of numbers", where=f"{where}/scales[{index}]") from None
        if scale.ndim != 1 or scale.shape[0] != array.shape[-1] or not np.all(np.isfinite(scale)) or np.any(scale <= 0) \
                or np.any(scale > np.finfo(np.float32).max):  # would overflow float32 (found by tests/hostile/fuzz.py)
            raise InputError(f"expected {array.shape[-1]} positive finite scales (one per column)", where=f"{where}/scales[{index}]")
        scale = scale.astype(np.float32)
        integers[index] = (array, scale)
        floats[index] = (array.astype(np.float32) * scale).tolist()
    plain = {k: v for k, v in entry.items() if k not in ("weights_int8", "scales")}
    plain["weights"] = floats
    return plain, integers


def _read_entry(entry: Any, where: str, found: dict, index: int) -> Any:
    """``entry`` with float weights for the strict float reader; its int8 arrays go into ``found[index]``."""
    if not (isinstance(entry, dict) and "weights_int8" in entry):
        return entry
    kind = entry.get("type")
    if not isinstance(kind, str) or kind not in QUANTIZED_FIELDS:  # a list/dict type: unhashable (fuzz)
        raise InputError(f"layer type {kind!r:.40} has no int8 form", where=f"{where}/type")
    entry, integers = _float_entry(entry, f"{where} ({kind})")
    if sorted(integers) != sorted(i for _, i in QUANTIZED_FIELDS[kind]):
        raise InputError(f"int8 arrays at weights {sorted(integers)}, expected {[i for _, i in QUANTIZED_FIELDS[kind]]}",
                         where=f"{where} ({kind})/scales")
    found[index] = (kind, integers)
    return entry


def from_json(document: Any) -> Int8Model:
    """Build and validate an :class:`Int8Model` from a parsed INT8 JSON document (sequential, in_skip or graph)."""
    found: dict[int, tuple[str, dict]] = {}
    if graph_json.is_graph_document(document):
        if document.get("weights_format") != FORMAT:
            raise InputError(f"a float graph file, not INT8 (no \"weights_format\": \"{FORMAT}\")", where="weights_format")

        def read_layer(entry, where, in_size, index):
            return layer_from_json(_read_entry(entry, where, found, index), index, in_size, where)

        model = graph_json.graph_from_json(document, read_layer)
    else:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InputError(f"not an INT8 JSON document (no \"format\": \"{FORMAT}\")", where="format")
        if document.get("version") != VERSION:
            raise InputError(f"version {document.get('version')!r} is not the supported {VERSION}", where="version")
        entries = document.get("layers")
        if not isinstance(entries, list):
            raise InputError("missing or not an array", where="layers")
        plain = {k: v for k, v in document.items() if k not in ("format", "version")}
        plain["layers"] = [_read_entry(entry, f"layers[{index}]", found, index) for index, entry in enumerate(entries)]
        model = graph_json.with_in_skip_key(plain, model_from_json)  # every shape and value check of the float reader
    return Int8Model(model, [_canonical(*found[index], index, model) if index in found else {}
                             for index in range(len(model.layers))])


def _canonical(kind, integers, index, model) -> dict[str, QuantizedArray]:
    """The int8 arrays in the canonical layout, read through the float reader so the layouts agree."""
    layer = model.layers[index]
    entry = layer_to_json(layer)
    for position, (array, _) in integers.items():
        entry["weights"][position] = array.astype(np.float64).tolist()
    values_layer = model_from_json({"in_shape": [None, None, layer.in_size], "layers": [entry]}).layers[0]
    return {name: QuantizedArray(np.rint(getattr(values_layer, name)).astype(np.int8), integers[position][1])
            for name, position in QUANTIZED_FIELDS[kind]}


def read_int8_model(path: str | Path) -> Int8Model:
    """Load an INT8 JSON file strictly; every problem is an :class:`InputError` naming the file. A
    recorded float file beside it must be the one it was written with (:func:`check_pair`)."""
    int8_model = read_document(path, from_json)
    check_pair(path, int8_model.model.metadata.get(PAIR_KEY))
    return int8_model
