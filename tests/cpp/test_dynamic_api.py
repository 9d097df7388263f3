"""RTNeural's dynamic API (json_parser::parseJson<float>) runs every model we write exactly as our engine does."""
from __future__ import annotations

import numpy as np
import pytest

from reference_engine.model import load_engine
from tests.cpp.conftest import MODEL_SOURCES, TOLERANCE
from toolchain.cpp.runner import run_program


def engine_outputs(case) -> np.ndarray:
    engine = load_engine(case.json_path)
    engine.reset()
    return engine.run(case.frames)


def dynamic_outputs(harness, case) -> np.ndarray:
    return run_program(harness, ["--json", case.json_path], case.frames, file=case.json_path)


@pytest.mark.cpp
@pytest.mark.parametrize("source", MODEL_SOURCES)
def test_every_model_matches_the_reference_engine_frame_for_frame(source, backend, dynamic_harness, request, verified):
    models = request.getfixturevalue(MODEL_SOURCES[source])
    assert models, f"the {source} source gave no models"
    failures = []
    for case in models:
        rtneural, engine = dynamic_outputs(dynamic_harness, case), engine_outputs(case)
        assert rtneural.shape == engine.shape, case.name
        error = float(np.max(np.abs(rtneural - engine)))
        verified(f"dynamic/{backend}", case.name, error)
        if not error <= TOLERANCE:
            frame = int(np.argmax(np.max(np.abs(rtneural - engine), axis=1)))
            failures.append(f"{case.name}: max |RTNeural - engine| = {error:.3g} (first worst frame {frame})")
    assert not failures, "\n".join(failures)


@pytest.mark.cpp
def test_rtneural_testdata_models_reproduce_rtneural_reference_outputs(testdata_models, backend, dynamic_harness):
    """Independent of our engine: the harness itself reproduces the outputs RTNeural's own tests expect."""
    for case in testdata_models:
        rtneural = dynamic_outputs(dynamic_harness, case)
        np.testing.assert_allclose(rtneural, case.expected, rtol=0, atol=case.tolerance, err_msg=case.name)


@pytest.mark.cpp
def test_the_harness_keeps_state_from_frame_to_frame(layer_kind_models, dynamic_harness):
    """Frame 1 of a stream differs from frame 1 fed alone after a reset; frame 0 is the same either way."""
    case = next(c for c in layer_kind_models if c.name == "lstm")
    whole = dynamic_outputs(dynamic_harness, case)
    first_frame_only = run_program(dynamic_harness, ["--json", case.json_path], case.frames[1:2])
    assert not np.allclose(whole[1], first_frame_only[0], atol=1e-4)
    np.testing.assert_allclose(run_program(dynamic_harness, ["--json", case.json_path], case.frames[:1])[0], whole[0], atol=0)


@pytest.mark.cpp
def test_the_harness_reads_csv_frames_as_rtneural_tests_do(testdata_models, dynamic_harness, tmp_path):
    case = testdata_models[0]
    csv_in, csv_out = tmp_path / "x.csv", tmp_path / "y.csv"
    np.savetxt(csv_in, case.frames, delimiter=",")
    from toolchain.cpp.runner import invoke

    invoke([dynamic_harness, "--json", case.json_path, "--input", csv_in, "--output", csv_out], case.json_path)
    np.testing.assert_allclose(np.loadtxt(csv_out, delimiter=",", ndmin=2), dynamic_outputs(dynamic_harness, case), atol=1e-12)
