"""``kelly-tc cpp``: one self-contained C++ header for a model, on RTNeural's compile-time API.

The header holds, in its own namespace (one per model: two models of the same architecture have the
same ``ModelT`` type, so their ``load`` overloads would clash in a shared namespace):

- ``using NAME = RTNeural::ModelT<T, IN, OUT, Layer<...>, ...>`` -- every layer and activation with its
  sizes (see ``layer_code.py`` for how activations become separate entries);
- ``bool load(NAME&, const std::string& json_path)`` through RTNeural's ``ModelT::parseJson``, after
  checking the file has the layer types and sizes the type was generated for (``parseJson`` itself
  silently leaves a mismatched layer at zero) -- or, with ``embed_weights``, ``bool load(NAME&)`` that
  sets every layer from ``static const`` arrays through RTNeural's setters: no file, no JSON at run time;
- ``double self_test(NAME&)``: reset, run the reference pair stored in the model file
  (``reference_pair.py``), reset again, return the max abs error -- NaN when the file had no pair, so
  a threshold check ``self_test(m) < 1e-5`` can never pass by accident.
"""
from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain import atomic
from toolchain.cpp import graph_text
from toolchain.cpp import header_text as text_
from toolchain.cpp.cpp_text import CPP_RESERVED, comment, identifier, string_literal
from toolchain.cpp.graph_header import Form, graph_form, in_skip_form
from toolchain.graph_json import in_skip_body, output_form, read_model
from toolchain.cpp.layer_code import EMITTERS, Arrays, Emitted
from toolchain.cpp.reference_pair import reference_pair
from toolchain.errors import InputError, KellyError, UnsupportedError
from toolchain.layers import Merge, Model, layer_where

PRECISIONS = {"float": 4, "double": 8}
#: Eigen's default EIGEN_STACK_ALLOCATION_LIMIT: a fixed-size matrix above it does not compile.
EIGEN_DEFAULT_LIMIT = 128 * 1024
#: ModelT::forward recurses one template instantiation per tuple entry (modelt_detail::forward_unroll),
#: so g++'s default -ftemplate-depth (900) caps a model's entries; compile time also grows fast
#: (measured here: 256 entries 8 s, 600 entries 200 s). Refuse beyond this rather than hang a build.
MAX_COMPILE_TIME_LAYERS = 512
#: Activation-bearing kinds whose JSON ``activation`` field ModelT::parseJson reads.
ACTIVATION_KINDS = ("dense", "conv1d", "activation")
@dataclass
class HeaderInfo:
    path: Path
    name: str
    namespace: str
    types: list[str]
    embedded_values: int
    reference_frames: int
    form: str = "sequential"  # or "in_skip", "graph" (graph_json.output_form)
    merges: int = 0  # a graph's merge nodes


def default_name(path: str | Path) -> str:
    """``emotion_recognizer.json`` -> ``EmotionRecognizer`` (``Model`` prefix if it starts with a digit)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", Path(path).stem) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    return name if not name[0].isdigit() else f"Model{name}"


def default_namespace(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return snake if snake not in CPP_RESERVED and not keyword.iskeyword(snake) else f"{snake}_model"


def format_values(values: np.ndarray, scalar: str) -> str:
    """C++ literals, 8 a line. float: 9 significant digits round-trip a float32 exactly; double: the
    shortest repr of the float32 value as a double (the value RTNeural's parser reads from our JSON)."""
    items = []
    for value in np.asarray(values, dtype=np.float32).ravel().astype(np.float64).tolist():
        if scalar == "float":
            text = f"{value:.9g}"
            items.append((text if ("." in text or "e" in text) else text + ".0") + "f")
        else:
            items.append(repr(value))
    return ",\n".join("    " + ", ".join(items[i:i + 8]) for i in range(0, len(items), 8))


def emit_layers(model: Model, scalar: str, arrays: Arrays | None, file_layers: list | None = None) -> list[tuple[int, Emitted]]:
    """(first tuple index, emitted code) per layer; refuses a layer the compile-time API cannot express.
    ``file_layers``: the raw JSON layer entries the model was read from, when there is a file."""
    emitted, index = [], 0
    for position, layer in enumerate(model.layers):
        if layer.kind not in EMITTERS:
            raise UnsupportedError(f"RTNeural's compile-time API (ModelT) has no layer for {layer.kind!r}; "
                                   f"expressible kinds: {sorted(EMITTERS)}", where=layer_where(position, layer))
        entry = file_layers[position] if file_layers else None
        code = EMITTERS[layer.kind](layer, scalar, arrays, f"layer{position}", entry)
        emitted.append((index, code))
        index += len(code.types)
    if index > MAX_COMPILE_TIME_LAYERS:
        raise UnsupportedError(f"{index} compile-time layers (activations count as layers) exceed the "
                               f"{MAX_COMPILE_TIME_LAYERS} a ModelT type can nest within compilers' default template depth",
                               where="layers")
    return emitted


def eigen_guard(emitted: list[Emitted], scalar_bytes: int) -> tuple[list[str], list[str]]:
    """Lines before and after the RTNeural include. Eigen refuses fixed-size matrices above its stack
    limit; lift it (when Eigen is not yet included) or fail the build with a message saying what to do,
    instead of Eigen's cryptic static assertion."""
    largest = max(code.eigen_elements for code in emitted) * scalar_bytes
    if largest <= EIGEN_DEFAULT_LIMIT:
        return [], []
    return [
        f"// With the Eigen backend one layer holds a {largest}-byte fixed-size matrix, above Eigen's default",
        "// EIGEN_STACK_ALLOCATION_LIMIT (128 KiB): lift the limit (the model lives on the heap, see load()).",
        "#if defined(RTNEURAL_USE_EIGEN) && RTNEURAL_USE_EIGEN && !defined(EIGEN_STACK_ALLOCATION_LIMIT)",
        "#define EIGEN_STACK_ALLOCATION_LIMIT 0",
        "#endif",
    ], [
        f"#if defined(RTNEURAL_USE_EIGEN) && RTNEURAL_USE_EIGEN && EIGEN_STACK_ALLOCATION_LIMIT && EIGEN_STACK_ALLOCATION_LIMIT < {largest}",
        f'#error "this model needs EIGEN_STACK_ALLOCATION_LIMIT 0 (or >= {largest}): define it before Eigen is first included"',
        "#endif",
    ]


def _json_layer_rows(model: Model, file_layers: list | None) -> str:
    rows = []
    for position, layer in enumerate(model.layers):
        activation = string_literal(layer.activation) if layer.kind in ACTIVATION_KINDS else '"*"'
        conv = (layer.kernel_size, layer.dilation, layer.groups) if layer.kind == "conv1d" else (0, 0, 0)
        normalisation = layer.kind in ("batchnorm", "batchnorm2d")
        weights = len(file_layers[position]["weights"]) if file_layers and normalisation else (4 if normalisation else -1)
        rows.append(f'    {{{string_literal(layer.kind)}, {layer.out_size}, {activation}, {conv[0]}, {conv[1]}, {conv[2]}, {weights}}},')
    return "\n".join(rows)


def _arrays_text(arrays: Arrays) -> list[str]:
    return [f"static const scalar_type {name}[{values.size}] = {{\n{format_values(values, arrays.scalar)}\n}};\n"
            for name, values in arrays.declarations]


def _setters_text(emitted: list[tuple[int, Emitted]]) -> str:
    blocks = []
    for index, code in emitted:
        if code.setters:
            body = "\n".join(f"        {line}" for line in code.setters)
            blocks.append(f"    {{\n        auto& layer = model.get<{index}>();\n{body}\n    }}")
    return "\n".join(blocks)


def _describe(model: Model) -> str:
    parts = []
    for layer in model.layers:
        activation = getattr(layer, "activation", "")
        suffix = f", {activation}" if activation and layer.kind != "activation" else ""
        name = activation if layer.kind == "activation" else layer.kind
        parts.append(f"{name}({layer.in_size}->{layer.out_size}{suffix})")
    return ", ".join(parts)


def _banner(description: str, fields: dict, arrays: Arrays, embed_weights: bool, frames: int, source: str, header: str) -> str:
    namespace, precision = fields["namespace"], fields["scalar"]
    values = sum(a.size for n, a in arrays.declarations if not n.startswith("reference_"))
    options = f" --name {fields['name']} --namespace {namespace}" + (" --embed-weights" if embed_weights else "") + \
        (f" --precision {precision}" if precision != "float" else "")
    # The banner is // comments: file names and the layer list pass through comment(), the example path
    # through string_literal() (whose output is comment-safe too) -- see cpp_text.py (issue 17, point 7).
    return text_.BANNER.format(
        **fields, header=comment(header), options=options, layers="\n//   ".join(comment(line, 400) for line in description.split("\n//   ")),
        weights=f"{values} values compiled in (load(model))" if embed_weights else "read from the JSON file (load(model, path))",
        self_test=f"{frames} reference frames" if frames else "no reference pair in the model file (self_test returns NaN)",
        load_call=f"{namespace}::load(*model);" if embed_weights else f'{namespace}::load(*model, {string_literal(source)});  // false on failure')


def _form(model: Model, scalar: str, arrays: Arrays | None, fields: dict, file_layers: list | None) -> Form:
    """The header's form: a ModelT type (a sequential stack), a ModelT inside a class adding the input
    skip (in_skip), or a class wiring RTNeural's layers as a graph (graph_header.py)."""
    stack = model if model.is_sequential() else in_skip_body(model)
    if stack is None:
        return graph_form(model, scalar, arrays, fields, file_layers)
    emitted = emit_layers(stack, scalar, arrays, file_layers)
    json_check = text_.JSON_CHECK.format(json_layers=_json_layer_rows(stack, file_layers))
    if stack is not model:
        form = in_skip_form(stack, emitted, fields, _describe(stack))
        form.json_check = json_check + "\n" + form.json_check
        return form
    types = [t for _, code in emitted for t in code.types]
    return Form([code for _, code in emitted], text_.MODEL_TYPE.format(**fields, types=",\n".join(f"    {t}" for t in types)),
                json_check=json_check, load_json=text_.LOAD_JSON.format(**fields), setters=_setters_text(emitted),
                description=_describe(model), types=types)


def generate_header(model: Model, *, name: str, namespace: str, embed_weights: bool = False, precision: str = "float",
                    source: str = "model.json", header: str = "model.h", file_layers: list | None = None) -> str:
    """The header text for ``model`` (validated). Raises :class:`UnsupportedError` for a model the
    compile-time API cannot express, :class:`InputError` for a bad name or reference pair.
    ``file_layers`` (``raw_layers(json_path)``: a file's ``layers``, or a graph file's ``graph.nodes``)
    makes the types follow the file's own layout where RTNeural's loader depends on it, and gives a graph
    header the file's node names; without it the layout and names the writers produce are assumed."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}", where="--precision")
    identifier(name, "--name")
    identifier(namespace, "--namespace", allow_scope=True)
    model.validate()
    pair = reference_pair(model)
    arrays = Arrays(precision)
    fields = dict(name=name, namespace=namespace, scalar=precision, input_size=model.input_size, output_size=model.output_size,
                  source=comment(source))  # {source} appears in comments only (banner, class doc comments)
    form = _form(model, precision, arrays if embed_weights else None, fields, file_layers)
    before_include, after_include = eigen_guard(form.emitted, PRECISIONS[precision])
    frames = 0 if pair is None else pair[0].shape[0]
    if pair is not None:
        arrays.add("reference_input", pair[0])
        arrays.add("reference_output", pair[1])
    text = [_banner(form.description, fields, arrays, embed_weights, frames, source, header)]
    text += [*before_include, text_.INCLUDES + ("" if embed_weights else "#include <fstream>\n"), *after_include]
    if form.detail_before:
        text.append(graph_text.BACKEND_CHECK)
    text.append(text_.NAMESPACE_OPEN.format(**fields))
    if form.detail_before:
        text += ["namespace detail\n{", *form.detail_before, "} // namespace detail\n"]
    text.append(form.definition)
    text.append("namespace detail\n{")
    text.append(text_.VECTOR_HELPERS.format() if embed_weights else form.json_check)
    text.append(f"constexpr int reference_frames = {frames};\n")
    text += _arrays_text(arrays)
    text.append("} // namespace detail\n")
    text.append(text_.LOAD_EMBEDDED.format(**fields, setters=form.setters) if embed_weights else form.load_json)
    text.append((text_.SELF_TEST if frames else text_.SELF_TEST_NO_REFERENCE).format(**fields))
    text.append(text_.NAMESPACE_CLOSE.format(**fields))
    return "\n".join(text)


def raw_layers(json_path: str | Path) -> list:
    """The raw layer entries of a model file a strict reader has already accepted: ``layers`` (a
    sequential or in_skip file) or ``graph.nodes`` (a graph file)."""
    from toolchain.inputs import read_bytes
    from toolchain.rtneural_json import MAX_JSON_BYTES

    document = json.loads(read_bytes(json_path, MAX_JSON_BYTES))
    return document["graph"]["nodes"] if "graph" in document else document["layers"]


def write_header(json_path: str | Path, output: str | Path, *, name: str | None = None, namespace: str | None = None,
                 embed_weights: bool = False, precision: str = "float") -> HeaderInfo:
    """Read ``json_path`` strictly, generate its header and write it atomically to ``output``."""
    json_path, output = Path(json_path), Path(output)
    model = read_model(json_path)
    file_layers = raw_layers(json_path)
    name = name or default_name(json_path)
    namespace = namespace or default_namespace(name)
    try:
        text = generate_header(model, name=name, namespace=namespace, embed_weights=embed_weights,
                               precision=precision, source=json_path.name, header=output.name, file_layers=file_layers)
    except KellyError as error:
        raise error.with_file(json_path)
    atomic.write_text(output, text)
    pair = reference_pair(model)
    fields = dict(name=name, namespace=namespace, scalar=precision, input_size=model.input_size,
                  output_size=model.output_size, source=json_path.name)
    types = _form(model, precision, None, fields, file_layers).types
    return HeaderInfo(output, name, namespace, types, model.parameter_count() if embed_weights else 0,
                      0 if pair is None else int(pair[0].shape[0]), output_form(model),
                      sum(isinstance(layer, Merge) for layer in model.layers))
