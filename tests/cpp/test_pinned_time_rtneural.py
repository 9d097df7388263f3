"""The real RTNeural runs what kelly-tc converts from a time-major RNN exported by dynamo with dynamic_shapes (whose
graph torch 2.13 pins to the example's length): both RTNeural APIs against onnxruntime, in runs of that length."""
from __future__ import annotations

import pytest

from toolchain.check import check_files
from toolchain.convert import convert_file


@pytest.mark.cpp
@pytest.mark.torch
def test_a_time_major_dynamo_export_with_a_pinned_length_runs_in_real_rtneural(tmp_path, rtneural_src):
    from tests.conftest import require_modules

    require_modules("torch", "onnxscript")
    import torch

    from tests.fixtures.export import export_dynamo
    from tests.fixtures.torch_models import TimeMajorSquareHead

    torch.manual_seed(11)
    path = export_dynamo(TimeMajorSquareHead().eval(), torch.randn(20, 1, 7), tmp_path / "tm.onnx", time_axis=0)
    model = convert_file(path, tmp_path / "tm.json")
    assert model.metadata["kelly_tc"]["io"]["fixed_time"] == 20
    report = check_files(path, tmp_path / "tm.json", frames=47, rtneural=rtneural_src)
    labels = [c.label for c in report.comparisons]
    for api in ("dynamic", "compile-time"):
        assert f"RTNeural {api} vs {report.runtime}" in labels and f"RTNeural {api} vs engine" in labels
    assert report.passed and report.chunk == 20, [(c.label, c.max_abs_error) for c in report.comparisons]
