"""The model-specific parts of a ``kelly-tc cpp`` header for the two non-sequential forms of a model.

- **graph** (a kelly-tc graph file): a class with RTNeural's compile-time layers as named members (the
  node names of the file), a buffer per merge, and ``forward()`` with one line per connection -- the
  wrapper RTNeural's maintainer suggests writing by hand for residual networks (RTNeural's ``microtcn``
  test, RTNeural-NAM), generated. Layers come from ``layer_code.EMITTERS``, merges from
  ``merge_code.MERGE_EMITTERS``; ``load(model, path)`` reads each node's layer object with RTNeural's
  per-layer loaders, ``load(model)`` (``--embed-weights``) sets the same members through RTNeural's setters.
- **in_skip** (a plain RTNeural file with ``"in_skip": 1``): the sequential ``ModelT`` type as ``Stack``
  inside a class that adds input feature 0 to the output, loaded by ``ModelT::parseJson``.

Both keep the sequential header's API (``NAME`` with ``reset()``, ``forward(const T*)``,
``getOutputs()``; ``load``; ``self_test``), so a plugin switches between the forms without code changes.
``header.py`` assembles the header around what :func:`graph_form` and :func:`in_skip_form` return.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from toolchain import graph_json
from toolchain.cpp.cpp_text import CPP_RESERVED, string_literal
from toolchain.cpp import graph_text as text_
from toolchain.cpp.layer_code import EMITTERS, Arrays, Emitted
from toolchain.cpp.merge_code import MERGE_EMITTERS
from toolchain.errors import InputError, UnsupportedError
from toolchain.layers import Layer, Merge, Model, Slice, layer_where

#: Names the generated class and its header already use: a node named so gets a ``_`` appended.
_CLASS_NAMES = {"input", "frame", "reset", "forward", "getOutputs", "outs", "stack", "Stack", "detail", "load",
                "self_test", "scalar_type", "input_size", "output_size", "Buffer"}


@dataclass
class Form:
    """What a header form contributes; ``header.generate_header`` puts it in place."""

    emitted: list[Emitted]  # every layer's code (the Eigen size guard reads them)
    definition: str  # the type or class NAME (after the namespace's constants)
    detail_before: list[str] = field(default_factory=list)  # detail code the definition uses
    json_check: str = ""  # detail code of load(model, path)
    load_json: str = ""  # load(model, path)
    setters: str = ""  # the body of load(model) (embedded weights)
    description: str = ""  # the banner's "Layers:" text
    types: list[str] = field(default_factory=list)  # every compile-time layer type, in order


# ------------------------------------------------------------------------------------------- in_skip
def in_skip_form(stack: Model, emitted: list[tuple[int, Emitted]], fields: dict, describe: str) -> Form:
    """The in_skip header: the stack's ModelT type (as the sequential header has it) inside a class that
    adds the skip; the loaders address the stack (``model.stack``)."""
    types = [t for _, code in emitted for t in code.types]
    definition = text_.IN_SKIP_CLASS.format(**fields, types=",\n".join(f"    {t}" for t in types))
    blocks = [f"    {{\n        auto& layer = model.stack.get<{index}>();\n" + "".join(f"        {line}\n" for line in code.setters) + "    }"
              for index, code in emitted if code.setters]
    return Form([code for _, code in emitted], definition, load_json=text_.LOAD_IN_SKIP_JSON.format(**fields),
                json_check=text_.IN_SKIP_JSON_CHECK_EXTRA.format(), setters="\n".join(blocks),
                description=f"{describe}, then + input[0] (in_skip)", types=types)


# --------------------------------------------------------------------------------------------- graph
def node_names(model: Model, file_nodes: list | None) -> list[str]:
    """The node name of every layer: the graph file's names when there is a file (the JSON loader finds
    nodes by them), else the names the graph writer gives (``graph_json.node_names``)."""
    if file_nodes is None:
        return graph_json.node_names(model)
    names = [node.get("name") if isinstance(node, dict) else None for node in file_nodes]
    for index, name in enumerate(names):  # they go into C++ string literals: only what the reader accepts
        if not isinstance(name, str) or not graph_json.NAME.match(name):
            raise InputError(f"node name {name!r:.40} is not an identifier", where=f"graph.nodes[{index}]/name")
    return names


class _Members:
    """Unique C++ member names: a node's own name where C++ allows it, else the name with ``_`` added."""

    def __init__(self, reserved: set[str]):
        self.used = set(reserved)

    def take(self, wanted: str) -> str:
        name = re.sub(r"_{2,}", "_", re.sub(r"\W", "_", wanted)) or "node"  # "__" is reserved to the implementation
        if name[0].isdigit() or (name[0] == "_" and name[1:2].isupper()):
            name = "n" + name
        if name in CPP_RESERVED:
            name += "_"
        candidate, count = name, 1
        while candidate in self.used:
            count += 1
            candidate = f"{name}_{count}"
        self.used.add(candidate)
        return candidate


def _json_node_row(name: str, inputs: list[str], layer: Layer, entry: dict | None) -> str:
    if isinstance(layer, Merge):
        start, size = (layer.start, layer.size) if isinstance(layer, Slice) else (0, 0)
        return (f'    {{{string_literal(name)}, {string_literal(",".join(inputs))}, {string_literal(layer.kind)}, "", {size}, '
                f'"*", 0, 0, 0, -1, {start}}},')
    activation = string_literal(layer.activation) if layer.kind in ("dense", "conv1d", "activation") else '"*"'
    conv = (layer.kernel_size, layer.dilation, layer.groups) if layer.kind == "conv1d" else (0, 0, 0)
    weights = len(entry["weights"]) if entry and layer.kind == "batchnorm" else (4 if layer.kind == "batchnorm" else -1)
    return (f'    {{{string_literal(name)}, {string_literal(",".join(inputs))}, "", {string_literal(layer.kind)}, {layer.out_size}, {activation}, '
            f'{conv[0]}, {conv[1]}, {conv[2]}, {weights}, 0}},')


def _describe_node(name: str, inputs: list[str], layer: Layer) -> str:
    if isinstance(layer, Slice):
        what = f"slice [{layer.start}, {layer.start + layer.size})"
    elif isinstance(layer, Merge):
        what = f"{layer.kind} -> {layer.out_size}"
    else:
        activation = getattr(layer, "activation", "")
        kind = activation if layer.kind == "activation" else layer.kind
        what = f"{kind} {layer.in_size}->{layer.out_size}" + (f", {activation}" if activation and layer.kind != "activation" else "")
    return f"{name} = {what} ({', '.join(inputs)})"


@dataclass
class _GraphClass:
    """The graph class's lines as the nodes are visited in order (members, forward(), reset(), loaders)."""

    declarations: list[str] = field(default_factory=lambda: [
        "    // The input frame, the layers and the merges' buffers, in the graph's order.",
        "    alignas(RTNEURAL_DEFAULT_ALIGNMENT) detail::Buffer<input_size> input;"])
    forward: list[str] = field(default_factory=lambda: ["detail::place<0, input_size>(input, frame);"])
    resets: list[str] = field(default_factory=lambda: ["detail::zero<input_size>(input);"])
    emitted: list[Emitted] = field(default_factory=list)
    setters: list[str] = field(default_factory=list)
    loaders: list[str] = field(default_factory=list)

    def merge(self, layer: Merge, member: str, inputs: list[str]) -> str:
        """A merge: a buffer member filled by its helper call; returns the value's expression."""
        self.declarations.append(f"    alignas(RTNEURAL_DEFAULT_ALIGNMENT) detail::Buffer<{layer.out_size}> {member};")
        self.forward += MERGE_EMITTERS[layer.kind](layer, member, inputs)
        self.resets.append(f"detail::zero<{layer.out_size}>({member});")
        return member

    def layer(self, code: Emitted, chain: list[str], source: str, index: int) -> str:
        """An RTNeural layer (and its activation: ``chain`` names a member per type); returns the value's expression."""
        self.emitted.append(code)
        for type_, part in zip(code.types, chain):
            self.declarations.append(f"    {type_} {part};")
            self.forward.append(f"{part}.forward({source});")
            self.resets.append(f"{part}.reset();")
            source = f"{part}.outs"
        if code.setters:
            self.setters.append(f"    {{\n        auto& layer = model.{chain[0]};\n"
                                + "".join(f"        {line}\n" for line in code.setters) + "    }")
        if code.loader:
            self.loaders.append(f"        {{\n            auto& layer = model.{chain[0]};\n"
                                f"            const auto& entry = nodes.at({index}).at(\"layer\");\n"
                                + "".join(f"            {line}\n" for line in code.loader) + "        }")
        return source


def _indented(lines: list[str]) -> str:
    return "\n".join(f"        {line}" for line in lines)


def graph_form(model: Model, scalar: str, arrays: Arrays | None, fields: dict, file_nodes: list | None = None) -> Form:
    """The graph header's class, loaders and check table for ``model`` (validated, not sequential)."""
    names = node_names(model, file_nodes)
    members = _Members(_CLASS_NAMES | {fields["name"]} | set(fields["namespace"].split("::")))
    graph = _GraphClass()
    values = ["input"]  # the C++ expression of every value: 0 = the input buffer, i + 1 = layers[i]'s output
    rows, description = [], []
    for index, (layer, wiring) in enumerate(zip(model.layers, model.wiring())):
        inputs = [values[v] for v in wiring]
        input_names = ["input" if v == 0 else names[v - 1] for v in wiring]
        entry = file_nodes[index].get("layer") if file_nodes is not None else None
        rows.append(_json_node_row(names[index], input_names, layer, entry))
        description.append(_describe_node(names[index], input_names, layer))
        member = members.take(names[index])
        if isinstance(layer, Merge):
            values.append(graph.merge(layer, member, inputs))
            continue
        if layer.kind not in EMITTERS:
            raise UnsupportedError(f"RTNeural's compile-time API has no layer for {layer.kind!r}; expressible kinds: "
                                   f"{sorted(EMITTERS)}", where=layer_where(index, layer))
        code = EMITTERS[layer.kind](layer, scalar, arrays, member, entry)  # arrays detail::MEMBER_FIELD
        chain = [member] + [members.take(f"{member}_{layer.activation}") for _ in code.types[1:]]
        values.append(graph.layer(code, chain, inputs[0], index))
    definition = text_.GRAPH_CLASS.format(**fields, reset=_indented(graph.resets), forward=_indented(graph.forward),
                                          output=values[-1], members="\n".join(graph.declarations))
    return Form(graph.emitted, definition, detail_before=[text_.HELPERS.format()],
                json_check=text_.GRAPH_JSON_CHECK.format(json_nodes="\n".join(rows), output_node=string_literal(names[-1])),
                load_json=text_.LOAD_GRAPH_JSON.format(**fields, loaders="\n".join(graph.loaders)),
                setters="\n".join(graph.setters), types=[t for code in graph.emitted for t in code.types],
                description=f"a graph of {len(model.layers)} nodes:\n//   " + "\n//   ".join(description))
