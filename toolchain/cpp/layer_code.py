"""Per layer kind: the RTNeural compile-time type(s) and the setter calls that load its weights.

One emitter per layer kind (RTNeural's names), registered in ``EMITTERS``; a kind without one is a
model the compile-time API cannot express and ``kelly-tc cpp`` refuses it. Each emitter returns:

- ``types``: the ``ModelT`` template arguments for the layer. RTNeural's compile-time API has no
  activation field: a dense or conv1d layer with an activation is TWO tuple entries, the layer then
  ``<Act>ActivationT`` (``ModelT::parseJson`` reads both from the same JSON entry: the layer's loader
  leaves the JSON index in place when ``activation`` is non-empty, the activation entry advances it);
- ``setters``: statements run on ``layer`` (the layer's tuple entry) in the embedded-weights loader,
  through RTNeural's own setters, with arrays laid out as each setter expects (documented per kind);
- ``eigen_elements``: the element count of the largest fixed-size Eigen matrix the layer holds with the Eigen backend
  (Eigen refuses fixed-size objects above ``EIGEN_STACK_ALLOCATION_LIMIT``, 128 KiB by default);
- ``loader``: statements that load ``layer`` from ``entry`` (its RTNeural JSON layer object) through
  RTNeural's own per-layer loaders (``RTNeural::json_parser::loadDense<T>`` and friends): how a graph
  header reads a graph file, where ``ModelT::parseJson`` cannot (it walks a flat ``layers`` array).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from toolchain.layers import GRU, LSTM, Activation, BatchNorm, BatchNorm2D, Conv1D, Conv2D, Dense, Layer, PRelu

#: RTNeural's compile-time activation classes, by our (= RTNeural JSON) activation name.
ACTIVATION_TYPES = {
    "tanh": "TanhActivationT",
    "relu": "ReLuActivationT",
    "sigmoid": "SigmoidActivationT",
    "softmax": "SoftmaxActivationT",
    "elu": "ELuActivationT",  # alpha fixed at 1, as RTNeural's JSON parser has it
}


class Arrays:
    """Collects the ``static const`` weight arrays of the embedded-weights header."""

    def __init__(self, scalar: str):
        self.scalar = scalar
        self.declarations: list[tuple[str, np.ndarray]] = []

    def add(self, name: str, values: np.ndarray) -> str:
        self.declarations.append((name, np.asarray(values, dtype=np.float32)))
        return f"detail::{name}"


@dataclass
class Emitted:
    types: list[str]
    setters: list[str] = field(default_factory=list)
    eigen_elements: int = 0
    loader: list[str] = field(default_factory=list)


#: kind -> emitter(layer, scalar, arrays or None (JSON loader), array name prefix, the layer's raw JSON
#: entry or None). The raw entry matters where the file layout decides the C++ type (batchnorm).
EMITTERS: dict[str, Callable[[Layer, str, Arrays | None, str, dict | None], Emitted]] = {}


def emitter(kind: str):
    def register(function):
        EMITTERS[kind] = function
        return function

    return register


#: RTNeural's per-layer JSON loaders, as called on ``layer`` from ``entry``.
JSON_PARSER = "RTNeural::json_parser"


def activation_types(activation: str, size: int, scalar: str) -> list[str]:
    return [f"RTNeural::{ACTIVATION_TYPES[activation]}<{scalar}, {size}>"] if activation else []


@emitter("dense")
def dense(layer: Dense, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    emitted = Emitted([f"RTNeural::DenseT<{scalar}, {layer.in_size}, {layer.out_size}>",
                       *activation_types(layer.activation, layer.out_size, scalar)],
                      eigen_elements=layer.out_size * (layer.in_size + 1),  # weights and bias in one matrix
                      loader=[f'{JSON_PARSER}::loadDense<{scalar}>(layer, entry.at("weights"));'])
    if arrays is not None:
        # DenseT::setWeights takes [out][in] (our canonical layout); setBias a pointer to [out].
        weight = arrays.add(f"{prefix}_weight", layer.weight)
        bias = arrays.add(f"{prefix}_bias", layer.bias)
        emitted.setters = [f"layer.setWeights(detail::rows({weight}, {layer.out_size}, {layer.in_size}));",
                           f"layer.setBias({bias});"]
    return emitted


@emitter("lstm")
def lstm(layer: LSTM, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    size, hidden = layer.in_size, layer.hidden_size
    emitted = Emitted([f"RTNeural::LSTMLayerT<{scalar}, {size}, {hidden}>"],
                      eigen_elements=4 * hidden * (size + hidden + 1),  # W, U and bias combined
                      loader=[f'{JSON_PARSER}::loadLSTM<{scalar}>(layer, entry.at("weights"));'])
    if arrays is not None:
        # setWVals takes [in][4H], setUVals [H][4H] (RTNeural JSON layouts, gates i,f,c,o), setBVals [4H].
        w = arrays.add(f"{prefix}_kernel", layer.weight_ih.T)
        u = arrays.add(f"{prefix}_recurrent", layer.weight_hh.T)
        b = arrays.add(f"{prefix}_bias", layer.bias)
        emitted.setters = [f"layer.setWVals(detail::rows({w}, {size}, {4 * hidden}));",
                           f"layer.setUVals(detail::rows({u}, {hidden}, {4 * hidden}));",
                           f"layer.setBVals(detail::row({b}, {4 * hidden}));"]
    return emitted


@emitter("gru")
def gru(layer: GRU, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    size, hidden = layer.in_size, layer.hidden_size
    emitted = Emitted([f"RTNeural::GRULayerT<{scalar}, {size}, {hidden}>"],
                      eigen_elements=3 * hidden * (max(size, hidden) + 1),
                      loader=[f'{JSON_PARSER}::loadGRU<{scalar}>(layer, entry.at("weights"));'])
    if arrays is not None:
        # setWVals [in][3H], setUVals [H][3H] (gates z,r,h), setBVals [2][3H]: input bias row, then
        # recurrent bias row (kept apart: the recurrent candidate bias sits inside r * (...)).
        w = arrays.add(f"{prefix}_kernel", layer.weight_ih.T)
        u = arrays.add(f"{prefix}_recurrent", layer.weight_hh.T)
        b = arrays.add(f"{prefix}_bias", np.stack([layer.bias_ih, layer.bias_hh]))
        emitted.setters = [f"layer.setWVals(detail::rows({w}, {size}, {3 * hidden}));",
                           f"layer.setUVals(detail::rows({u}, {hidden}, {3 * hidden}));",
                           f"layer.setBVals(detail::rows({b}, 2, {3 * hidden}));"]
    return emitted


@emitter("conv1d")
def conv1d(layer: Conv1D, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    taps, per_group = layer.kernel_size, layer.in_size // layer.groups
    state = (taps - 1) * layer.dilation + 1
    emitted = Emitted([f"RTNeural::Conv1DT<{scalar}, {layer.in_size}, {layer.out_size}, {taps}, {layer.dilation}, {layer.groups}>",
                       *activation_types(layer.activation, layer.out_size, scalar)],
                      eigen_elements=max(layer.in_size * state, per_group * taps),
                      # loadConv1D takes the kernel size and dilation as arguments (ModelT's loader reads them
                      # from the file); the header checks the file holds these before loading.
                      loader=[f'{JSON_PARSER}::loadConv1D<{scalar}>(layer, {taps}, {layer.dilation}, entry.at("weights"));'])
    if arrays is not None:
        # Conv1DT::setWeights takes [out][in/groups][K] with tap 0 = the CURRENT frame (RTNeural's JSON
        # loader reverses the file's taps before calling it); our tap K-1 is the current frame: reverse.
        weight = arrays.add(f"{prefix}_weight", layer.weight[:, :, ::-1])
        bias = arrays.add(f"{prefix}_bias", layer.bias)
        emitted.setters = [f"layer.setWeights(detail::cube({weight}, {layer.out_size}, {per_group}, {taps}));",
                           f"layer.setBias(detail::row({bias}, {layer.out_size}));"]
    return emitted


@emitter("batchnorm")
def batchnorm(layer: BatchNorm, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    size = layer.in_size
    # A file may store [mean, var] only; ModelT::parseJson then loads nothing into an affine
    # BatchNorm1DT (its check demands 4 arrays), so the type must say affine=false.
    affine = entry is None or len(entry.get("weights", ())) == 4
    emitted = Emitted([f"RTNeural::BatchNorm1DT<{scalar}, {size}{'' if affine else ', false'}>"], eigen_elements=size,
                      # the epsilon read as float, as ModelT's batchnorm loader does (also for double models)
                      loader=[f'{JSON_PARSER}::loadBatchNorm<{scalar}>(layer, entry.at("weights"));',
                              'layer.setEpsilon(entry.at("epsilon").get<float>());'])
    if arrays is not None:
        emitted.setters = batchnorm_setters(layer, scalar, arrays, prefix, affine, size)
    return emitted


def batchnorm_setters(layer, scalar: str, arrays: Arrays, prefix: str, affine: bool, size: int) -> list[str]:
    """The setters of a BatchNorm1DT / BatchNorm2DT (``size`` values per array: features or channels)."""
    setters = []
    fields = (("gamma", "setGamma"), ("beta", "setBeta")) if affine else ()
    for name, setter in fields + (("mean", "setRunningMean"), ("var", "setRunningVariance")):
        array = arrays.add(f"{prefix}_{name}", getattr(layer, name))
        setters.append(f"layer.{setter}(detail::row({array}, {size}));")
    # RTNeural's compile-time JSON loader reads epsilon as float even for double models: do the same.
    setters.append(f"layer.setEpsilon(({scalar}) {float(np.float32(layer.epsilon))!r});")
    return setters


@emitter("prelu")
def prelu(layer: PRelu, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    emitted = Emitted([f"RTNeural::PReLUActivationT<{scalar}, {layer.in_size}>"], eigen_elements=layer.in_size,
                      loader=[f'{JSON_PARSER}::loadPReLU<{scalar}>(layer, entry.at("weights"));'])
    if arrays is not None:
        # setAlphaVals broadcasts a single value and copies a per-channel vector.
        alpha = arrays.add(f"{prefix}_alpha", layer.alpha)
        emitted.setters = [f"layer.setAlphaVals(detail::row({alpha}, {layer.alpha.shape[0]}));"]
    return emitted


@emitter("activation")
def activation(layer: Activation, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    return Emitted(activation_types(layer.activation, layer.in_size, scalar), eigen_elements=layer.in_size)


@emitter("conv2d")
def conv2d(layer: Conv2D, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    cin, cout, kt, kf = layer.filters_in, layer.filters_out, layer.kernel_size_time, layer.kernel_size_feature
    valid = "true" if layer.valid_pad else "false"
    emitted = Emitted([f"RTNeural::Conv2DT<{scalar}, {cin}, {cout}, {layer.num_features_in}, {kt}, {kf}, {layer.dilation}, "
                       f"{layer.stride}, {valid}>", *activation_types(layer.activation, layer.out_size, scalar)],
                      eigen_elements=max(layer.out_size, layer.in_size, cout * cin * kf))
    if arrays is not None:
        # Conv2DT::setWeights takes [Kt][out][in][Kf], tap Kt-1 on the current frame as ours (no reversal:
        # RTNeural's loader copies the file's [Kt][Kf][in][out] without reordering the time taps).
        weight = arrays.add(f"{prefix}_weight", layer.weight.transpose(2, 0, 1, 3))
        bias = arrays.add(f"{prefix}_bias", layer.bias)
        emitted.setters = [f"layer.setWeights(detail::cubes({weight}, {kt}, {cout}, {cin}, {kf}));",
                           f"layer.setBias(detail::row({bias}, {cout}));"]
    return emitted


@emitter("batchnorm2d")
def batchnorm2d(layer: BatchNorm2D, scalar: str, arrays: Arrays | None, prefix: str, entry: dict | None = None) -> Emitted:
    channels = layer.channels
    affine = entry is None or len(entry.get("weights", ())) == 4  # as for batchnorm: the file's layout decides the type
    emitted = Emitted([f"RTNeural::BatchNorm2DT<{scalar}, {channels}, {layer.num_features}{'' if affine else ', false'}>"],
                      eigen_elements=layer.in_size)
    if arrays is not None:
        emitted.setters = batchnorm_setters(layer, scalar, arrays, prefix, affine, channels)
    return emitted
