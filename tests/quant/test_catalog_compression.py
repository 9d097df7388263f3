"""Compression of torch-exported models (both exporters): INT8 and pruned models run in onnxruntime,
convert to RTNeural JSON, and the reference engine matches onnxruntime on them (``check``)."""
from __future__ import annotations

import pytest

from quant import calibration, int8, prune
from quant.onnx_graph import load_model, parameter_count, save_model
from tests.fixtures.catalog import ENTRY_IDS
from tests.quant.conftest import max_difference, outputs
from tests.quant.test_prune_structured import FLOAT_TOLERANCE, _zero_units

pytestmark = pytest.mark.torch

#: check's tolerance: the converted JSON against onnxruntime on the same (compressed) ONNX model.
CHECK_ATOL = 1e-5


def _convert_and_check(model, path):
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    save_model(model, path)
    convert_file(path, path.with_suffix(".json"))
    return check_files(path, path.with_suffix(".json"), atol=CHECK_ATOL)


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_int8_model_converts_and_the_engine_matches_onnxruntime(converted_catalog, entry_id, tmp_path):
    entry = converted_catalog.entry(entry_id)
    model = load_model(entry.onnx_path)
    report = _convert_and_check(int8.quantize_weights(model).model, tmp_path / "int8.onnx")
    assert report.passed, report.worst_abs_error


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_pruned_model_converts_and_the_engine_matches_onnxruntime(converted_catalog, entry_id, tmp_path):
    entry = converted_catalog.entry(entry_id)
    result = prune.structured_prune(load_model(entry.onnx_path), 0.5)
    report = _convert_and_check(result.model, tmp_path / "pruned.onnx")
    assert report.passed, report.worst_abs_error


#: Exports where every hidden layer can be pruned (the others end in the output layer or a grouped conv).
PRUNABLE = [i for i in ENTRY_IDS if i.split("-")[0] in
            ("dense_stack", "lstm_batch_first", "lstm_time_major_2_layers_no_bias", "gru_batch_first_2_layers_softmax", "mixed_stack")]


#: Zero incoming weights make a unit output 0 only if every op up to its reader maps 0 to 0: the
#: mixed stack's BatchNorm after its LSTM does not (0 -> beta - mean * gamma / sqrt(var + eps)).
ZERO_CASES = [(i, True) for i in PRUNABLE if not i.startswith("mixed_stack")] + [(i, False) for i in PRUNABLE]


@pytest.mark.parametrize("entry_id,incoming", ZERO_CASES,
                         ids=[f"{i}-{'zero-incoming' if z else 'zero-outgoing'}" for i, z in ZERO_CASES])
def test_exported_models_lose_their_zero_units_exactly(converted_catalog, entry_id, incoming):
    # Through each exporter's own graph: TorchScript's zero states from ConstantOfShape, dynamo's
    # Transpose/Reshape around recurrent layers, the Squeeze of the direction axis, bias Adds.
    model = _zero_units(load_model(converted_catalog.entry(entry_id).onnx_path), units=4, incoming=incoming)
    result = prune.structured_prune(model, 0.125)  # 1 <= floor(0.125 * n) <= 4 for 8 <= n <= 37
    assert result.pruned
    assert parameter_count(result.model) < parameter_count(model)
    samples = calibration.random_samples(model, count=2)
    assert max_difference(outputs(model, samples), outputs(result.model, samples)) < FLOAT_TOLERANCE
