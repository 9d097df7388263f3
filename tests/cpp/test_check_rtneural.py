"""``kelly-tc check MODEL.onnx MODEL.json --rtneural SRC``: the real RTNeural as a third column."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from toolchain.check import check_files
from toolchain.cli import app


@pytest.mark.cpp
@pytest.mark.parametrize("entry_id", ["mixed_stack-legacy", "mixed_stack-dynamo"])  # dynamo: fixed length, chunked
def test_both_rtneural_apis_match_onnxruntime_and_the_engine(converted_catalog, rtneural_src, entry_id):
    entry = converted_catalog.entry(entry_id)
    report = check_files(entry.onnx_path, entry.json_path, frames=47, rtneural=rtneural_src)
    labels = [c.label for c in report.comparisons]
    for api in ("dynamic", "compile-time"):
        assert f"RTNeural {api} vs {report.runtime}" in labels and f"RTNeural {api} vs engine" in labels
    assert report.passed, [(c.label, c.max_abs_error) for c in report.comparisons]


@pytest.mark.cpp
def test_the_check_command_shows_the_rtneural_rows(converted_catalog, rtneural_src):
    entry = converted_catalog.entry("mixed_stack-legacy")
    result = CliRunner().invoke(app, ["check", str(entry.onnx_path), str(entry.json_path), "--rtneural", str(rtneural_src)],
                                env={"COLUMNS": "250"})  # one table row per line
    assert result.exit_code == 0, result.output
    assert "RTNeural dynamic vs onnxruntime" in result.stdout and "RTNeural compile-time vs engine" in result.stdout
