"""The conv2d/batchnorm2d test models (tests/fixtures/conv2d_models.py) in every export mode: the error vs
onnxruntime (``check``, with its half-way reset) and, for each legacy export, the real RTNeural's
dynamic and compile-time APIs (STL and Eigen) vs the engine on 47 random frames.

    RTNEURAL_SRC=../shared/rtneural-cpp python -m bench.conv2d_models     # minutes: C++ builds

Without ``RTNEURAL_SRC`` only the onnxruntime columns are measured. Seeds as in tests/toolchain/test_conv2d.py.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import torch

    from reference_engine.model import load_engine
    from tests.fixtures.conv2d_models import EXPORT_MODES, MODELS, TIME_STEPS, export, randomize_2d_
    from toolchain.check import check_files
    from toolchain.convert import convert_file
    from toolchain.cpp.apis import rtneural_check

    folder = Path(tempfile.mkdtemp(prefix="conv2d_models_"))
    source = os.environ.get("RTNEURAL_SRC")
    for index, (name, cls) in enumerate(MODELS.items()):
        torch.manual_seed(2000 + index)
        model = randomize_2d_(cls())
        example = model.example(TIME_STEPS)
        for mode in EXPORT_MODES:
            onnx_path = export(model, example, folder / f"{name}-{mode}.onnx", mode)
            json_path = folder / f"{name}-{mode}.json"
            convert_file(onnx_path, json_path)
            report = check_files(onnx_path, json_path, frames=None if mode == "dynamo" else 50)
            row = f"{name:20s} {mode:15s} " + " ".join(f"{c.label}={c.max_abs_error:.2e}" for c in report.comparisons)
            if mode == "legacy" and source:
                engine = load_engine(json_path)
                frames = np.random.default_rng(3).normal(size=(47, engine.input_size)).astype(np.float32)
                engine.reset()
                expected = engine.run(frames)
                for backend in ("stl", "eigen"):
                    outputs = rtneural_check(json_path, frames, src=source, apis=("dynamic", "compile-time"), backend=backend)
                    row += " " + " ".join(f"RTNeural-{api}-{backend}-vs-engine={np.abs(values - expected).max():.2e}"
                                          for api, values in outputs.items())
            print(row, flush=True)


if __name__ == "__main__":
    main()
