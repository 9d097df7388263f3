"""End to end: torch models of every layer kind, both exporters, converted and checked.

The catalogue (tests/fixtures/catalog.py) is exported and converted once per session. Tolerance
1e-5 absolute (float32; measured worst case ~1.2e-7 over these models).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from reference_engine.model import load_engine
from tests.fixtures.catalog import ENTRY_IDS, REACH_ENTRY_IDS, TIME_STEPS

ALL_IDS = ENTRY_IDS + REACH_ENTRY_IDS
from toolchain.check import check_files
from toolchain.rtneural_json import read_model

ATOL = 1e-5

pytestmark = pytest.mark.torch


def kinds(model) -> list[str]:
    return [layer.kind + (f":{layer.activation}" if getattr(layer, "activation", "") else "") for layer in model.layers]


@pytest.mark.parametrize("entry_id", ALL_IDS)
def test_converts_to_the_expected_layer_list(converted_catalog, entry_id):
    entry = converted_catalog.entry(entry_id)
    assert kinds(read_model(entry.json_path)) == list(entry.kinds)


@pytest.mark.parametrize("entry_id", ALL_IDS)
def test_check_passes_including_the_half_way_reset(converted_catalog, entry_id):
    entry = converted_catalog.entry(entry_id)
    report = check_files(entry.onnx_path, entry.json_path, frames=50, atol=ATOL)
    assert [c.label for c in report.comparisons] == ["stream", "after reset at frame 25"]
    assert report.runtime == "onnxruntime"
    assert report.passed, report.to_json()
    assert all(c.cosine_similarity > 0.999999 for c in report.comparisons)


@pytest.mark.parametrize("entry_id", ALL_IDS)
def test_engine_reproduces_torch_frame_by_frame(converted_catalog, entry_id):
    entry = converted_catalog.entry(entry_id)
    engine = load_engine(entry.json_path)
    engine.reset()
    outputs = np.stack([engine.forward(frame).copy() for frame in entry.frames])
    np.testing.assert_allclose(outputs, entry.torch_output, atol=ATOL, rtol=0)


@pytest.mark.parametrize("entry_id", ALL_IDS)
def test_json_records_where_it_came_from(converted_catalog, entry_id):
    entry = converted_catalog.entry(entry_id)
    metadata = json.loads(entry.json_path.read_text())["kelly_tc"]
    assert metadata["source"] == entry.onnx_path.name
    assert (metadata["input"], metadata["output"]) == ("x", "y")
    # dynamo fixes the sequence length to the example's unless dynamic_shapes names it; TorchScript with
    # dynamic_axes keeps it free, without them fixes it.
    assert metadata["io"]["fixed_time"] == (None if entry.exporter in ("legacy", "dynamo-dynamic") else TIME_STEPS)


def test_catalogue_covers_every_layer_kind_and_both_exporters(converted_catalog):
    covered = {kind.split(":")[0] for entry in converted_catalog for kind in entry.kinds}
    assert covered == {"dense", "lstm", "gru", "conv1d", "batchnorm", "prelu", "activation"}
    assert {entry.exporter for entry in converted_catalog} == {"legacy", "legacy-static", "dynamo", "dynamo-dynamic", "dynamo-external"}
    external = converted_catalog.entry("mixed_stack-dynamo-external")
    assert external.onnx_path.with_name(external.onnx_path.name + ".data").is_file()
