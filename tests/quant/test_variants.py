"""The pipeline's compressed variants (``quant.variants``): INT8, pruned and pruned+INT8 model folders."""
from __future__ import annotations

import pytest

from quant import int8_json
from quant.variants import write_variants

pytestmark = pytest.mark.torch


def test_variant_folders_hold_checked_models_the_pipeline_loads(kelly_dynamics, tmp_path):
    from reference_engine.pipeline import load_stage
    from toolchain.kelly.validate import validate_directory

    original, _ = kelly_dynamics
    folders = write_variants(original.parent, tmp_path, ["DynamicsEngine"])
    assert [f.name for f in folders] == ["int8", "pruned", "pruned+int8"]
    for folder in folders:
        assert folder.problems == []  # each JSON matches its own ONNX within 1e-5 (toolchain.check)
        json_path = folder.directory / "DynamicsEngine.json"
        assert int8_json.is_int8_json(json_path) == folder.name.endswith("int8")
        assert validate_directory(folder.directory, names=["DynamicsEngine"]).models[0].status == "ok"
        _, status = load_stage(folder.directory, "DynamicsEngine", 1e-5)
        assert status.source == "model"  # not the fallback
        (_, error_vs_float), = folder.errors.values()
        assert 0 < error_vs_float < (0.05 if folder.name == "int8" else 1.0)
