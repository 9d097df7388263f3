"""Load and check an ONNX file, then turn it into the layer list (:class:`ImportedModel`).

``load_onnx`` is the safety gate: a file from anywhere is parsed without touching side files, every
external-data reference is proven to stay inside the model's folder before anything is read, and the
opset must be one we understand (``MIN_OPSET``..``MAX_OPSET``). ``import_onnx`` then folds constants,
walks the data chain through the per-op converters (:mod:`toolchain.converters`) and records in an
:class:`IOSpec` how to feed the ONNX model frames so that ``check`` can compare it with the engine.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from onnx import external_data_helper

from toolchain import __version__
from toolchain.converters.axes import CHANNEL, FEATURE, TIME, RoleConflict, check_tensor, resolve_tensor
from toolchain.converters.folding import MAX_TENSOR_ELEMENTS, prepare_graph
from toolchain.converters.walk import fill_sizes, walk_graph
from toolchain.inputs import read_bytes
from toolchain.errors import InputError, KellyError, UnsupportedError, node_where
from toolchain.layers import Model

log = logging.getLogger(__name__)

#: Default-domain opsets we accept. 9 is where BatchNormalization lost ``spatial`` and the ops we
#: convert took their current meaning (Softmax's axis rule changed at 13, handled); the upper bound
#: is the newest opset the installed onnx defines (onnx 1.23: 28), so its shape inference and
#: reference evaluator know every op we fold.
MIN_OPSET = 9
MAX_OPSET = onnx.defs.onnx_opset_version()

#: Refuse bigger model files (override with KELLY_TC_MAX_ONNX_BYTES): audio models are a few MB.
MAX_ONNX_BYTES = int(os.environ.get("KELLY_TC_MAX_ONNX_BYTES", 1 << 30))


# ------------------------------------------------------------------------------------------ loading
def _check_external_location(tensor: onnx.TensorProto, folder: Path) -> None:
    """Prove an external-data reference stays inside ``folder`` and fits its file."""
    where = f"initializer '{tensor.name}'"
    try:
        with warnings.catch_warnings():  # onnx warns on stderr about unknown keys: ignored here as there,
            warnings.simplefilter("ignore")  # so that an error stays the one line on stderr
            info = external_data_helper.ExternalDataInfo(tensor)
    except Exception as error:  # onnx's parser of untrusted keys: ValueError (negative offset), TypeError
        # (a key that is not valid UTF-8 sorted among str keys) -- both found by tests/hostile/fuzz.py
        raise InputError(f"malformed external data reference ({str(error)[:160]})", where=where) from None
    location = info.location or ""
    if not location:
        raise InputError("external data without a location", where=where)
    if not isinstance(location, str) or "\x00" in location or len(location) > 1024:  # bytes (invalid UTF-8), NUL,
        raise InputError(f"external data location {location[:40]!r} is not a usable file name", where=where)  # too long
    if os.path.isabs(location) or Path(location).drive or location.startswith(("/", "\\")):
        raise InputError(f"external data location '{location}' is an absolute path; only files beside the model are read", where=where)
    if ".." in Path(location.replace("\\", "/")).parts:
        raise InputError(f"external data location '{location}' points outside the model's folder", where=where)
    target = folder / location
    try:
        real_folder, real_target = os.path.realpath(folder), os.path.realpath(target)
        if os.path.commonpath([real_folder, real_target]) != real_folder:
            raise InputError(f"external data location '{location}' resolves outside the model's folder (a symlink?)", where=where)
        if not target.is_file():  # a FIFO or a device would block or never end: only regular files are read
            state = "is not a regular file" if target.exists() else "is missing"
            raise InputError(f"external data file '{location}' {state}", where=where)
        size = target.stat().st_size
    except OSError as error:  # e.g. a path component longer than the file system allows
        raise InputError(f"external data location '{location[:80]}' cannot be opened ({error.strerror})", where=where) from None
    offset, length = int(info.offset or 0), info.length
    end = offset + (int(length) if length is not None else 0)
    if offset < 0 or end > size or offset > size:
        raise InputError(f"external data '{location}' is truncated: needs bytes {offset}..{end}, the file has {size}", where=where)


def _check_opset(model: onnx.ModelProto) -> None:
    versions = {imp.domain: imp.version for imp in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise UnsupportedError("no default-domain (ai.onnx) opset import", where="opset_import")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise UnsupportedError(f"opset {version} is outside the supported range {MIN_OPSET}..{MAX_OPSET} "
                               "(upgrade old models with onnx.version_converter)", where="opset_import")


def _check_declared_sizes(model: onnx.ModelProto) -> None:
    """Refuse absurd tensor shapes (initializers, Constant values, graph inputs) before anything reads
    the data or allocates an input of the declared shape (``check``, calibration)."""
    for tensor in external_data_helper._get_all_tensors(model):
        elements = math.prod([max(int(d), 0) for d in tensor.dims]) if tensor.dims else 1
        if elements > MAX_TENSOR_ELEMENTS:
            raise InputError(f"declares {elements} elements, above the {MAX_TENSOR_ELEMENTS} limit", where=f"initializer '{tensor.name}'")
    for value in model.graph.input:  # fixed sizes only: a symbolic axis is fed what the caller chooses
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]
        elements = math.prod([max(d, 1) for d in dims if isinstance(d, int)])
        if any(isinstance(d, int) and d < 0 for d in dims):  # found by tests/hostile/fuzz.py
            raise InputError(f"declares a negative size in its shape {dims}", where=f"graph input '{value.name}'")
        if any(isinstance(d, int) and d == 0 for d in dims):  # converted, then crashed check (issue 17.6)
            raise InputError(f"declares a size-0 axis in its shape {dims}: no frame can be fed", where=f"graph input '{value.name}'")
        if elements > MAX_TENSOR_ELEMENTS:
            raise InputError(f"declares a fixed shape {dims} of {elements} elements per run, above the {MAX_TENSOR_ELEMENTS} limit",
                             where=f"graph input '{value.name}'")


def _check_references(graph: onnx.GraphProto) -> None:
    """Every node input must be a graph input, an initializer or some node's output; nodes out of
    topological order are sorted (the ONNX spec requires the order, but an exporter or hand edit may
    break it -- the data flow is still well defined). Refusals name the exact problem: a sparse
    initializer, a tensor nothing produces, a cycle."""
    known = {vi.name for vi in graph.input} | {init.name for init in graph.initializer}
    sparse = {tensor.values.name for tensor in graph.sparse_initializer}
    produced = {name for node in graph.node for name in node.output if name}
    for node in graph.node:
        for name in node.input:
            if not name or name in known:
                continue
            if name in sparse:
                raise UnsupportedError(f"input '{name}' is a sparse initializer; kelly-tc reads dense initializers only "
                                       "(store it dense, e.g. with onnx.numpy_helper)", where=node_where(node.name, node.op_type))
            if name not in produced:
                raise InputError(f"input '{name}' is not a graph input, an initializer or the output of any node "
                                 "(a missing initializer?)", where=node_where(node.name, node.op_type))
    ordered = _topological_order(graph, known)
    if [id(n) for n in ordered] != [id(n) for n in graph.node]:
        log.info("nodes were not in topological order: sorted")
        copies = [onnx.NodeProto.FromString(node.SerializeToString()) for node in ordered]
        del graph.node[:]
        graph.node.extend(copies)


def _topological_order(graph: onnx.GraphProto, known: set[str]) -> list:
    """Kahn's algorithm, keeping the file's order among ready nodes; a cycle is an InputError."""
    waiting = {}
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        missing = {name for name in node.input if name and name not in known}
        waiting[index] = len(missing)
        for name in missing:
            readers.setdefault(name, []).append(index)
    import heapq

    ready = [index for index, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order, available = [], set(known)
    while ready:
        index = heapq.heappop(ready)
        node = graph.node[index]
        order.append(node)
        for name in node.output:
            if name and name not in available:
                available.add(name)
                for reader in readers.get(name, ()):
                    waiting[reader] -= 1
                    if waiting[reader] == 0:
                        heapq.heappush(ready, reader)
    if len(order) != len(graph.node):
        stuck = next(graph.node[i] for i, count in waiting.items() if count > 0)
        raise InputError("the nodes form a cycle (a node needs, through other nodes, its own output)",
                         where=node_where(stuck.name, stuck.op_type))
    return order


#: What a new user most often passes instead of an ONNX file, told apart by its first bytes.
EXPORT_HINT = ("export it to ONNX first: torch.onnx.export(model, (example,), 'model.onnx', dynamo=False, "
               "input_names=['input'], dynamic_axes={'input': {1: 'time'}}); or, in Python, "
               "kelly_tc.from_torch(model, example, 'model.json') exports, converts and checks in one call")


def not_onnx_reason(path: Path) -> str | None:
    """A helpful reason when ``path`` is recognisably something else than ONNX, else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    text = head.lstrip()
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save: a zip archive, or a bare pickle
        return f"not an ONNX model (a PyTorch file written by torch.save: {EXPORT_HINT})"
    if text[:1] in (b"{", b"["):
        return ("not an ONNX model (a JSON file: the ONNX model comes first, kelly-tc check MODEL.onnx MODEL.json; "
                "convert takes MODEL.onnx)")
    return None


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse, check and fully load an ONNX file; every problem is one :class:`InputError` line."""
    path = Path(path)
    try:
        if not path.is_file():
            raise InputError("no such file" if not path.exists() else "not a regular file")
        size = path.stat().st_size
        if size == 0:
            raise InputError("empty file (0 bytes): not an ONNX model")
        if size > MAX_ONNX_BYTES:
            raise InputError(f"file is {size} bytes, above the {MAX_ONNX_BYTES}-byte limit (KELLY_TC_MAX_ONNX_BYTES)")
        data = read_bytes(path, MAX_ONNX_BYTES, setting="KELLY_TC_MAX_ONNX_BYTES")
        try:  # by content: onnx.load picks a text format by extension, so model.json would not parse
            model = onnx.load_model_from_string(data)
        except Exception as error:  # protobuf raises DecodeError, RuntimeWarning-turned-errors, ...
            log.debug("protobuf parse of %s failed: %s", path, error)
            raise InputError(not_onnx_reason(path) or "not an ONNX model (the protobuf does not parse: corrupt or truncated)") from None
        if model.ir_version <= 0 or not model.graph.node or not model.opset_import:
            raise InputError(not_onnx_reason(path) or "not an ONNX model (no IR version, opset or graph nodes: truncated or not ONNX)")
        _check_opset(model)
        _check_declared_sizes(model)
        external = [t for t in external_data_helper._get_all_tensors(model) if external_data_helper.uses_external_data(t)]
        for tensor in external:
            _check_external_location(tensor, path.parent)
        if external:
            try:
                external_data_helper.load_external_data_for_model(model, str(path.parent))
            except (OSError, ValueError, onnx.checker.ValidationError) as error:
                raise InputError(f"cannot read the external data: {str(error)[:200]}") from None
        if model.functions:  # exporters may wrap ops in local functions: inline them into plain nodes
            model = onnx.inliner.inline_local_functions(model)
        _check_references(model.graph)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as error:
            raise InputError(f"invalid ONNX model: {str(error).strip().splitlines()[0][:200]}") from None
        except UnicodeError:  # the checker decodes every string field (found by tests/hostile/fuzz.py)
            raise InputError("invalid ONNX model: a name or string field is not valid UTF-8") from None
        return model
    except KellyError as error:
        raise error.with_file(path)


# ------------------------------------------------------------------------------------------ IO spec
@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: its name, the role of each axis and its static sizes (None = dynamic)."""

    name: str
    roles: tuple[str, ...]
    dims: tuple

    def axis(self, role: str) -> int | None:
        return self.roles.index(role) if role in self.roles else None


@dataclass(frozen=True)
class IOSpec:
    """How to feed the ONNX model a ``[frames, features]`` sequence and read one back."""

    input: TensorSpec
    output: TensorSpec
    input_size: int
    output_size: int
    #: The input's declared time length (the dynamo exporter fixes it), else None. 1 without a time axis.
    fixed_time: int | None

    def onnx_input(self, frames: np.ndarray) -> np.ndarray:
        """``frames [T, input_size]`` laid out as the ONNX input (batch/singleton axes of size 1 or
        their fixed size, every batch row a copy of the sequence)."""
        frames = np.asarray(frames, dtype=np.float32)
        count = frames.shape[0]
        if self.fixed_time is not None and count != self.fixed_time:
            raise ValueError(f"the model takes exactly {self.fixed_time} frames per run, got {count}")
        time_axis, feature_axis, channel_axis = self.input.axis(TIME), self.input.axis(FEATURE), self.input.axis(CHANNEL)
        channels = self.input.dims[channel_axis] if channel_axis is not None else 1  # a 2-D map: frames are [F * C], feature-major
        shape = []
        for index, role in enumerate(self.input.roles):
            size = {TIME: count, FEATURE: self.input_size // channels}.get(role)
            shape.append(size if size is not None else (self.input.dims[index] if isinstance(self.input.dims[index], int) else 1))
        array = np.empty(shape, np.float32)
        moved = [a for a in (time_axis, feature_axis, channel_axis) if a is not None]
        view = np.moveaxis(array, moved, list(range(-len(moved), 0))) if moved else array
        source = frames if time_axis is not None else frames[0]
        if channel_axis is not None:
            source = source.reshape(source.shape[:-1] + (self.input_size // channels, channels))
        source = source if feature_axis is not None else source[..., 0]
        view[...] = source
        return array

    def frames(self, output: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The ONNX output as ``[T, output_size]`` (batch row 0), in ``dtype`` (float64 for the float64 reference)."""
        output = np.asarray(output)
        if CHANNEL in self.output.roles:  # a 2-D map: [T, F, C] flattened feature-major
            order = [self.output.axis(role) for role in (TIME, FEATURE, CHANNEL) if role in self.output.roles]
            index = tuple(slice(None) if role in (TIME, FEATURE, CHANNEL) else 0 for role in self.output.roles)
            kept = [role for role in self.output.roles if role in (TIME, FEATURE, CHANNEL)]
            result = np.moveaxis(output[index], [kept.index(self.output.roles[a]) for a in order], list(range(len(order))))
            if TIME not in kept:
                result = result[None]
            return np.ascontiguousarray(result.reshape(result.shape[0], -1), dtype=np.float32)
        index = tuple(slice(None) if role in (TIME, FEATURE) else 0 for role in self.output.roles)
        kept = [role for role in self.output.roles if role in (TIME, FEATURE)]
        result = output[index]
        if FEATURE not in kept:
            result, kept = result[..., None], kept + [FEATURE]
        if TIME not in kept:
            result, kept = result[None], [TIME] + kept
        if kept != [TIME, FEATURE]:
            result = result.T
        return np.ascontiguousarray(result, dtype=dtype)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ImportedModel:
    model: Model
    io: IOSpec


def _tensor_spec(name: str, roles, axes: list[int], dims) -> TensorSpec:
    dims = tuple(dims) if dims is not None else (None,) * len(axes)
    if len(dims) != len(axes):  # a declared rank the ops contradict (found by tests/hostile/fuzz.py)
        raise InputError(f"'{name}' is declared with {len(dims)} axes but the graph's ops give it {len(axes)}",
                         where="graph inputs and outputs")
    resolved = resolve_tensor(roles, axes, dims)
    check_tensor(roles, axes, dims, name)
    return TensorSpec(name, resolved, tuple(d if isinstance(d, int) else None for d in dims))


def import_model_proto(proto: onnx.ModelProto, source: str = "") -> ImportedModel:
    """Convert an already loaded and checked model (see :func:`load_onnx`)."""
    graph = prepare_graph(proto)
    chain = walk_graph(graph)
    try:
        spec_in = _tensor_spec(graph.input_name, chain.roles, chain.input_axes, graph.dims.get(graph.input_name))
        spec_out = _tensor_spec(graph.output_name, chain.roles, chain.output_axes, graph.dims.get(graph.output_name))
    except RoleConflict as conflict:
        raise UnsupportedError(str(conflict), where="graph") from None
    time_in, time_out = spec_in.axis(TIME), spec_out.axis(TIME)
    if (time_in is None) != (time_out is None) or (time_in is not None and not chain.roles.same(chain.input_axes[time_in], chain.output_axes[time_out])):
        raise UnsupportedError("the output's time axis is not the input's time axis: frames do not map one to one", where="graph outputs")
    feature = spec_in.axis(FEATURE)
    input_size = spec_in.dims[feature] if feature is not None else 1
    channel = spec_in.axis(CHANNEL)
    if channel is not None and input_size is not None:  # a 2-D map per frame (conv2d): [features x channels]
        input_size = input_size * spec_in.dims[channel] if spec_in.dims[channel] is not None else None
    if input_size is None:
        raise UnsupportedError(f"input '{graph.input_name}' has no fixed feature size (axis {feature})", where="graph inputs")
    fill_sizes(chain.layers, input_size)
    fixed_time = 1 if time_in is None else spec_in.dims[time_in]
    if chain.pinned_time is not None and time_in is not None:  # a Reshape fixed the variable time axis
        length, where = chain.pinned_time
        if fixed_time is not None and fixed_time != length:
            raise InputError(f"fixes the time axis to {length} frames, but input '{graph.input_name}' declares "
                             f"{fixed_time}", where=where)
        fixed_time = length
    model = Model(input_size, chain.layers)
    model.validate()
    out_feature = spec_out.axis(FEATURE)
    declared = spec_out.dims[out_feature] if out_feature is not None else 1
    if spec_out.axis(CHANNEL) is not None and declared is not None:
        declared = declared * spec_out.dims[spec_out.axis(CHANNEL)] if spec_out.dims[spec_out.axis(CHANNEL)] is not None else None
    if declared is not None and declared != model.output_size:
        raise InputError(f"the layers give {model.output_size} features but output '{graph.output_name}' declares {declared}", where="graph outputs")
    io = IOSpec(spec_in, spec_out, input_size, model.output_size, fixed_time)
    model.metadata["kelly_tc"] = {"producer": f"kelly-tc {__version__}", "source": source,
                                  "input": graph.input_name, "output": graph.output_name, "io": io.to_json(), "notes": chain.notes}
    return ImportedModel(model, io)


def import_onnx(path: str | Path) -> ImportedModel:
    """Load ``path`` (see :func:`load_onnx`) and convert it to a validated :class:`Model`."""
    path = Path(path)
    proto = load_onnx(path)
    try:
        return import_model_proto(proto, source=path.name)
    except KellyError as error:
        raise error.with_file(path)

