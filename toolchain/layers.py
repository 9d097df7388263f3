"""Typed layer records: the one canonical, validated representation between importers and exporters.

Canonical layouts (chosen so that every matrix-vector product in the engine reads contiguous rows):

- ``Dense``:     ``weight [out, in]``, ``bias [out]``  (PyTorch/ONNX-Gemm layout; RTNeural JSON is transposed)
- ``LSTM``:      ``weight_ih [4H, in]``, ``weight_hh [4H, H]``, ``bias [4H]`` (the sum of ONNX's two biases),
                 gate blocks in ``gates.LSTM_CANONICAL`` order (i, f, c, o)
- ``GRU``:       ``weight_ih [3H, in]``, ``weight_hh [3H, H]``, ``bias_ih [3H]``, ``bias_hh [3H]``,
                 gate blocks in ``gates.GRU_CANONICAL`` order (z, r, h); the two biases stay apart because
                 the recurrent candidate bias sits inside ``r * (...)``
- ``Conv1D``:    ``weight [out, in/groups, K]`` (ONNX/PyTorch layout), ``bias [out]``; causal, stride 1:
                 tap ``K-1`` multiplies the current frame, tap ``k`` the frame ``(K-1-k)*dilation`` back
- ``BatchNorm``: ``gamma, beta, mean, var [n]`` and ``epsilon``
- ``Conv2D``:    ``weight [out, in, Kt, Kf]`` (ONNX/PyTorch layout with the TIME axis first), ``bias [out]``,
                 ``num_features_in``, ``dilation`` (time), ``stride`` (feature), ``valid_pad``: RTNeural's
                 conv2d, causal over time like conv1d, "valid"/"same" (TensorFlow's rule) over features.
                 Its frames are 2-D maps flattened feature-major: value ``f * channels + c`` (RTNeural's layout)
- ``BatchNorm2D``: ``gamma, beta, mean, var [channels]``, ``num_features``, ``epsilon``: one normalisation
                 per channel of a feature-major ``[num_features x channels]`` frame
- ``PRelu``:     ``alpha [1]`` (shared) or ``[n]`` (per channel)
- ``Activation``: a standalone activation of ``size`` features
- merge/split kinds (graph files and generated headers only, not RTNeural layers): ``Add`` (n inputs,
  elementwise sum), ``Sub`` (a - b), ``Mul`` (elementwise product: gates), ``Concat`` (feature axis, in
  input order), ``Slice`` (features ``[start, start + size)``)

A :class:`Model` is a directed acyclic graph in torch.fx style: value 0 is the model input, value ``i + 1``
the output of ``layers[i]``; each layer names the values it reads in ``inputs`` (empty: the previous
value), layers are in topological order and the model output is the last layer's value. A sequential
stack is the graph whose every layer reads the previous value -- one representation for both
(docs/GRAPH_FORMAT.md describes the file form of the general case).

All arrays are float32 and C-contiguous. ``validate`` checks everything RTNeural's parser does not.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from toolchain.errors import InputError

#: Activation names RTNeural accepts; "" is linear. Any other name crashes RTNeural's parser.
ACTIVATIONS = ("", "tanh", "relu", "sigmoid", "softmax", "elu")

#: Refuse layer sizes above this: no audio-thread model is near it, and a hostile file's declared
#: size must not make us allocate gigabytes before the weights contradict it.
MAX_LAYER_SIZE = 1 << 16
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Refuse a conv1d whose streaming history ((K-1)*dilation+1 past frames of every input channel) holds
#: more values than this (64 MiB of float32): a few kilobytes of weights with a huge dilation would
#: otherwise make the engine allocate gigabytes of state (tests/hostile: json_conv1d_history_bomb).
MAX_CONV_HISTORY_VALUES = 1 << 24


def f32(array: Any) -> np.ndarray:
    """A C-contiguous float32 copy-or-view of ``array``."""
    return np.ascontiguousarray(np.asarray(array, dtype=np.float32))


@dataclass(eq=False)
class Layer:
    """Base of the layer records. ``source`` names where the layer came from (an ONNX node), for messages."""

    kind: ClassVar[str] = ""
    source: str = field(default="", kw_only=True)
    #: The values this layer reads (0 = model input, i + 1 = output of layers[i]); () = the previous value.
    inputs: tuple[int, ...] = field(default=(), kw_only=True)

    @property
    def in_size(self) -> int:
        raise NotImplementedError

    @property
    def out_size(self) -> int:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The layer's weight arrays by field name (all float32)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), np.ndarray)}

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape every weight array must have, given the layer's sizes."""
        raise NotImplementedError

    def parameter_count(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))

    def validate(self, where: str) -> None:
        """Raise :class:`InputError` if shapes, values or attributes are inconsistent."""
        for name, shape in self.expected_shapes().items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != np.float32:
                raise InputError(f"must be a float32 array, got {type(array).__name__}", where=f"{where}/{name}")
            if array.shape != shape:
                raise InputError(f"shape {list(array.shape)} does not match the expected {list(shape)}", where=f"{where}/{name}")
            if not np.all(np.isfinite(array)):
                raise InputError("contains NaN or Inf", where=f"{where}/{name}")
        for size in (self.in_size, self.out_size):
            if not 0 < size <= MAX_LAYER_SIZE:
                raise InputError(f"size {size} outside 1..{MAX_LAYER_SIZE}", where=where)
        activation = getattr(self, "activation", "")
        if activation not in ACTIVATIONS:
            raise InputError(f"activation {activation!r} is not one of {ACTIVATIONS}", where=f"{where}/activation")


@dataclass(eq=False)
class Dense(Layer):
    kind: ClassVar[str] = "dense"
    weight: np.ndarray  # [out, in]
    bias: np.ndarray  # [out]
    activation: str = ""

    in_size = property(lambda self: int(self.weight.shape[1]))
    out_size = property(lambda self: int(self.weight.shape[0]))

    def expected_shapes(self):
        return {"weight": (self.out_size, self.in_size), "bias": (self.out_size,)}


@dataclass(eq=False)
class LSTM(Layer):
    kind: ClassVar[str] = "lstm"
    weight_ih: np.ndarray  # [4H, in], gate blocks i, f, c, o
    weight_hh: np.ndarray  # [4H, H]
    bias: np.ndarray  # [4H], input bias + recurrent bias

    in_size = property(lambda self: int(self.weight_ih.shape[1]))
    out_size = property(lambda self: int(self.weight_hh.shape[1]))
    hidden_size = out_size

    def expected_shapes(self):
        h = self.hidden_size
        return {"weight_ih": (4 * h, self.in_size), "weight_hh": (4 * h, h), "bias": (4 * h,)}


@dataclass(eq=False)
class GRU(Layer):
    kind: ClassVar[str] = "gru"
    weight_ih: np.ndarray  # [3H, in], gate blocks z, r, h
    weight_hh: np.ndarray  # [3H, H]
    bias_ih: np.ndarray  # [3H]
    bias_hh: np.ndarray  # [3H]

    in_size = property(lambda self: int(self.weight_ih.shape[1]))
    out_size = property(lambda self: int(self.weight_hh.shape[1]))
    hidden_size = out_size

    def expected_shapes(self):
        h = self.hidden_size
        return {"weight_ih": (3 * h, self.in_size), "weight_hh": (3 * h, h), "bias_ih": (3 * h,), "bias_hh": (3 * h,)}


@dataclass(eq=False)
class Conv1D(Layer):
    kind: ClassVar[str] = "conv1d"
    weight: np.ndarray  # [out, in/groups, K]
    bias: np.ndarray  # [out]
    dilation: int = 1
    groups: int = 1
    activation: str = ""

    in_size = property(lambda self: int(self.weight.shape[1]) * self.groups)
    out_size = property(lambda self: int(self.weight.shape[0]))
    kernel_size = property(lambda self: int(self.weight.shape[2]))

    def expected_shapes(self):
        return {"weight": (self.out_size, self.in_size // self.groups, self.kernel_size), "bias": (self.out_size,)}

    def validate(self, where: str) -> None:
        if not (isinstance(self.groups, int) and self.groups >= 1 and self.out_size % self.groups == 0):
            raise InputError(f"groups {self.groups} does not divide the {self.out_size} output channels", where=f"{where}/groups")
        if not (isinstance(self.dilation, int) and 1 <= self.dilation <= MAX_LAYER_SIZE):
            raise InputError(f"dilation {self.dilation} must be a positive integer", where=f"{where}/dilation")
        if not 1 <= self.kernel_size <= MAX_LAYER_SIZE:
            raise InputError(f"kernel size {self.kernel_size} must be positive", where=f"{where}/kernel_size")
        super().validate(where)
        history = (self.kernel_size - 1) * self.dilation + 1
        if history * self.in_size > MAX_CONV_HISTORY_VALUES:
            raise InputError(f"a streaming conv1d keeps (K-1)*dilation+1 = {history} past frames of {self.in_size} channels: "
                             f"{history * self.in_size} values of state, above the {MAX_CONV_HISTORY_VALUES} limit", where=where)


@dataclass(eq=False)
class BatchNorm(Layer):
    kind: ClassVar[str] = "batchnorm"
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    epsilon: float = 1e-5

    in_size = property(lambda self: int(self.mean.shape[0]))
    out_size = in_size

    def expected_shapes(self):
        n = self.in_size
        return {"gamma": (n,), "beta": (n,), "mean": (n,), "var": (n,)}

    def validate(self, where: str) -> None:
        Layer.validate(self, where)
        check_normalisation(self, where)


def check_normalisation(layer, where: str) -> None:
    """The checks shared by batchnorm and batchnorm2d (per-feature or per-channel vectors alike)."""
    if not (np.isfinite(layer.epsilon) and 0 <= layer.epsilon <= FLOAT32_MAX):
        raise InputError(f"epsilon {layer.epsilon} must be finite (in float32) and >= 0", where=f"{where}/epsilon")
    if np.any(layer.var + np.float32(layer.epsilon) <= 0):
        raise InputError("var + epsilon must be positive", where=f"{where}/var")
    with np.errstate(over="ignore", divide="ignore"):  # RTNeural folds gamma / sqrt(var + eps) at load:
        scale = layer.gamma / np.sqrt(layer.var + np.float32(layer.epsilon), dtype=np.float32)  # Inf there = Inf
    if not np.all(np.isfinite(scale)):  # every frame (found by tests/hostile/fuzz.py)
        raise InputError("gamma / sqrt(var + epsilon) overflows float32", where=f"{where}/gamma")


def conv2d_features_out(features_in: int, kernel: int, stride: int, valid_pad: bool) -> int:
    """RTNeural's ``Conv1DStateless::computeNumFeaturesOut`` (TensorFlow's rule): ceil((n - k + 1) / s) for
    "valid", ceil(n / s) for "same"."""
    return -(-(features_in - kernel + 1) // stride) if valid_pad else -(-features_in // stride)


def conv2d_pads(features_in: int, kernel: int, stride: int, valid_pad: bool) -> tuple[int, int]:
    """The zeros RTNeural's "same" padding puts (left, right) of the feature axis (TensorFlow's rule: the odd
    one goes right); (0, 0) for "valid"."""
    if valid_pad:
        return 0, 0
    total = max(kernel - (features_in % stride or stride), 0)
    return total // 2, total - total // 2


@dataclass(eq=False)
class Conv2D(Layer):
    """RTNeural's conv2d: a 2-D map per frame (``num_features_in`` x in channels, feature-major), convolved
    causally over time (tap ``Kt-1`` on the current frame, tap ``k`` on the frame ``(Kt-1-k)*dilation``
    back) and over the feature axis with ``stride`` and "valid"/"same" padding."""

    kind: ClassVar[str] = "conv2d"
    weight: np.ndarray  # [out, in, Kt, Kf]
    bias: np.ndarray  # [out]
    num_features_in: int = 0
    dilation: int = 1
    stride: int = 1
    valid_pad: bool = True
    activation: str = ""

    filters_in = property(lambda self: int(self.weight.shape[1]))
    filters_out = property(lambda self: int(self.weight.shape[0]))
    kernel_size_time = property(lambda self: int(self.weight.shape[2]))
    kernel_size_feature = property(lambda self: int(self.weight.shape[3]))
    num_features_out = property(lambda self: conv2d_features_out(self.num_features_in, self.kernel_size_feature,
                                                                  self.stride, self.valid_pad))
    in_size = property(lambda self: int(self.num_features_in) * self.filters_in)
    out_size = property(lambda self: self.num_features_out * self.filters_out)

    def expected_shapes(self):
        return {"weight": (self.filters_out, self.filters_in, self.kernel_size_time, self.kernel_size_feature),
                "bias": (self.filters_out,)}

    def validate(self, where: str) -> None:
        if not isinstance(self.weight, np.ndarray) or self.weight.ndim != 4:
            raise InputError("must be a 4-D array [out, in, Kt, Kf]", where=f"{where}/weight")
        for name in ("num_features_in", "dilation", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LAYER_SIZE:
                raise InputError(f"{name} {value!r:.40} must be an integer in 1..{MAX_LAYER_SIZE}", where=f"{where}/{name}")
        if not isinstance(self.valid_pad, bool):
            raise InputError(f"valid_pad must be a boolean, got {self.valid_pad!r:.40}", where=f"{where}/padding")
        if self.kernel_size_feature > self.num_features_in:
            # valid: no output feature at all; same: RTNeural's edge loops assume the kernel fits in the frame
            raise InputError(f"kernel_size_feature {self.kernel_size_feature} is wider than the {self.num_features_in} input "
                             "features", where=f"{where}/kernel_size_feature")
        super().validate(where)
        history = (self.kernel_size_time - 1) * self.dilation + 1
        if history * self.in_size > MAX_CONV_HISTORY_VALUES:
            raise InputError(f"a streaming conv2d keeps (Kt-1)*dilation+1 = {history} past frames of {self.in_size} values: "
                             f"{history * self.in_size} values of state, above the {MAX_CONV_HISTORY_VALUES} limit", where=where)


@dataclass(eq=False)
class BatchNorm2D(Layer):
    """RTNeural's batchnorm2d: ``BatchNorm`` per channel of a feature-major ``[num_features x channels]`` frame."""

    kind: ClassVar[str] = "batchnorm2d"
    gamma: np.ndarray  # [channels]
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    num_features: int = 0
    epsilon: float = 1e-5

    channels = property(lambda self: int(self.mean.shape[0]))
    in_size = property(lambda self: self.channels * int(self.num_features))
    out_size = in_size

    def expected_shapes(self):
        n = self.channels
        return {"gamma": (n,), "beta": (n,), "mean": (n,), "var": (n,)}

    def validate(self, where: str) -> None:
        if isinstance(self.num_features, bool) or not isinstance(self.num_features, int) or not 1 <= self.num_features <= MAX_LAYER_SIZE:
            raise InputError(f"num_features {self.num_features!r:.40} must be an integer in 1..{MAX_LAYER_SIZE}",
                             where=f"{where}/num_features_in")
        super().validate(where)
        check_normalisation(self, where)  # the same per-channel checks as a 1-D batchnorm


@dataclass(eq=False)
class PRelu(Layer):
    kind: ClassVar[str] = "prelu"
    alpha: np.ndarray  # [1] shared or [size] per channel
    size: int = 0

    in_size = property(lambda self: int(self.size))
    out_size = in_size

    def expected_shapes(self):
        return {"alpha": (self.alpha.shape[0] if self.alpha.shape[:1] == (1,) else self.size,)}


@dataclass(eq=False)
class Activation(Layer):
    kind: ClassVar[str] = "activation"
    activation: str = ""
    size: int = 0

    in_size = property(lambda self: int(self.size))
    out_size = in_size

    def expected_shapes(self):
        return {}

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.activation == "":
            raise InputError("a standalone activation layer needs a function name", where=f"{where}/activation")


@dataclass(eq=False)
class Merge(Layer):
    """Base of the weightless merge/split kinds. ``sizes`` are the sizes of the values read, in order
    (filled from the wiring by :meth:`Model.validate`; producers may leave them empty)."""

    #: (minimum, maximum) number of inputs; None = unbounded.
    arity: ClassVar[tuple[int, int | None]] = (2, 2)
    sizes: tuple[int, ...] = ()

    in_size = property(lambda self: int(self.sizes[0]) if self.sizes else 0)

    @property
    def out_size(self) -> int:
        return self.in_size

    def expected_shapes(self):
        return {}

    def validate(self, where: str) -> None:
        low, high = self.arity
        if len(self.sizes) < low or (high is not None and len(self.sizes) > high):
            expected = f"{low}" if low == high else f"at least {low}"
            raise InputError(f"reads {len(self.sizes)} values, expected {expected}", where=f"{where}/inputs")
        self.validate_sizes(where)
        super().validate(where)

    def validate_sizes(self, where: str) -> None:
        if len(set(self.sizes)) != 1:
            raise InputError(f"inputs have different sizes {list(self.sizes)}; an elementwise {self.kind} needs equal sizes",
                             where=f"{where}/inputs")


@dataclass(eq=False)
class Add(Merge):
    kind: ClassVar[str] = "add"
    arity: ClassVar[tuple[int, int | None]] = (2, None)


@dataclass(eq=False)
class Sub(Merge):
    kind: ClassVar[str] = "sub"


@dataclass(eq=False)
class Mul(Merge):
    kind: ClassVar[str] = "mul"


@dataclass(eq=False)
class Concat(Merge):
    kind: ClassVar[str] = "concat"
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    @property
    def out_size(self) -> int:
        return int(sum(self.sizes))

    def validate_sizes(self, where: str) -> None:
        pass


@dataclass(eq=False)
class Slice(Merge):
    kind: ClassVar[str] = "slice"
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    start: int = 0
    size: int = 0

    @property
    def out_size(self) -> int:
        return int(self.size)

    def validate_sizes(self, where: str) -> None:
        if not (isinstance(self.start, int) and isinstance(self.size, int) and self.start >= 0 and self.size >= 1
                and self.start + self.size <= self.sizes[0]):
            raise InputError(f"features [{self.start}, {self.start}+{self.size}) are not inside the {self.sizes[0]} "
                             "features it reads", where=f"{where}/start")


MERGE_TYPES: dict[str, type[Merge]] = {cls.kind: cls for cls in (Add, Sub, Mul, Concat, Slice)}
LAYER_TYPES: dict[str, type[Layer]] = {cls.kind: cls for cls in (Dense, LSTM, GRU, Conv1D, BatchNorm, PRelu, Activation,
                                                                Conv2D, BatchNorm2D)}


@dataclass(eq=False)
class Model:
    """A model: ``input_size`` features per frame through ``layers``, a DAG in topological order (see the
    module docstring for the wiring; a sequential stack is the case where every layer reads the previous value).

    ``metadata`` holds extra top-level JSON keys (producer, reference input/output); RTNeural ignores them.
    """

    input_size: int
    layers: list[Layer]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def output_size(self) -> int:
        return self.layers[-1].out_size if self.layers else self.input_size

    def parameter_count(self) -> int:
        return sum(layer.parameter_count() for layer in self.layers)

    def wiring(self) -> list[tuple[int, ...]]:
        """The values each layer reads (0 = model input, i + 1 = output of layers[i]), defaults resolved."""
        return [tuple(layer.inputs) if layer.inputs else (index,) for index, layer in enumerate(self.layers)]

    def is_sequential(self) -> bool:
        """True when every layer reads exactly the previous value and is an RTNeural layer: a plain RTNeural
        stack (a path through a ``slice`` is not one: RTNeural has no such layer)."""
        return all(inputs == (index,) and not isinstance(layer, Merge)
                   for index, (layer, inputs) in enumerate(zip(self.layers, self.wiring())))

    def validate(self) -> "Model":
        """Check every layer, the wiring and that sizes agree; raise :class:`InputError` naming the layer."""
        if not isinstance(self.input_size, int) or not 0 < self.input_size <= MAX_LAYER_SIZE:
            raise InputError(f"input size {self.input_size!r} outside 1..{MAX_LAYER_SIZE}", where="in_shape")
        if not self.layers:
            raise InputError("the model has no layers", where="layers")
        sizes = [self.input_size]
        readers = [0] * (len(self.layers) + 1)
        for index, (layer, inputs) in enumerate(zip(self.layers, self.wiring())):
            where = layer_where(index, layer)
            if not inputs or any(not isinstance(value, int) or not 0 <= value <= index for value in inputs):
                raise InputError(f"reads values {list(inputs)}; a layer may only read the input (0) or an earlier "
                                 f"layer's output (1..{index})", where=f"{where}/inputs")
            for value in inputs:
                readers[value] += 1
            if isinstance(layer, Merge):
                layer.sizes = tuple(sizes[value] for value in inputs)
                layer.validate(where)
            else:
                if len(inputs) != 1:
                    raise InputError(f"a {layer.kind} layer reads one value, got {len(inputs)}", where=f"{where}/inputs")
                layer.validate(where)
                if layer.in_size != sizes[inputs[0]]:
                    source = "the model input" if inputs[0] == 0 else f"layers[{inputs[0] - 1}]"
                    previous = "the previous layer" if inputs == (index,) else source
                    raise InputError(f"takes {layer.in_size} inputs but {previous} gives {sizes[inputs[0]]}", where=where)
            sizes.append(layer.out_size)
        unused = [value for value in range(len(self.layers)) if readers[value] == 0]
        if unused:
            value = unused[0]
            name = "the model input" if value == 0 else layer_where(value - 1, self.layers[value - 1])
            raise InputError(f"{name} is computed but never read (a dead branch); the output is the last layer",
                             where="layers" if value == 0 else name)
        return self


def layer_where(index: int, layer: Layer) -> str:
    """The ``WHERE`` part of a message about a layer: ``layers[3] (lstm 'node_name')``."""
    source = f" '{layer.source}'" if layer.source else ""
    return f"layers[{index}] ({layer.kind}{source})"
