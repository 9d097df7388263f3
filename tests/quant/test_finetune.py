"""Fine-tuning a pruned Kelly model (``kelly-tc prune --finetune``) and the variants table."""
from __future__ import annotations

import numpy as np
import pytest

from quant import calibration
from quant.onnx_graph import load_model, save_model

pytestmark = pytest.mark.torch


def test_a_pruned_kelly_model_is_rebuilt_in_torch_with_its_weights(kelly_dynamics):
    import torch

    from quant.finetune import kelly_module
    from toolchain.onnx_import import import_onnx

    _, pruned = kelly_dynamics
    module = kelly_module(import_onnx(pruned).model)
    assert module.spec.name == "DynamicsEngine" and [layer.size for layer in module.spec.layers] == [32, 20, 16]
    frames = np.random.default_rng(0).uniform(-1, 1, (1, 12, 32)).astype(np.float32)
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(frames)).numpy()
    onnx_model = load_model(pruned)
    produced = calibration.run(onnx_model, calibration.rename_inputs([{"x": frames}], onnx_model))[0]
    np.testing.assert_allclose(next(iter(produced.values())), expected, atol=1e-5)  # onnxruntime vs torch


def test_finetuning_keeps_the_best_validation_epoch_and_writes_a_runnable_model(kelly_dynamics, tmp_path):
    from quant.finetune import finetune_file

    original, pruned = kelly_dynamics
    result = finetune_file(original, pruned, tmp_path / "tuned.onnx", epochs=2, source="synthetic")
    losses = result["validation_loss"]
    assert result["data"] == ["synthetic"] and len(result["validation_loss_per_epoch"]) == 2
    assert losses["finetuned"] == min([losses["pruned"]] + result["validation_loss_per_epoch"])
    tuned = load_model(tmp_path / "tuned.onnx")
    samples = calibration.rename_inputs(calibration.random_samples(load_model(pruned), count=1), tuned)
    assert next(iter(calibration.run(tuned, samples)[0].values())).shape[-1] == 16


def test_a_model_that_is_not_a_kelly_model_is_refused(catalog, tmp_path):
    from toolchain.errors import UnsupportedError
    from quant.finetune import kelly_spec_of
    from toolchain.onnx_import import import_onnx

    path = save_model(catalog["gru"], tmp_path / "gru.onnx")
    with pytest.raises(UnsupportedError, match="needs one of the five Kelly models"):
        kelly_spec_of(import_onnx(path).model)


def test_variants_table_gives_sizes_accuracy_and_latency_ratios(kelly_dynamics):
    from quant.summary import compare_variants

    original, _ = kelly_dynamics
    rows = compare_variants(original, amount=0.5)
    assert list(rows) == ["float", "int8", "pruned", "pruned+int8"]
    assert rows["float"]["cosine"] == pytest.approx(1.0, abs=1e-12) and rows["float"]["max_abs"] == 0.0
    assert rows["int8"]["cosine"] > 0.999 and rows["int8"]["engine_weight_ratio"] < 0.3
    assert rows["pruned"]["parameter_ratio"] < 0.55 and rows["pruned+int8"]["engine_weight_ratio"] < 0.1
    assert all(row["seconds_per_frame"] > 0 for row in rows.values())
