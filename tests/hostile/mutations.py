"""Mutators for the fuzz tests: valid ONNX protobufs and valid RTNeural JSON documents, broken one
structured change at a time. A mutation is ``(kind, seed)``: hypothesis picks the kinds and seeds (so it
can shrink them), ``random.Random(seed)`` picks where and what inside the file.
"""
from __future__ import annotations

import copy
import json
import math
import random
import re

import onnx
from onnx import AttributeProto, TensorProto, helper

#: Values that break size arithmetic: zero, negatives, one past int32, int64 extremes, 10^9 (a bomb).
INTERESTING_INTS = (0, 1, -1, 2, 3, 7, 255, 65536, 65537, 2**31 - 1, 2**31, -(2**31), 2**62, -(2**63), 10**9, 10**12)
INTERESTING_FLOATS = (math.nan, math.inf, -math.inf, -0.0, 1e-45, 3.5e38, 1e308, -1e308, 0.5, 1.0)
STRINGS = ("", "forward", "reverse", "bidirectional", "SAME_UPPER", "VALID", "NOTSET", "Tanh", "Sigmoid", "Relu", "Foo",
           "\u00ff\u0000", "x" * 300)
#: Op types a mutated node may take: the converter's, other real ONNX ops, and nonsense.
OP_TYPES = ("Add", "BatchNormalization", "Cast", "Conv", "Dropout", "Elu", "Flatten", "GRU", "Gemm", "Identity", "LSTM",
            "LeakyRelu", "MatMul", "PRelu", "Pad", "Relu", "Reshape", "Sigmoid", "Softmax", "Squeeze", "Sub", "Tanh",
            "Transpose", "Unsqueeze", "Concat", "Gather", "Shape", "Slice", "Expand", "Tile", "ConstantOfShape", "Range",
            "Constant", "Loop", "If", "Scan", "RNN", "Mul", "Div", "Split", "LogSoftmax", "NotAnOp", "")
LOCATIONS = ("../weights.bin", "/etc/hostname", "/dev/zero", "weights.bin", "model.onnx", ".", "", "a" * 4000,
             "x\x00y", "C:\\weights.bin", "\\\\server\\share\\w", "sub/../../w", "~/w.bin")
ELEMENT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT8,
                 TensorProto.STRING, TensorProto.BOOL, TensorProto.UNDEFINED, 99)


# ---------------------------------------------------------------------------------------------- ONNX
def _tensors(model: onnx.ModelProto) -> list[TensorProto]:
    found = list(model.graph.initializer)
    for node in model.graph.node:
        found += [a.t for a in node.attribute if a.type == AttributeProto.TENSOR]
    return found


def _pick(rng: random.Random, items):
    items = list(items)
    return rng.choice(items) if items else None


def mutate_dims(model, rng):
    tensor = _pick(rng, _tensors(model))
    if tensor is None:
        return
    choice = rng.randrange(3)
    if choice == 0 and tensor.dims:
        tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice(INTERESTING_INTS)
    elif choice == 1:
        tensor.dims.append(rng.choice(INTERESTING_INTS[:8]))
    elif tensor.dims:
        del tensor.dims[rng.randrange(len(tensor.dims))]


def mutate_data(model, rng):
    tensor = _pick(rng, _tensors(model))
    if tensor is None:
        return
    choice = rng.randrange(5)
    if choice == 0:
        tensor.raw_data = tensor.raw_data[: rng.randrange(len(tensor.raw_data) + 1)]
    elif choice == 1:
        tensor.raw_data = tensor.raw_data + rng.randbytes(rng.randrange(1, 64))
    elif choice == 2 and tensor.raw_data:
        pattern = rng.choice((b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\xff\xff\xff\xff"))
        tensor.raw_data = pattern * (len(tensor.raw_data) // 4)
    elif choice == 3:
        tensor.ClearField("raw_data")
        tensor.float_data.extend(rng.choice(INTERESTING_FLOATS) for _ in range(rng.randrange(4)))
    else:
        tensor.data_type = rng.choice(ELEMENT_TYPES)


def mutate_attribute(model, rng):
    node = _pick(rng, model.graph.node)
    if node is None:
        return
    choice = rng.randrange(4)
    if choice == 0 or not node.attribute:  # add one the op may or may not know
        name = rng.choice(("hidden_size", "direction", "axis", "perm", "pads", "group", "dilations", "kernel_shape",
                           "alpha", "activations", "layout", "linear_before_reset", "transB", "to", "epsilon", "clip"))
        value = rng.choice((rng.choice(INTERESTING_INTS), rng.choice(INTERESTING_FLOATS), rng.choice(STRINGS),
                            [rng.choice(INTERESTING_INTS) for _ in range(rng.randrange(5))], [rng.choice(STRINGS[:10])] * rng.randrange(4)))
        empty = isinstance(value, list) and not value  # make_attribute cannot infer the type of []
        node.attribute.append(helper.make_attribute(name, value, attr_type=AttributeProto.INTS if empty else None))
        return
    attribute = rng.choice(node.attribute)
    if choice == 1:
        node.attribute.remove(attribute)
    elif choice == 2:  # a type that does not match the stored field
        attribute.type = rng.choice((AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS,
                                     AttributeProto.TENSOR, AttributeProto.GRAPH, AttributeProto.UNDEFINED))
    elif attribute.type == AttributeProto.INT:
        attribute.i = rng.choice(INTERESTING_INTS)
    elif attribute.type == AttributeProto.FLOAT:
        attribute.f = rng.choice(INTERESTING_FLOATS)
    elif attribute.type == AttributeProto.STRING:
        attribute.s = rng.choice(STRINGS).encode("utf-8", "surrogatepass")
    elif attribute.type == AttributeProto.INTS:
        del attribute.ints[:]
        attribute.ints.extend(rng.choice(INTERESTING_INTS) for _ in range(rng.randrange(6)))
    elif attribute.type == AttributeProto.STRINGS:
        del attribute.strings[:]
        attribute.strings.extend(rng.choice(STRINGS).encode() for _ in range(rng.randrange(4)))


def mutate_op_type(model, rng):
    node = _pick(rng, model.graph.node)
    if node is not None:
        node.op_type = rng.choice(OP_TYPES)
        if rng.random() < 0.1:
            node.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "nowhere"))


def _names(model) -> list[str]:
    graph = model.graph
    return [v.name for v in graph.input] + [t.name for t in graph.initializer] + [o for n in graph.node for o in n.output]


def mutate_inputs(model, rng):
    node = _pick(rng, model.graph.node)
    if node is None:
        return
    choice = rng.randrange(3)
    if choice == 0 and node.input:
        node.input[rng.randrange(len(node.input))] = rng.choice(_names(model) + ["", "nowhere"])
    elif choice == 1 and node.input:
        del node.input[rng.randrange(len(node.input))]
    else:
        node.input.append(rng.choice(_names(model) + [""]))


def mutate_outputs(model, rng):
    node = _pick(rng, model.graph.node)
    if node is None:
        return
    if node.output and rng.random() < 0.6:
        node.output[rng.randrange(len(node.output))] = rng.choice(_names(model) + ["", "fresh"])
    elif node.output:
        del node.output[rng.randrange(len(node.output))]


def mutate_graph_io(model, rng):
    values = list(model.graph.input) + list(model.graph.output)
    value = _pick(rng, values)
    if value is None:
        return
    tensor_type = value.type.tensor_type
    choice = rng.randrange(5)
    if choice == 0:
        tensor_type.elem_type = rng.choice(ELEMENT_TYPES)
    elif choice == 1 and tensor_type.shape.dim:
        dim = tensor_type.shape.dim[rng.randrange(len(tensor_type.shape.dim))]
        if rng.random() < 0.5:
            dim.dim_value = rng.choice(INTERESTING_INTS)
        else:
            dim.dim_param = rng.choice(("batch", "time", "", "x"))
    elif choice == 2:
        tensor_type.ClearField("shape")
    elif choice == 3:
        tensor_type.shape.dim.add().dim_value = rng.choice(INTERESTING_INTS[:6])
    elif rng.random() < 0.5:
        model.graph.input.append(copy.deepcopy(value))
    else:
        value.name = rng.choice(_names(model) + ["renamed"])


def mutate_opset(model, rng):
    if model.opset_import:
        entry = rng.choice(model.opset_import)
        entry.version = rng.choice((0, 1, 6, 7, 8, 9, 11, 13, 14, 17, 18, 21, 28, 29, 1000, -1))
        if rng.random() < 0.2:
            entry.domain = rng.choice(("", "ai.onnx", "com.microsoft", "bogus"))
    if rng.random() < 0.3:
        model.ir_version = rng.choice((0, 1, 3, 4, 7, 8, 10, 11, 12, 100, -1))


def mutate_nodes(model, rng):
    nodes = model.graph.node
    if not nodes:
        return
    choice, index = rng.randrange(3), rng.randrange(len(nodes))
    if choice == 0:
        del nodes[index]
    elif choice == 1:
        nodes.insert(rng.randrange(len(nodes) + 1), copy.deepcopy(nodes[index]))
    else:
        other = rng.randrange(len(nodes))
        first, second = copy.deepcopy(nodes[index]), copy.deepcopy(nodes[other])
        nodes[index].CopyFrom(second)
        nodes[other].CopyFrom(first)


def mutate_external(model, rng):
    tensor = _pick(rng, model.graph.initializer)
    if tensor is None:
        return
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    entries = {"location": rng.choice(LOCATIONS), "offset": str(rng.choice(INTERESTING_INTS)), "length": str(rng.choice(INTERESTING_INTS))}
    for key in rng.sample(sorted(entries), rng.randrange(1, 4)):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, entries[key]
    if rng.random() < 0.7:
        tensor.ClearField("raw_data")


PROTO_MUTATIONS = {"dims": mutate_dims, "data": mutate_data, "attribute": mutate_attribute, "op_type": mutate_op_type,
                   "inputs": mutate_inputs, "outputs": mutate_outputs, "graph_io": mutate_graph_io, "opset": mutate_opset,
                   "nodes": mutate_nodes, "external": mutate_external}


def _flip(data: bytearray, rng):
    for _ in range(rng.randrange(1, 9)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _truncate(data: bytearray, rng):
    del data[rng.randrange(len(data) + 1):]


def _insert(data: bytearray, rng):
    position = rng.randrange(len(data) + 1)
    data[position:position] = rng.randbytes(rng.randrange(1, 32))


def _overwrite(data: bytearray, rng):
    if data:
        start = rng.randrange(len(data))
        length = min(rng.randrange(1, 64), len(data) - start)
        data[start:start + length] = rng.choice((rng.randbytes(length), b"\xff" * length, b"\x00" * length))


def _splice(data: bytearray, rng):
    if len(data) > 2:
        start = rng.randrange(len(data) - 1)
        piece = data[start:start + rng.randrange(1, 128)]
        position = rng.randrange(len(data))
        data[position:position] = piece


BYTE_MUTATIONS = {"flip": _flip, "truncate": _truncate, "insert": _insert, "overwrite": _overwrite, "splice": _splice}
ONNX_MUTATIONS = tuple(PROTO_MUTATIONS) + tuple(BYTE_MUTATIONS)


def mutate_onnx(seed_bytes: bytes, mutations) -> bytes:
    """Apply ``mutations`` [(kind, seed)]: the protobuf-level ones on the parsed model, then the byte-level ones."""
    model = onnx.ModelProto()
    model.ParseFromString(seed_bytes)
    for kind, seed in sorted(mutations, key=lambda m: m[0] in BYTE_MUTATIONS):
        if kind in PROTO_MUTATIONS:
            PROTO_MUTATIONS[kind](model, random.Random(seed))
    data = bytearray(model.SerializeToString())
    for kind, seed in mutations:
        if kind in BYTE_MUTATIONS:
            BYTE_MUTATIONS[kind](data, random.Random(seed))
    return bytes(data)


# ---------------------------------------------------------------------------------------------- JSON
LAYER_TYPES = ("dense", "lstm", "gru", "conv1d", "batchnorm", "prelu", "activation", "time-distributed-dense", "Dense", "attention", "",
               "conv2d", "batchnorm2d")
ACTIVATION_NAMES = ("", "tanh", "relu", "sigmoid", "softmax", "elu", "linear", "Tanh", "swish")
JSON_NUMBERS = (math.nan, math.inf, -math.inf, 1e39, 1e308, -1e308, 5e-324, -0.0, 10**30, -(10**30), 2**63, -1, 0, 1, 65537, True, False)


def _containers(document, path=()):
    """Every (path, value) in the document, depth first (capped at 5,000 entries)."""
    found, stack = [], [(path, document)]
    while stack and len(found) < 5000:
        here, value = stack.pop()
        found.append((here, value))
        if isinstance(value, dict):
            stack += [(here + (key,), item) for key, item in value.items()]
        elif isinstance(value, list):
            stack += [(here + (index,), item) for index, item in enumerate(value)]
    return found


def _set(document, path, value):
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return document


def _random_value(rng, depth=0):
    choice = rng.randrange(8 if depth < 2 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice(JSON_NUMBERS)
    if choice == 2:
        return rng.choice(STRINGS + LAYER_TYPES)
    if choice == 3:
        return rng.uniform(-2, 2)
    if choice == 4:
        return rng.choice(INTERESTING_INTS)
    if choice in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(("type", "activation", "shape", "weights", "in_shape", "layers", "x")): _random_value(rng, depth + 1)}


def _json_mutation(document, kind, rng):
    entries = _containers(document)
    path, value = rng.choice(entries)
    if kind == "delete" and path:
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        return document
    if kind == "replace":
        return _set(document, path, _random_value(rng))
    if kind == "wrap":
        return _set(document, path, [value] * rng.choice((1, 1, 2)))
    if kind == "unwrap" and isinstance(value, list):
        return _set(document, path, value[0] if value else None)
    if kind == "number":
        numbers = [(p, v) for p, v in entries if isinstance(v, (int, float)) and not isinstance(v, bool)] or [(path, value)]
        return _set(document, rng.choice(numbers)[0], rng.choice(JSON_NUMBERS))
    if kind == "layer" and isinstance(document, dict) and isinstance(document.get("layers"), list) and document["layers"]:
        layers, index = document["layers"], rng.randrange(len(document["layers"]))
        choice = rng.randrange(5)
        if choice == 0 and isinstance(layers[index], dict):
            layers[index]["type"] = rng.choice(LAYER_TYPES)
        elif choice == 1 and isinstance(layers[index], dict):
            layers[index]["activation"] = rng.choice(ACTIVATION_NAMES)
        elif choice == 2:
            layers.insert(index, layers[rng.randrange(len(layers))])  # shared, not copied: it may be 5000 lists deep
        elif choice == 3:
            other = rng.randrange(len(layers))
            layers[index], layers[other] = layers[other], layers[index]
        else:
            del layers[index]
        return document
    if kind == "size":
        sizes = [p for p, v in entries if p and p[-1] in ("shape", "in_shape", "kernel_size", "dilation", "groups")]
        if sizes:
            return _set(document, rng.choice(sizes), rng.choice(([None, None, rng.choice(INTERESTING_INTS)], rng.choice(INTERESTING_INTS),
                                                                   [rng.choice(INTERESTING_INTS)], "3", [])))
        return document
    if kind == "deep":
        deep = value
        for _ in range(rng.choice((100, 900, 1100, 5000))):
            deep = [deep]
        return _set(document, path, deep)
    return document


def _text_mutation(text: str, kind: str, rng) -> str:
    if kind == "truncate_text":
        return text[: rng.randrange(len(text) + 1)]
    if kind == "insert_text":
        position = rng.randrange(len(text) + 1)
        return text[:position] + rng.choice(('{', '}', '[', ']', ',', ':', '"', '0', 'e', '-', '.', 'null', 'NaN', '\ufeff', '\x00')) + text[position:]
    if kind == "number_token":
        numbers = list(re.finditer(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text))
        if numbers:
            match = rng.choice(numbers)
            token = rng.choice(("1e999", "-1e999", "NaN", "Infinity", "00", "1.", "0x10", "1e", "9" * 400))
            return text[:match.start()] + token + text[match.end():]
    return text


STRUCTURE_MUTATIONS = ("delete", "replace", "wrap", "unwrap", "number", "layer", "size", "deep")
TEXT_MUTATIONS = ("truncate_text", "insert_text", "number_token")
JSON_MUTATIONS = STRUCTURE_MUTATIONS + TEXT_MUTATIONS


def mutate_json(document, mutations) -> bytes:
    """Apply the structural ``mutations`` to a copy of ``document``, serialise it (NaN and Infinity as
    the tokens Python writes), then apply the text ones; a few results are re-encoded as UTF-16."""
    document = copy.deepcopy(document)
    for kind, seed in mutations:
        if kind in STRUCTURE_MUTATIONS:
            document = _json_mutation(document, kind, random.Random(seed))
    try:
        text = json.dumps(document)
    except (RecursionError, ValueError):
        text = "[" * 100_000
    for kind, seed in mutations:
        if kind in TEXT_MUTATIONS:
            text = _text_mutation(text, kind, random.Random(seed))
    encoding = "utf-16" if mutations and mutations[0][1] % 97 == 0 else "utf-8"
    return text.encode(encoding, "surrogatepass")
