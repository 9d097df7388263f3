"""Model <-> file, every form: plain RTNeural JSON, RTNeural JSON with ``in_skip`` and the kelly-tc graph file.

One writer picks the form from the wiring (docs/GRAPH_DESIGN.md, docs/GRAPH_FORMAT.md):

- a path (``Model.is_sequential()``): a plain RTNeural file (``rtneural_json``);
- a path plus ``add(last, slice(input, 0, 1))`` with a 1-feature output: the same file with the top-level
  ``"in_skip": 1`` AIDA-X and aidadsp-lv2 read (RTNeural's own parser ignores the key);
- anything else: a kelly-tc graph file (``"format": "kelly-tc-graph"``), whose every ``layer`` object is
  written and read by the per-layer code of ``rtneural_json`` and whose ``in_shape``/``layers`` keys are
  strings, so RTNeural's sequential parsers refuse the file instead of loading another model.

The reader accepts the three forms and refuses everything else with ``graph.nodes[i] (name): reason``.
``layer_entry``/``layer_reader`` hooks let ``quant.int8_json`` reuse both directions for INT8 layers.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable

from toolchain.errors import InputError
from toolchain.layers import MERGE_TYPES, Add, Layer, Merge, Model, Slice
from toolchain import rtneural_json
from toolchain.rtneural_json import layer_from_json, layer_to_json, read_document

FORMAT, VERSION = "kelly-tc-graph", 1
IN_SHAPE_TEXT = "kelly-tc graph file: RTNeural's sequential parser cannot load it; use the kelly-tc header"
LAYERS_TEXT = "kelly-tc graph file: the layers are in graph.nodes"
INPUT = "input"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Reserved so that a node name stays a valid C++ member name in the generated header.
MAX_NAME = 64
MESSAGE_IN_SKIP = ("note: wrote \"in_skip\": 1 -- the output adds input feature 0 (the dry audio); RTNeural's own "
                   "parser ignores in_skip, the AIDA-X hosts (aidadsp-lv2, AIDA-X) and kelly-tc's header and engine apply it")

MESSAGE_GRAPH = ("note: wrote a kelly-tc graph file (docs/GRAPH_FORMAT.md): RTNeural's sequential parser refuses it; "
                 "kelly-tc run/check/bench run it and the header of kelly-tc cpp deploys it")


# ------------------------------------------------------------------------------------------ in_skip
def in_skip_body(model: Model) -> Model | None:
    """The sequential stack of ``model`` if ``model`` is exactly that stack plus ``add(last, slice(input, 0, 1))``
    with a 1-feature output (the AIDA-X ``in_skip`` shape; the slice may sit anywhere in the topological
    order, as exporters place it), else None."""
    kept = in_skip_layers(model)
    if kept is None:
        return None
    return Model(model.input_size, [dataclasses.replace(model.layers[i], inputs=()) for i in kept], dict(model.metadata))


def in_skip_layers(model: Model) -> list[int] | None:
    """The indices in ``model.layers`` of the stack :func:`in_skip_body` returns, or None."""
    layers, wiring = model.layers, model.wiring()
    if len(layers) < 2 or not isinstance(layers[-1], Add) or len(wiring[-1]) != 2:
        return None
    if model.input_size == 1 and 0 in wiring[-1] and wiring[-1] != (0, 0):  # x[..., :1] of a 1-feature input is x
        body = Model(model.input_size, layers[:-1])
        ok = body.is_sequential() and sum(wiring[-1]) == len(body.layers) and layers[-2].out_size == 1
        return list(range(len(layers) - 1)) if ok else None
    skips = [v for v in wiring[-1] if v >= 1 and isinstance(layers[v - 1], Slice) and wiring[v - 1] == (0,)
             and layers[v - 1].start == 0 and layers[v - 1].size == 1]
    others = [v for v in wiring[-1] if not skips or v != skips[0]]
    if not skips or len(others) != 1 or any(skips[0] in inputs for inputs in wiring[:-1]):
        return None
    removed = skips[0] - 1  # the slice's layer index

    def renumber(value: int) -> int:
        return value - 1 if value > removed + 1 else value

    kept = [index for index in range(len(layers) - 1) if index != removed]
    if any(tuple(map(renumber, wiring[index])) != (position,) for position, index in enumerate(kept)):
        return None
    if not kept or renumber(others[0]) != len(kept) or layers[kept[-1]].out_size != 1:
        return None
    return kept


def with_in_skip(body: Model) -> Model:
    """``body`` (a stack with a 1-feature output) plus the input skip: ``y = body(x) + x[0]``."""
    n = len(body.layers)
    skip = Slice(start=0, size=1, inputs=(0,), source="in_skip")
    add = Add(inputs=(n, n + 1), source="in_skip_add")
    return Model(body.input_size, list(body.layers) + [skip, add], dict(body.metadata)).validate()


# ------------------------------------------------------------------------------------------ writing
def node_names(model: Model) -> list[str]:
    """A unique identifier per layer: its sanitised ``source`` (an ONNX node name) or ``kind_index``."""
    names, taken = [], {INPUT}
    for index, layer in enumerate(model.layers):
        base = re.sub(r"[^A-Za-z0-9_]", "_", layer.source)[:MAX_NAME - 8].strip("_") or f"{layer.kind}_{index}"
        if not NAME.match(base):
            base = f"n_{base}"
        name = base if base not in taken else f"{base}_{index}"
        while name in taken:
            name = f"{name}_"
        taken.add(name)
        names.append(name)
    return names


def graph_to_json(model: Model, layer_entry: Callable[[int, Layer], dict] | None = None,
                  header: dict | None = None) -> dict[str, Any]:
    """The kelly-tc graph document of a validated ``model``; ``layer_entry(index, layer)`` writes a layer
    object (default: the RTNeural entry of ``rtneural_json.layer_to_json``)."""
    model.validate()
    layer_entry = layer_entry or (lambda index, layer: layer_to_json(layer))
    names = node_names(model)
    value_names = [INPUT] + names
    nodes = []
    for index, (layer, inputs) in enumerate(zip(model.layers, model.wiring())):
        node: dict[str, Any] = {"name": names[index], "inputs": [value_names[v] for v in inputs]}
        if isinstance(layer, Merge):
            node["op"] = layer.kind
            if isinstance(layer, Slice):
                node.update(start=int(layer.start), size=int(layer.size))
        else:
            node["layer"] = layer_entry(index, layer)
        nodes.append(node)
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, **(header or {}),
                                "in_shape": IN_SHAPE_TEXT, "layers": LAYERS_TEXT,
                                "graph": {"input": {"name": INPUT, "size": int(model.input_size)},
                                          "output": names[-1], "nodes": nodes}}
    for key, value in model.metadata.items():
        document.setdefault(key, value)
    return document


def output_form(model: Model) -> str:
    """``"sequential"``, ``"in_skip"`` or ``"graph"``: the file form :func:`model_to_json` writes."""
    model.validate()  # merge sizes are known from here on
    if model.is_sequential():
        return "sequential"
    return "in_skip" if in_skip_body(model) is not None else "graph"


def model_to_json(model: Model) -> dict[str, Any]:
    model.validate()
    form = output_form(model)
    if form == "graph":
        return graph_to_json(model)
    if form == "sequential":
        return rtneural_json.model_to_json(model)
    document = rtneural_json.model_to_json(in_skip_body(model))
    document["in_skip"] = 1
    return document


def write_model(model: Model, path: str | Path, indent: int | None = None) -> Path:
    """Validate ``model`` and write it atomically in the form its wiring needs (see the module docstring)."""
    return rtneural_json.write_document(model_to_json, model, path, indent)


# ------------------------------------------------------------------------------------------ reading
def is_graph_document(document: Any) -> bool:
    return isinstance(document, dict) and document.get("format") == FORMAT


def _node_where(index: int, node: Any) -> str:
    name = node.get("name") if isinstance(node, dict) else None
    return f"graph.nodes[{index}] ({name})" if isinstance(name, str) else f"graph.nodes[{index}]"


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"expected an integer >= {low}, got {value!r:.40}", where=where)
    return value


def graph_from_json(document: Any, layer_reader: Callable[[Any, str, int, int], Layer] | None = None) -> Model:
    """Build and validate a :class:`Model` from a kelly-tc graph document. ``layer_reader(entry, where,
    in_size, index)`` reads a layer object (default: ``rtneural_json.layer_from_json``)."""
    layer_reader = layer_reader or (lambda entry, where, in_size, index: layer_from_json(entry, index, in_size, where))
    if not is_graph_document(document):
        raise InputError(f"not a kelly-tc graph file (no \"format\": \"{FORMAT}\")", where="format")
    if document.get("version") != VERSION:
        raise InputError(f"version {document.get('version')!r:.40} is not supported (this kelly-tc reads version {VERSION})",
                         where="version")
    graph = document.get("graph")
    if not isinstance(graph, dict):
        raise InputError("missing or not an object", where="graph")
    source = graph.get("input")
    if not isinstance(source, dict) or source.get("name") != INPUT:
        raise InputError(f"expected {{\"name\": \"{INPUT}\", \"size\": N}}", where="graph.input")
    input_size = rtneural_json._size([source.get("size")], "graph.input.size")
    nodes = graph.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise InputError("missing, empty or not an array", where="graph.nodes")
    values, sizes, layers = {INPUT: 0}, [input_size], []
    every_name = {n.get("name") for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)}
    for index, node in enumerate(nodes):
        where = _node_where(index, node)
        if not isinstance(node, dict):
            raise InputError(f"expected an object, got {type(node).__name__}", where=where)
        name = node.get("name")
        if not isinstance(name, str) or not NAME.match(name) or len(name) > MAX_NAME:
            raise InputError(f"name {name!r:.40} is not an identifier [A-Za-z_][A-Za-z0-9_]* of at most {MAX_NAME} "
                             "characters", where=f"{where}/name")
        if name in values:
            raise InputError(f"name '{name}' is {'reserved for the model input' if name == INPUT else 'used twice'}",
                             where=f"{where}/name")
        inputs = _inputs(node, where, values, every_name)
        if ("layer" in node) == ("op" in node):
            raise InputError("needs exactly one of \"layer\" (an RTNeural layer object) or \"op\" (a merge)", where=where)
        if "op" in node:
            layer = _merge(node, where, [sizes[v] for v in inputs])
        else:
            if len(inputs) != 1:
                raise InputError(f"a layer reads one value, got {len(inputs)}", where=f"{where}/inputs")
            layer = layer_reader(node["layer"], f"{where}/layer", sizes[inputs[0]], index)
        layer.inputs, layer.source = tuple(inputs), name
        layers.append(layer)
        values[name] = index + 1
        sizes.append(layer.out_size)
    if graph.get("output") != nodes[-1]["name"]:
        raise InputError(f"must name the last node '{nodes[-1]['name']}' (nodes are in topological order, one output), "
                         f"got {graph.get('output')!r:.40}", where="graph.output")
    readers = {v for layer in layers for v in layer.inputs}
    for value in range(len(layers)):
        if value not in readers:
            where = "graph.input" if value == 0 else _node_where(value - 1, nodes[value - 1])
            raise InputError("is never read (a dead branch); every value but the output must feed a node", where=where)
    metadata = {k: v for k, v in document.items() if k not in ("format", "version", "weights_format", "in_shape", "layers", "graph")}
    return Model(input_size, layers, metadata).validate()


def _inputs(node: dict, where: str, values: dict[str, int], later: set) -> list[int]:
    inputs = node.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise InputError("expected a non-empty array of value names", where=f"{where}/inputs")
    for name in inputs:
        if name not in values:
            reason = "a cycle or forward reference (nodes must be in topological order)" if name in later else "dangling"
            raise InputError(f"reads '{name:.40}': {reason}", where=f"{where}/inputs")
    return [values[name] for name in inputs]


def _merge(node: dict, where: str, sizes: list[int]) -> Merge:
    kind = node.get("op")
    if not isinstance(kind, str) or kind not in MERGE_TYPES:
        raise InputError(f"unknown op {kind!r:.40}; known: {sorted(MERGE_TYPES)}", where=f"{where}/op")
    extra = {}
    if kind == "slice":
        extra = {"start": _int(node.get("start"), f"{where}/start", 0), "size": _int(node.get("size"), f"{where}/size", 1)}
    merge = MERGE_TYPES[kind](sizes=tuple(sizes), **extra)
    merge.validate(where)
    return merge


def model_from_json(document: Any) -> Model:
    """A :class:`Model` from any parsed kelly-tc-readable document: graph file, in_skip file, plain RTNeural."""
    if is_graph_document(document):
        return graph_from_json(document)
    if isinstance(document, dict) and "format" in document:
        raise InputError(f"unknown format {document.get('format')!r:.40}; this reader knows \"{FORMAT}\" and plain "
                         "RTNeural JSON", where="format")
    return with_in_skip_key(document, rtneural_json.model_from_json)


def with_in_skip_key(document: Any, read_plain: Callable[[Any], Model]) -> Model:
    """``read_plain`` of ``document`` without its ``in_skip`` key, then the skip applied if it is 1."""
    if not isinstance(document, dict) or "in_skip" not in document:
        return read_plain(document)
    skip = document["in_skip"]
    if isinstance(skip, bool) or skip not in (0, 1):
        raise InputError(f"expected 0 or 1 (AIDA-X adds input feature 0 to the output), got {skip!r:.40}", where="in_skip")
    body = read_plain({k: v for k, v in document.items() if k != "in_skip"})
    if not skip:
        return body
    if body.output_size != 1:
        raise InputError(f"in_skip adds input feature 0 to a 1-feature output, but the model gives {body.output_size}",
                         where="in_skip")
    return with_in_skip(body)


def read_model(path: str | Path) -> Model:
    """Load a plain RTNeural, in_skip or kelly-tc graph file strictly; errors name the file."""
    return read_document(path, model_from_json)
