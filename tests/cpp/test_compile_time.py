"""``kelly-tc cpp`` headers compile against the real RTNeural and compute what our engine computes.

Each model source becomes ONE program per backend holding every model twice -- the header that loads
its JSON through RTNeural's ``ModelT::parseJson`` and the header with the weights compiled in -- plus
double-precision variants of a few layer-kind models: a ModelT type takes seconds to compile, so
models share a program (split into parts compiled in parallel) and a session pays once per
(source, backend). Compile time decides the matrix: every source on the STL backend; the layer kinds
and the Kelly models (sizes that need Eigen's fixed-size limit lifted) on Eigen too. The dynamic
API runs every source on both backends (test_dynamic_api.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.cpp.conftest import MODEL_SOURCES, TOLERANCE, require_backend
from tests.cpp.test_dynamic_api import engine_outputs
from toolchain.cpp.reference_pair import reference_pair
from toolchain.cpp.static_program import StaticModel, build_static_program

WEIGHT_MODES = {"json": dict(embed_weights=False), "embedded": dict(embed_weights=True)}
DOUBLE_MODELS = ("mixed_stack", "lstm_input_1", "gru_input_1", "conv1d_groups", "batchnorm", "prelu_per_channel")
#: (source, backend) pairs compiled on RTNeural's compile-time API.
MATRIX = [(source, "stl") for source in MODEL_SOURCES] + [("layer_kinds", "eigen"), ("kelly", "eigen")]
#: -O1: these programs are built for correctness; -O2 would double their compile time for nothing.
OPTIMIZATION = "-O1"


def static_models(cases, doubles: bool = True) -> list[StaticModel]:
    entries = []
    for case in cases:
        model = case.model()
        for mode, options in WEIGHT_MODES.items():
            entries.append(StaticModel(f"{case.name}/{mode}", model, case.json_path, **options))
            if doubles and case.name in DOUBLE_MODELS:
                entries.append(StaticModel(f"{case.name}/{mode}-double", model, case.json_path, precision="double", **options))
    return entries


@pytest.fixture(scope="session")
def compile_time(rtneural_src, request):
    """(source, backend) -> (program, cases); each program built on first use, once per session."""
    built = {}

    def program_for(source: str, backend: str = "stl"):
        if (source, backend) not in built:
            require_backend(backend, rtneural_src)
            cases = request.getfixturevalue(MODEL_SOURCES[source])
            built[source, backend] = build_static_program(static_models(cases, doubles=backend == "stl"), src=rtneural_src,
                                                          backend=backend, optimization=OPTIMIZATION), cases
        return built[source, backend]

    return program_for


@pytest.mark.cpp
@pytest.mark.parametrize("source, backend", MATRIX)
def test_headers_match_the_reference_engine_in_both_weight_modes(source, backend, compile_time, verified):
    program, cases = compile_time(source, backend)
    failures = []
    for case in cases:
        expected = engine_outputs(case)
        for key in (k for k in program.models if k.split("/")[0] == case.name):
            error = float(np.max(np.abs(program.run(key, case.frames) - expected)))
            verified(f"compile-time {key.split('/')[1]}/{backend}", case.name, error)
            if not error <= TOLERANCE:
                failures.append(f"{key}: max |ModelT - engine| = {error:.3g}")
    assert not failures, "\n".join(failures)


@pytest.mark.cpp
@pytest.mark.parametrize("source, backend", [pair for pair in MATRIX if pair[0] in ("layer_kinds", "kelly")])
def test_self_test_returns_the_max_error_against_the_stored_reference_pair(source, backend, compile_time):
    program, cases = compile_time(source, backend)
    for case in cases:
        inputs, outputs = reference_pair(case.model())
        for key in (k for k in program.models if k.split("/")[0] == case.name):
            measured = float(np.max(np.abs(program.run(key, inputs) - outputs)))
            reported = program.self_test(key)
            assert reported <= TOLERANCE, key
            assert reported == pytest.approx(measured, rel=1e-6, abs=1e-12), key


@pytest.mark.cpp
def test_self_test_is_nan_when_the_model_has_no_reference_pair(compile_time):
    program, cases = compile_time("rtneural_testdata")
    assert all(np.isnan(program.self_test(key)) for key in program.models)
