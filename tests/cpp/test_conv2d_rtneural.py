"""conv2d and batchnorm2d in the real RTNeural: the dynamic parser, ``ModelT::parseJson`` into the
``kelly-tc cpp`` header's ``Conv2DT``/``BatchNorm2DT`` types, and the embedded-weights setters, with the
STL and Eigen backends, frame for frame against the reference engine (tolerance: conftest.TOLERANCE);
and one converted PyTorch CRNN through ``check --rtneural`` against onnxruntime.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from reference_engine.model import load_engine
from tests.conftest import require_modules
from tests.cpp.conftest import TOLERANCE
from toolchain.cpp.apis import rtneural_check
from toolchain.layers import GRU, BatchNorm2D, Conv2D, Dense, Model, f32
from toolchain.rtneural_json import write_model

pytestmark = pytest.mark.cpp


def _conv(rng, features, cin, cout, kt, kf, dilation=1, stride=1, valid=True, activation=""):
    return Conv2D(f32(rng.normal(size=(cout, cin, kt, kf)) / np.sqrt(cin * kt * kf)), f32(rng.normal(size=cout) * 0.1),
                  num_features_in=features, dilation=dilation, stride=stride, valid_pad=valid, activation=activation)


def _norm(rng, features, channels):
    return BatchNorm2D(f32(rng.uniform(0.5, 1.5, channels)), f32(rng.uniform(-0.5, 0.5, channels)),
                       f32(rng.uniform(-0.5, 0.5, channels)), f32(rng.uniform(0.5, 2.0, channels)), num_features=features)


def crnn(rng) -> Model:
    """conv2d (same, stride 2, dilation 2, relu) -> BN2d -> conv2d (valid, square 3x3) -> GRU -> dense softmax; odd sizes."""
    first = _conv(rng, 13, 2, 5, 3, 3, dilation=2, stride=2, valid=False, activation="relu")  # 13x2 -> 7x5
    norm = _norm(rng, 7, 5)
    second = _conv(rng, 7, 5, 3, 3, 3)  # 7x5 -> 5x3
    gru = GRU(f32(rng.normal(size=(21, 15)) * 0.3), f32(rng.normal(size=(21, 7)) * 0.3), f32(rng.normal(size=21) * 0.1),
              f32(rng.normal(size=21) * 0.1))
    head = Dense(f32(rng.normal(size=(5, 7))), f32(rng.normal(size=5)), activation="softmax")
    return Model(26, [first, norm, second, gru, head])


def map_out(rng) -> Model:
    """BN2d first (a non-affine file: [mean, var] only), conv2d same with an even kernel (4) and stride 3: a map out."""
    norm = _norm(rng, 9, 3)
    norm.gamma, norm.beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    return Model(27, [norm, _conv(rng, 9, 3, 4, 2, 4, dilation=3, stride=3, valid=False, activation="tanh")])


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv2d_cpp")
    files = {}
    for name, build in (("crnn", crnn), ("map_out", map_out)):
        path = folder / f"{name}.json"
        write_model(build(np.random.default_rng(len(name))), path)
        if name == "map_out":  # RTNeural's non-affine layout: weights [mean, var]
            document = json.loads(path.read_text())
            document["layers"][0]["weights"] = document["layers"][0]["weights"][2:]
            path.write_text(json.dumps(document))
        files[name] = path
    return files


@pytest.mark.parametrize("name", ["crnn", "map_out"])
def test_every_rtneural_api_matches_the_engine(model_files, rtneural_src, backend, name, verified):
    path = model_files[name]
    engine = load_engine(path)
    frames = np.random.default_rng(7).normal(size=(40, engine.input_size)).astype(np.float32)
    engine.reset()
    expected = engine.run(frames)
    outputs = rtneural_check(path, frames, src=rtneural_src, apis=("dynamic", "compile-time", "embedded"), backend=backend)
    for api, values in outputs.items():
        error = float(np.abs(values - expected).max())
        verified(f"conv2d {api} ({backend})", name, error)
        assert error <= TOLERANCE, (api, backend, error)


@pytest.mark.torch
def test_a_converted_pytorch_crnn_matches_onnxruntime_in_rtneural(tmp_path, rtneural_src):
    require_modules("torch")
    import torch

    from tests.fixtures.conv2d_models import CRNN, export, randomize_2d_
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    torch.manual_seed(5)
    model = randomize_2d_(CRNN())
    onnx_path = export(model, model.example(20), tmp_path / "crnn.onnx", "legacy")
    convert_file(onnx_path, tmp_path / "crnn.json")
    report = check_files(onnx_path, tmp_path / "crnn.json", frames=47, rtneural=rtneural_src)
    labels = [c.label for c in report.comparisons]
    for api in ("dynamic", "compile-time"):
        assert f"RTNeural {api} vs onnxruntime" in labels
    assert report.passed, [(c.label, c.max_abs_error) for c in report.comparisons]
