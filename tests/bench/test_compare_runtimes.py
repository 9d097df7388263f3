"""The runtime comparison: every runtime computes the engine's function (so the timings compare like with
like), and the script runs end to end in quick mode writing its JSON and Markdown. No timing is asserted."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import unavailable

from bench.runtimes import available
from reference_engine import synthetic

#: float32 runtimes with different summation orders and math libraries; outputs are O(1).
ATOL = 1e-5


@pytest.fixture(scope="module")
def every_kind_model():
    rng = np.random.default_rng(11)
    layers = [synthetic.dense(rng, 5, 12, "tanh"), synthetic.conv1d(rng, 12, 9, 3, 2, 3, "relu"),
              synthetic.batchnorm(rng, 9), synthetic.prelu(rng, 9), synthetic.lstm(rng, 9, 11),
              synthetic.gru(rng, 11, 7), synthetic.activation(7, "elu"), synthetic.conv1d(rng, 7, 6, 1),
              synthetic.dense(rng, 6, 4, "softmax")]
    return synthetic.model(5, layers)


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch", "numpy"])
def test_each_runtime_step_computes_what_the_engine_computes(every_kind_model, runtime):
    makers = available(("engine", runtime))
    if runtime not in makers:
        unavailable(f"{runtime} is not installed (pip install -e '.[dev]')")
    frames = np.random.default_rng(5).standard_normal((30, 5)).astype(np.float32)
    outputs = {}
    for name, make in makers.items():
        runner = make(every_kind_model)
        runner.reset()
        outputs[name] = np.array([np.array(runner.step(frame), copy=True) for frame in frames])
    np.testing.assert_allclose(outputs[runtime], outputs["engine"], atol=ATOL)


def test_quick_comparison_writes_json_and_markdown_for_every_model_and_runtime(tmp_path, monkeypatch):
    from bench.compare_runtimes import run

    monkeypatch.delenv("RTNEURAL_SRC", raising=False)  # the C++ RTNeural column is tested in tests/cpp (slow compile)

    report = run(quick=True, frames=40, warmup=4, rounds=2, out=tmp_path)
    document = json.loads((tmp_path / "compare_runtimes.json").read_text())
    assert document == json.loads(json.dumps(report))
    names = [row["model"] for row in document["models"]]
    assert names[:5] == ["dense 128->64", "lstm 64", "gru 64", "conv1d 16ch k3 d2", "per-sample LSTM-12 + dense"]
    assert len(names) == 7
    runtimes = set(available())
    for row in document["models"] + [document["pipeline"]]:
        assert set(row["latency_us"]) == runtimes
        assert set(row["ratios_p50"]) == {f"engine/{r}" for r in runtimes - {"engine"}}
    for row in document["models"]:
        assert all(error <= 1e-4 for error in row["agreement_max_abs_error"].values())
        assert row["blas_us"] > 0 and row["achieved_gflop_per_s"] > 0
        block = row["block_64"]
        assert block["block"] == 64 and set(block["latency_us"]) == {"engine"}  # RTNeural only with RTNEURAL_SRC
        assert block["latency_us"]["engine"]["p50"] <= block["latency_us"]["engine"]["p99"]
    markdown = (tmp_path / "compare_runtimes.md").read_text()
    assert markdown.count("\n| ") == len(names) + 2  # header + one row per model + the pipeline


def test_quick_runs_never_write_the_committed_results(monkeypatch):
    from bench import compare_runtimes

    with pytest.raises(SystemExit, match="never writes bench/results"):
        compare_runtimes.run(quick=True, frames=4, out=compare_runtimes.RESULTS)
    assert compare_runtimes.QUICK_RESULTS.resolve() != compare_runtimes.RESULTS.resolve()
