"""Fuzzing in the normal test run (bounded; the long run is ``python -m tests.hostile.fuzz``): mutated
valid ONNX files and RTNeural/INT8 JSON files raise nothing but the project's own one-line KellyError,
and whatever loads also writes back, reads back and runs (tests/hostile/fuzz.py says how)."""
from __future__ import annotations

import os
from collections import Counter

from tests.hostile import fuzz

#: Mutated files per loader in the test run (~20 s together on a busy 2-core machine); the same
#: examples every run (derandomized), so a failure here reproduces.
ONNX_EXAMPLES = int(os.environ.get("KELLY_TC_FUZZ_ONNX_EXAMPLES", 2000))
JSON_EXAMPLES = int(os.environ.get("KELLY_TC_FUZZ_JSON_EXAMPLES", 800))


def test_mutated_onnx_files_raise_only_kelly_errors(tmp_path):
    counts = Counter()
    with fuzz.memory_headroom(2):  # an unguarded multi-GiB allocation fails as MemoryError, a bug
        fuzz.run("onnx", ONNX_EXAMPLES, tmp_path, counts, derandomize=True)
    assert sum(counts.values()) >= ONNX_EXAMPLES * 0.9  # hypothesis ran (almost) every example
    assert counts["refused"] and counts["accepted"], counts  # both paths were exercised


def test_mutated_json_model_files_raise_only_kelly_errors(tmp_path):
    counts = Counter()
    with fuzz.memory_headroom(2):
        fuzz.run("json", JSON_EXAMPLES, tmp_path, counts, derandomize=True)
    assert sum(counts.values()) >= JSON_EXAMPLES * 0.9
    assert counts["refused"] and counts["accepted"], counts
