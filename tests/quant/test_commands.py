"""``kelly-tc quantize`` and ``kelly-tc prune``: files out, reports, one-line errors."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from quant import calibration
from tests.quant.conftest import outputs


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


@pytest.fixture
def saved(catalog, tmp_path):
    def save(kind):
        path = tmp_path / f"{kind}.onnx"
        onnx.save(catalog[kind], str(path))
        return path
    return save


def test_quantize_writes_a_runnable_int8_model_and_a_report_next_to_quantize_dynamic(saved, tmp_path):
    model = saved("mixed")
    result = invoke("quantize", model, "--int8", "-o", tmp_path / "q.onnx", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    quantized = onnx.load(str(tmp_path / "q.onnx"))
    assert {t.data_type for t in quantized.graph.initializer} >= {onnx.TensorProto.INT8}
    assert report["size"]["int8"]["weight_bytes"] < 0.5 * report["size"]["float"]["weight_bytes"]
    (name, figures), = report["accuracy"].items()
    assert figures["cosine"] > 0.999 and figures["max_abs"] > 0
    dynamic = report["onnxruntime_quantize_dynamic"]
    assert dynamic["status"] == "ok" and name in dynamic["accuracy"]
    assert any("(GRU)" in node for node in dynamic["float_nodes"])  # onnxruntime never quantizes GRU
    assert "com.microsoft.DynamicQuantizeLSTM" in dynamic["non_standard_ops"]  # LSTM only to a contrib op
    assert "quantize_dynamic left in float" in result.stdout


def test_quantize_with_calibration_file_and_activations_measures_on_that_input(saved, tmp_path):
    model = saved("conv1d")
    samples = np.random.default_rng(7).standard_normal((3, 1, 3, 21)).astype(np.float32)  # 3 samples [1, C, T]
    np.save(tmp_path / "calibration.npy", samples)
    result = invoke("quantize", model, "--int8", "--activations", "--method", "percentile", "--calibration",
                    tmp_path / "calibration.npy", "--report", tmp_path / "r.json", "--no-compare")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert "3 samples" in report["input"] and report["activations"]["method"] == "percentile"
    assert len(report["activations"]["tensors"]) == 3  # the input of each of the three convs
    quantized = onnx.load(str(model.with_suffix(".int8.onnx")))
    assert sum(n.op_type == "QuantizeLinear" for n in quantized.graph.node) == 3
    assert outputs(quantized, [{"x": samples[0]}])[0]  # runs in onnxruntime


@pytest.mark.parametrize("arguments,message", [
    (["missing.onnx", "--int8"], "missing.onnx: no such file"),
    (["{model}"], "choose the target format: --int8"),
    (["{model}", "--int8", "--calibration", "{bad_npy}"], "'x' has shape [4, 5]; the model input has 3 dims"),
    (["{not_onnx}", "--int8"], "not an ONNX model"),
], ids=["missing", "no-format", "wrong-calibration-shape", "not-onnx"])
def test_quantize_bad_input_is_one_line_and_exit_2_and_writes_nothing(saved, tmp_path, arguments, message):
    model = saved("lstm")
    np.save(tmp_path / "bad.npy", np.zeros((4, 5), np.float32))
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf\xff" * 3)
    names = {"model": model, "bad_npy": tmp_path / "bad.npy", "not_onnx": tmp_path / "junk.onnx"}
    result = invoke("quantize", *[a.format(**names) for a in arguments])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not model.with_suffix(".int8.onnx").exists()


def test_prune_writes_a_smaller_model_and_reports_params_accuracy_and_engine_latency(saved, tmp_path):
    model = saved("lstm_stack")
    result = invoke("prune", model, "--amount", "0.5", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["size"]["ratio"]["parameters"] < 0.55
    assert [entry["units_after"] for entry in report["pruned_layers"]] == [6, 6]
    assert 0 < report["latency"]["ratio"], report["latency"]
    pruned = onnx.load(str(model.with_suffix(".pruned.onnx")))
    samples = calibration.random_samples(pruned, count=1)
    assert outputs(pruned, samples)[0]["add_out23"].shape[-1] == 3


def test_prune_unstructured_reports_sparsity_and_keeps_the_size(saved, tmp_path):
    result = invoke("prune", saved("gru"), "--unstructured", "--amount", "0.7", "--criterion", "l1",
                    "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["size"]["ratio"]["parameters"] == 1.0
    assert report["sparsity"]["overall"] == pytest.approx(0.7, abs=0.01)
    assert "latency" not in report


@pytest.mark.parametrize("arguments,message", [
    (["--amount", "1.5"], "amount 1.5 must be in [0, 1)"),
    (["--criterion", "l3"], "unknown criterion 'l3'"),
], ids=["amount", "criterion"])
def test_prune_bad_options_are_one_line_errors(saved, arguments, message):
    result = invoke("prune", saved("gemm"), "--no-latency", *arguments)
    assert result.exit_code == 2 and message in result.stderr, result.output
