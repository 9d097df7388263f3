"""INT8 quantization and structured pruning of graph ONNX models.

- ``quantize --int8`` then ``convert --int8 --check``: the float file and the INT8 file (a graph file with
  int8 layer objects, or an in_skip file) both match the quantized ONNX within 1e-5 (the INT8 kernels
  compute the same dequantized products; tests/quant states the same bound for stacks).
- structured pruning follows units across merges (tests/graphs/test_prune_graphs.py has the details); through
  the ``prune`` command the report names the joined layers and the layers kept (the heads that reach the
  graph output), and the pruned model still converts and matches.
"""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import require_modules


@pytest.fixture(scope="module")
def legacy_exports(tmp_path_factory):
    require_modules("torch", "onnxscript")
    from tests.fixtures import graph_models as gm
    from tests.fixtures.export import export_legacy

    folder = tmp_path_factory.mktemp("graph_compression")
    paths = {}
    for name in ("wavenet", "simplernn_gru_2in", "dense_residual", "tcn"):
        _, layout, features, _ = gm.PATTERNS[name]
        paths[name] = export_legacy(gm.build(name), gm.example(layout, features), folder / f"{name}.onnx",
                                    {0: "batch", 1 if layout == "btf" else 2: "time"})
    return paths


@pytest.mark.parametrize("name", ["wavenet", "simplernn_gru_2in"])
def test_int8_graph_model_converts_and_runs(name, legacy_exports):
    from quant.int8_json import is_int8_json, read_int8_model
    from toolchain.cli import app
    from toolchain.graph_json import FORMAT

    source = legacy_exports[name]
    quantized = source.with_name(f"{name}.q.onnx")
    runner = CliRunner()
    result = runner.invoke(app, ["quantize", str(source), "--int8", "--no-compare", "-o", str(quantized)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["convert", str(quantized), "--int8", "--check", "--atol", "1e-5"])
    assert result.exit_code == 0, result.output
    int8_path = quantized.with_name(f"{name}.q.int8.json")
    assert is_int8_json(int8_path)
    document = json.loads(int8_path.read_text())
    if name == "wavenet":
        assert document["format"] == FORMAT and document["weights_format"] == "kelly-tc-int8"
        assert any("weights_int8" in node.get("layer", {}) for node in document["graph"]["nodes"])
    else:
        assert document["in_skip"] == 1 and all("weights_int8" in entry for entry in document["layers"])
    assert not read_int8_model(int8_path).model.is_sequential()


def test_prune_command_prunes_across_merges_and_reports_joined_layers(legacy_exports, tmp_path):
    from toolchain.check import check_files
    from toolchain.cli import app
    from toolchain.convert import convert_file

    for name, joined in (("dense_residual", {"/a/MatMul", "/b/MatMul"}), ("tcn", {"/blocks.1.1/conv/Conv", "/residuals.1/Conv"}),
                         ("wavenet", {"/input/Conv", "/residuals.0/Conv", "/residuals.1/Conv"})):
        source = legacy_exports[name]
        pruned, report = tmp_path / f"{name}.p.onnx", tmp_path / f"{name}.prune.json"
        result = CliRunner().invoke(app, ["prune", str(source), "--amount", "0.4", "--no-latency", "-o", str(pruned),
                                          "--report", str(report)])
        assert result.exit_code == 0, result.output
        figures = json.loads(report.read_text())
        assert joined <= {e["node"] for e in figures["pruned_layers"] if e.get("joined_with")}, figures["pruned_layers"]
        assert all("graph output" in entry["reason"] for entry in figures["kept_layers"]), figures["kept_layers"]
        assert "joined with" in result.output
        convert_file(pruned, tmp_path / f"{name}.p.json")
        assert check_files(pruned, tmp_path / f"{name}.p.json", frames=97, atol=1e-5).passed
