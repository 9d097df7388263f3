"""Issue 11's torch patterns end to end in C++: PyTorch -> ONNX (both exporters) -> ``kelly-tc convert``
(graph or in_skip file) -> ``kelly-tc cpp`` -> compiled against the real RTNeural, compared frame by
frame with onnxruntime (an independent implementation of the ONNX model) and with the reference engine.

Tolerance: ``TOLERANCE`` (1e-5 absolute) for the float32 header against onnxruntime's float32 and the
engine's float32 -- the same products summed in different orders, measured ~1e-7 on these outputs.
A fixed-length (dynamo without ``dynamic_shapes``) export is compared chunk by chunk, the header reset
at every chunk as onnxruntime starts each run from zero state.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_modules
from tests.cpp.conftest import TOLERANCE, require_backend
from toolchain import graph_json
from toolchain.cpp.static_program import StaticModel, build_static_program
from toolchain.layers import f32

#: Every pattern through the legacy exporter; the two convolutional graphs through both dynamo modes
#: too (a dynamo export takes ~5 s: the converter's own tests cover every pattern with every exporter).
EXPORTS = {"legacy": None, "dynamo": "fixed", "dynamo_dynamic": "dynamic"}
CASES = [(name, "legacy") for name in ("simplernn_lstm_1in", "simplernn_lstm_2in", "simplernn_gru_1in", "simplernn_gru_2in",
                                       "tcn", "wavenet", "dense_residual", "concat_branches")] + \
        [(name, exporter) for name in ("tcn", "wavenet") for exporter in ("dynamo", "dynamo_dynamic")]
FRAMES = 53
#: Also compiled in double precision (float-vs-double spread of RTNeural itself, double against onnxruntime).
DOUBLE_CASES = ("wavenet-legacy", "tcn-legacy", "simplernn_gru_2in-legacy")


@dataclass(frozen=True)
class Converted:
    key: str
    onnx_path: Path
    json_path: Path
    frames: np.ndarray
    onnx_output: np.ndarray  # onnxruntime on frames (in chunks of fixed_time if the export fixes it)
    fixed_time: int | None


def _export(name: str, exporter: str, folder: Path) -> Path:
    from tests.fixtures import graph_models
    from tests.fixtures.export import export_dynamo, export_legacy

    _, layout, features, _ = graph_models.PATTERNS[name]
    model, example = graph_models.build(name), graph_models.example(layout, features)
    time_axis = 1 if layout == "btf" else 2
    path = folder / f"{name}-{exporter}.onnx"
    if exporter == "legacy":
        return export_legacy(model, example, path, {0: "batch", time_axis: "time"})
    return export_dynamo(model, example, path, time_axis=time_axis if exporter == "dynamo_dynamic" else None)


@pytest.fixture(scope="session")
def converted_patterns(tmp_path_factory) -> list[Converted]:
    require_modules("torch", "onnxscript")
    from toolchain.check import reference_session, run_onnx
    from toolchain.convert import convert_file
    from toolchain.onnx_import import import_model_proto, load_onnx

    folder, rng, converted = tmp_path_factory.mktemp("graph_onnx"), np.random.default_rng(31), []
    for name, exporter in CASES:
        onnx_path = _export(name, exporter, folder)
        json_path = onnx_path.with_suffix(".json")
        model = convert_file(onnx_path, json_path)
        proto = load_onnx(onnx_path)
        io = import_model_proto(proto, source=onnx_path.name).io
        frames = f32(rng.uniform(-1, 1, (FRAMES, model.input_size)))
        _, session = reference_session(proto)
        converted.append(Converted(f"{name}-{exporter}", onnx_path, json_path, frames, run_onnx(session, io, frames), io.fixed_time))
    return converted


def test_the_headers_cover_both_file_forms(converted_patterns):
    """The knob SimpleRNNs are in_skip files, the convolutional and dense graphs graph files (which form a
    1-input SimpleRNN takes is the converter's business: tests/graphs)."""
    forms = {c.key: graph_json.output_form(graph_json.read_model(c.json_path).validate()) for c in converted_patterns}
    assert forms["simplernn_lstm_2in-legacy"] == forms["simplernn_gru_2in-legacy"] == "in_skip"
    assert all(form == "graph" for key, form in forms.items() if not key.startswith("simplernn"))


@pytest.mark.cpp
@pytest.mark.parametrize("backend", ["stl", "eigen"])
def test_converted_graph_headers_match_onnxruntime_and_the_engine(backend, converted_patterns, rtneural_src, verified):
    from reference_engine.model import load_engine
    from toolchain.check import run_engine

    require_backend(backend, rtneural_src)
    # STL: every export, weights from the file; Eigen (slower to compile): one export per pattern.
    cases = [c for c in converted_patterns if backend == "stl" or c.key.endswith("-legacy")]
    entries = []
    for case in cases:
        model = graph_json.read_model(case.json_path).validate()
        entries.append(StaticModel(case.key, model, case.json_path))
        if case.key in DOUBLE_CASES:
            entries.append(StaticModel(f"{case.key}/double", model, case.json_path, precision="double"))
    program = build_static_program(entries, src=rtneural_src, backend=backend, optimization="-O1")
    failures = []
    for entry in entries:
        case = next(c for c in cases if c.key == entry.key.split("/")[0])
        precision = entry.precision
        reset = ["--reset-every", str(case.fixed_time)] if case.fixed_time else []
        header = program.run(entry.key, case.frames, reset)
        engine = run_engine(load_engine(case.json_path), case.frames, case.fixed_time)
        for against, reference in (("onnxruntime", case.onnx_output), ("engine", engine)):
            error = float(np.max(np.abs(header - reference)))
            verified(f"converted graph header {precision}/{backend} vs {against}", case.key, error)
            if not error <= TOLERANCE:
                failures.append(f"{entry.key} ({backend}): max |header - {against}| = {error:.3g}")
        if precision == "double":  # RTNeural's own float32 spread on this model
            single = program.run(case.key, case.frames, reset)
            verified(f"converted graph header float vs double/{backend}", case.key, float(np.max(np.abs(header - single))))
    assert not failures, "\n".join(failures)


@pytest.mark.cpp
@pytest.mark.parametrize("key", ["wavenet-dynamo", "simplernn_gru_2in-legacy"])
def test_check_rtneural_runs_graph_and_in_skip_files_through_the_header(key, converted_patterns, rtneural_src):
    """``kelly-tc check --rtneural`` on a graph or in_skip file: the header's compile-time API against
    onnxruntime and the engine; RTNeural's dynamic parser is left out (it cannot run either form)."""
    from toolchain.check import check_files

    case = next(c for c in converted_patterns if c.key == key)
    report = check_files(case.onnx_path, case.json_path, frames=40, rtneural=rtneural_src)
    labels = [c.label for c in report.comparisons]
    assert "RTNeural compile-time vs onnxruntime" in labels and "RTNeural compile-time vs engine" in labels
    assert not any("dynamic" in label for label in labels)
    assert report.passed, [(c.label, c.max_abs_error) for c in report.comparisons]


@pytest.mark.cpp
def test_rtneurals_plain_parsers_load_nothing_from_any_converted_graph_file(converted_patterns, rtneural_src):
    from tests.cpp.test_graph_header import HERE, plain_parse
    from toolchain.cpp.build import compile_program

    binary = compile_program([HERE / "plain_parsers.cpp"], src=rtneural_src, name="plain-parsers", optimization="-O1")
    graphs = [c for c in converted_patterns if graph_json.output_form(graph_json.read_model(c.json_path).validate()) == "graph"]
    assert len(graphs) >= 8
    for case in graphs:  # parseJson: nullptr; ModelT::parseJson: the sentinel weights untouched (1 * 7 + 7)
        assert plain_parse(binary, case.json_path) == {"parse_json_model": False, "modelt_output": 14.0}, case.key
