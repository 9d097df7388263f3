"""Layer list <-> RTNeural JSON, validated in both directions.

The JSON layouts follow ``shared/rtneural-format.md`` (RTNeural commit 1fb1f075). RTNeural's parser is
lax -- it zero-fills short kernels, reads past short biases, skips unknown layer types and segfaults on
unknown activation names -- so this module is strict: a file is only written after ``Model.validate``,
and a file is only loaded if RTNeural would read it as written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from toolchain import atomic
from toolchain.errors import InputError, KellyError
from toolchain.layers import (
    ACTIVATIONS, GRU, LSTM, MAX_LAYER_SIZE, Activation, BatchNorm, BatchNorm2D, Conv1D, Conv2D, Dense, Layer, Model, PRelu, f32,
)

#: Files above this size are refused before parsing (override with KELLY_TC_MAX_JSON_BYTES).
#: The largest Kelly model is ~10 MB as JSON; 256 MiB is far beyond any audio-thread model.
MAX_JSON_BYTES = int(os.environ.get("KELLY_TC_MAX_JSON_BYTES", 256 * 1024 * 1024))

#: JSON ``type`` names read as each layer kind (RTNeural treats time-distributed-dense as dense).
TYPE_ALIASES = {"time-distributed-dense": "dense"}

#: Top-level keys that make a file more than a plain stack (``toolchain.graph_json`` reads them).
GRAPH_KEYS = ("in_skip", "graph")


# ----------------------------------------------------------------------------------------- writing
def _shape(size: int) -> list:
    return [None, None, int(size)]


def _list(array: np.ndarray) -> list:
    # float32 -> Python float gives the shortest repr of the exact float32 value (>= 9 significant
    # digits where needed), so the C++ parser reads back the identical float.
    return np.asarray(array, dtype=np.float32).astype(np.float64).tolist()


def _shape_2d(features: int, channels: int) -> list:
    # RTNeural's conv2d layout (Keras [batch, time, features, channels]); its parser reads [2] * [3].
    return [None, None, int(features), int(channels)]


def layer_to_json(layer: Layer) -> dict[str, Any]:
    """One RTNeural layer entry (the layer is assumed validated)."""
    entry: dict[str, Any] = {"type": layer.kind, "activation": getattr(layer, "activation", ""), "shape": _shape(layer.out_size)}
    if isinstance(layer, Conv2D):  # keys as RTNeural's Keras exporter writes them (scalars)
        entry["shape"] = _shape_2d(layer.num_features_out, layer.filters_out)
        entry.update(kernel_size_time=layer.kernel_size_time, kernel_size_feature=layer.kernel_size_feature,
                     dilation=layer.dilation, strides=layer.stride, num_filters_in=layer.filters_in,
                     num_features_in=layer.num_features_in, num_filters_out=layer.filters_out,
                     padding="valid" if layer.valid_pad else "same")
        entry["weights"] = [_list(layer.weight.transpose(2, 3, 1, 0)), _list(layer.bias)]  # [Kt][Kf][in][out]
    elif isinstance(layer, BatchNorm2D):  # num_filters_in/num_features_in must be scalars: the parser casts them to int
        entry["shape"] = _shape_2d(layer.num_features, layer.channels)
        entry.update(epsilon=float(layer.epsilon), num_filters_in=layer.channels, num_features_in=layer.num_features)
        entry["weights"] = [_list(layer.gamma), _list(layer.beta), _list(layer.mean), _list(layer.var)]
    elif isinstance(layer, Dense):
        entry["weights"] = [_list(layer.weight.T), _list(layer.bias)]
    elif isinstance(layer, LSTM):
        entry["weights"] = [_list(layer.weight_ih.T), _list(layer.weight_hh.T), _list(layer.bias)]
    elif isinstance(layer, GRU):
        entry["weights"] = [_list(layer.weight_ih.T), _list(layer.weight_hh.T), [_list(layer.bias_ih), _list(layer.bias_hh)]]
    elif isinstance(layer, Conv1D):
        entry.update(kernel_size=[layer.kernel_size], dilation=[layer.dilation], groups=layer.groups)
        entry["weights"] = [_list(layer.weight.transpose(2, 1, 0)), _list(layer.bias)]
    elif isinstance(layer, BatchNorm):
        entry["epsilon"] = float(layer.epsilon)
        entry["weights"] = [_list(layer.gamma), _list(layer.beta), _list(layer.mean), _list(layer.var)]
    elif isinstance(layer, PRelu):
        entry["weights"] = [[_list(layer.alpha)]]
    elif isinstance(layer, Activation):
        entry["weights"] = []
    else:  # pragma: no cover - every kind is listed above
        raise TypeError(f"no JSON writer for {type(layer).__name__}")
    return entry


def model_to_json(model: Model) -> dict[str, Any]:
    model.validate()
    first = model.layers[0]
    in_shape = (_shape_2d(first.num_features_in, first.filters_in) if isinstance(first, Conv2D) else
                _shape_2d(first.num_features, first.channels) if isinstance(first, BatchNorm2D) else _shape(model.input_size))
    document = {"in_shape": in_shape, "layers": [layer_to_json(layer) for layer in model.layers]}
    for key, value in model.metadata.items():
        if key not in document:
            document[key] = value
    return document


def write_document(to_json, model: Model, path: str | Path, indent: int | None = None) -> Path:
    """``to_json(model)`` (which validates) written atomically to ``path``; an error names the file."""
    try:
        document = to_json(model)
    except KellyError as error:
        raise error.with_file(path)
    return atomic.write_json(path, document, indent=indent)


def write_model(model: Model, path: str | Path, indent: int | None = None) -> Path:
    """Validate ``model`` and write it atomically as RTNeural JSON."""
    return write_document(model_to_json, model, path, indent)


# ----------------------------------------------------------------------------------------- reading
def _array(value: Any, where: str, ndim: int) -> np.ndarray:
    """A float32 array from nested JSON lists, refusing ragged lists, strings, booleans and NaN."""
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise InputError(f"not a rectangular array of numbers ({error})", where=where) from None
    if raw.dtype.kind not in "iuf" or raw.ndim != ndim:
        kind = {"b": "booleans", "U": "strings", "O": "mixed or ragged values"}.get(raw.dtype.kind, "numbers")
        raise InputError(f"expected a {ndim}-D array of numbers, got a {raw.ndim}-D array of {kind}", where=where)
    with np.errstate(over="ignore"):  # values beyond float32 become Inf and are refused just below
        array = f32(raw)
    if not np.all(np.isfinite(array)):
        raise InputError("contains NaN or Inf (or a value outside float32 range)", where=where)
    return array


def _size(value: Any, where: str) -> int:
    """The last element of an RTNeural ``shape``/``in_shape`` array: must be a positive integer."""
    if not isinstance(value, list) or not value:
        raise InputError(f"expected an array like [null, null, N], got {value!r:.60}", where=where)
    if len(value) == 4:  # the conv2d layout [batch, time, features, channels]: RTNeural reads [2] * [3]
        features, channels = (_size([v], where) for v in value[2:])
        return _size([features * channels], where)
    size = value[-1]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError(f"the last element must be a positive integer, got {size!r:.40}", where=where)
    if size > MAX_LAYER_SIZE:  # before any reader sizes an array by it (tests/hostile/fuzz.py: an 8 GiB bias)
        raise InputError(f"size {size} outside 1..{MAX_LAYER_SIZE}", where=where)
    return size


def _int_attribute(entry: dict, key: str, where: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"expected a positive integer, got {value!r:.40}", where=f"{where}/{key}")
    return value


def _weights(entry: dict, where: str, counts: tuple[int, ...]) -> list:
    weights = entry.get("weights")
    if not isinstance(weights, list):
        raise InputError("missing or not an array", where=f"{where}/weights")
    if len(weights) not in counts:
        raise InputError(f"expected {' or '.join(map(str, counts))} weight arrays, got {len(weights)}", where=f"{where}/weights")
    return weights


def _read_dense(entry, where, in_size, out_size):
    weights = _weights(entry, where, (1, 2))
    kernel = _array(weights[0], f"{where}/weights[0]", 2)
    bias = _array(weights[1], f"{where}/weights[1]", 1) if len(weights) == 2 else np.zeros(kernel.shape[1], np.float32)
    return Dense(f32(kernel.T), bias, activation=entry.get("activation", ""))


def _read_lstm(entry, where, in_size, out_size):
    weights = _weights(entry, where, (3,))
    w, u = (_array(weights[i], f"{where}/weights[{i}]", 2) for i in (0, 1))
    return LSTM(f32(w.T), f32(u.T), _array(weights[2], f"{where}/weights[2]", 1))


def _read_gru(entry, where, in_size, out_size):
    weights = _weights(entry, where, (3,))
    w, u, bias = (_array(weights[i], f"{where}/weights[{i}]", 2) for i in (0, 1, 2))
    if bias.shape[0] != 2:
        raise InputError(f"GRU bias must be two rows [input, recurrent], got {bias.shape[0]}", where=f"{where}/weights[2]")
    return GRU(f32(w.T), f32(u.T), f32(bias[0]), f32(bias[1]))


def _read_conv1d(entry, where, in_size, out_size):
    weights = _weights(entry, where, (2,))
    kernel = _array(weights[0], f"{where}/weights[0]", 3)  # [K][in/groups][out]
    groups = _int_attribute(entry, "groups", where, default=1)
    kernel_size = _int_attribute(entry, "kernel_size", where)
    if kernel.shape[0] != kernel_size:
        raise InputError(f"kernel has {kernel.shape[0]} taps but kernel_size is {kernel_size}", where=f"{where}/weights[0]")
    return Conv1D(f32(kernel.transpose(2, 1, 0)), _array(weights[1], f"{where}/weights[1]", 1),
                  dilation=_int_attribute(entry, "dilation", where), groups=groups, activation=entry.get("activation", ""))


def _read_batchnorm(entry, where, in_size, out_size):
    weights = _weights(entry, where, (2, 4))  # RTNeural reads any other count as [mean, var]: refuse it
    arrays = [_array(w, f"{where}/weights[{i}]", 1) for i, w in enumerate(weights)]
    if len(arrays) == 2:
        arrays = [np.ones(in_size, np.float32), np.zeros(in_size, np.float32)] + arrays
    epsilon = entry.get("epsilon")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise InputError(f"expected a number, got {epsilon!r:.40}", where=f"{where}/epsilon")
    if isinstance(epsilon, int) and abs(epsilon) > 1e38:  # float() of a 400-digit integer overflows (found by tests/hostile/fuzz.py)
        raise InputError(f"epsilon {epsilon!r:.40} is out of range", where=f"{where}/epsilon")
    return BatchNorm(*arrays, epsilon=float(epsilon))


def _read_prelu(entry, where, in_size, out_size):
    weights = _weights(entry, where, (1,))
    alpha = _array(weights[0], f"{where}/weights[0]", 2)
    if alpha.shape[0] != 1:
        raise InputError(f"expected [[alpha...]], got {alpha.shape[0]} rows", where=f"{where}/weights[0]")
    return PRelu(f32(alpha[0]), size=in_size)


def _read_activation(entry, where, in_size, out_size):
    _weights(entry, where, (0,))
    return Activation(activation=entry.get("activation", ""), size=out_size)


def _read_conv2d(entry, where, in_size, out_size):
    weights = _weights(entry, where, (2,))
    kernel = _array(weights[0], f"{where}/weights[0]", 4)  # [Kt][Kf][in][out]
    declared = {key: _int_attribute(entry, key, where) for key in
                ("kernel_size_time", "kernel_size_feature", "num_filters_in", "num_filters_out")}
    for axis, key in enumerate(declared):
        if kernel.shape[axis] != declared[key]:
            raise InputError(f"kernel axis {axis} has {kernel.shape[axis]} entries but {key} is {declared[key]}", where=f"{where}/weights[0]")
    padding = entry.get("padding")
    if padding not in ("valid", "same"):  # RTNeural reads anything but "valid" as "same": refuse the ambiguity
        raise InputError(f"expected \"valid\" or \"same\", got {padding!r:.40}", where=f"{where}/padding")
    return Conv2D(f32(kernel.transpose(3, 2, 0, 1)), _array(weights[1], f"{where}/weights[1]", 1),
                  num_features_in=_int_attribute(entry, "num_features_in", where), dilation=_int_attribute(entry, "dilation", where),
                  stride=_int_attribute(entry, "strides", where), valid_pad=padding == "valid", activation=entry.get("activation", ""))


def _read_batchnorm2d(entry, where, in_size, out_size):
    for key in ("num_filters_in", "num_features_in"):  # RTNeural casts the value itself to int: [n] would throw
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"expected a positive integer (not an array: RTNeural reads it as a number), got {value!r:.40}",
                             where=f"{where}/{key}")
    plain = _read_batchnorm(entry, where, entry["num_filters_in"], out_size)
    return BatchNorm2D(plain.gamma, plain.beta, plain.mean, plain.var, num_features=entry["num_features_in"], epsilon=plain.epsilon)


READERS = {"conv2d": _read_conv2d, "batchnorm2d": _read_batchnorm2d, "dense": _read_dense, "lstm": _read_lstm, "gru": _read_gru, "conv1d": _read_conv1d,
           "batchnorm": _read_batchnorm, "prelu": _read_prelu, "activation": _read_activation}


def layer_from_json(entry: Any, index: int, in_size: int, where: str | None = None) -> Layer:
    """One RTNeural layer entry read strictly; ``where`` names it in messages (default ``layers[index]``;
    the graph reader passes ``graph.nodes[i] (name)/layer``)."""
    reads = "its input" if where else "the previous layer"
    where = where or f"layers[{index}]"
    if not isinstance(entry, dict):
        raise InputError(f"expected an object, got {type(entry).__name__}", where=where)
    kind = entry.get("type")
    if not isinstance(kind, str):
        raise InputError(f"missing or not a string: {kind!r:.40}", where=f"{where}/type")
    kind = TYPE_ALIASES.get(kind, kind)
    if kind not in READERS:
        raise InputError(f"unknown layer type {kind!r:.40} (RTNeural would silently skip it); known: {sorted(READERS)}", where=f"{where}/type")
    where = f"{where} ({kind})"
    activation = entry.get("activation", "")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise InputError(f"activation {activation!r:.40} is not one of {ACTIVATIONS} (RTNeural crashes on it)", where=f"{where}/activation")
    out_size = _size(entry.get("shape"), f"{where}/shape")
    layer = READERS[kind](entry, where, in_size, out_size)
    layer.validate(where)
    if layer.in_size != in_size:
        raise InputError(f"weights take {layer.in_size} inputs but {reads} gives {in_size}", where=where)
    if layer.out_size != out_size:
        raise InputError(f"weights give {layer.out_size} outputs but shape declares {out_size}", where=f"{where}/shape")
    return layer


def model_from_json(document: Any) -> Model:
    """Build and validate a :class:`Model` from a parsed RTNeural JSON document."""
    if not isinstance(document, dict):
        raise InputError(f"the top level must be an object, got {type(document).__name__}")
    if "in_shape" not in document and "layers" not in document:
        from toolchain.guitarml import looks_like  # (imports layers only)

        raise InputError(f"not an RTNeural model file (no in_shape/layers): looks like {looks_like(document)}")
    for key in GRAPH_KEYS:  # a graph or in_skip file read as a plain stack would compute another model
        if key in document:
            raise InputError(f"a sequential-only reader cannot apply {key!r}; read the file with toolchain.graph_json",
                             where=key)
    size = input_size = _size(document.get("in_shape"), "in_shape")
    entries = document.get("layers")
    if not isinstance(entries, list) or not entries:
        raise InputError("missing, empty or not an array", where="layers")
    layers = []
    for index, entry in enumerate(entries):
        layer = layer_from_json(entry, index, size)
        layers.append(layer)
        size = layer.out_size
    metadata = {k: v for k, v in document.items() if k not in ("in_shape", "layers")}
    return Model(input_size, layers, metadata).validate()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (RTNeural's parser rejects it)")


def read_document(path: str | Path, build):
    """Parse the JSON file ``path`` strictly (size limit, UTF-8, no NaN/Infinity) and return
    ``build(document)``; every problem, the builder's included, is an :class:`InputError` naming the file.
    (Shared by :func:`read_model` and the INT8 variant's reader, ``quant.int8_json``.)"""
    from toolchain.inputs import read_bytes

    path = Path(path)
    try:
        text = read_bytes(path, MAX_JSON_BYTES, setting="KELLY_TC_MAX_JSON_BYTES").decode("utf-8")  # regular files only, size checked first
        document = json.loads(text, parse_constant=_reject_constant)
        return build(document)
    except KellyError as error:
        raise error.with_file(path)
    except FileNotFoundError:
        raise InputError("no such file", file=path) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InputError(f"not a readable JSON file: {str(error)[:200]}", file=path) from None


def read_model(path: str | Path) -> Model:
    """Load an RTNeural JSON file strictly; every problem is an :class:`InputError` naming the file."""
    return read_document(path, model_from_json)
