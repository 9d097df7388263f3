"""Fixtures of the C++ conformance tests: RTNeural's source, the backends, the model sources.

RTNeural's source comes from ``RTNEURAL_SRC`` (CI sets it) or ``../shared/rtneural-cpp``. Without it
the tests skip, saying so -- except in CI, where a missing source, compiler or Eigen is a failure, so
the C++ proof can never silently stop running.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED, unavailable
from tests.cpp import cases
from toolchain.cpp.build import BACKENDS, eigen_include, find_rtneural, harness_binary

#: Model sources checked in C++: source name -> the fixture returning its ``cases.Case`` list.
#: Adding a source (the Kelly models, the INT8-folded files) is one line here plus its fixture below.
MODEL_SOURCES = {
    "rtneural_testdata": "testdata_models",
    "layer_kinds": "layer_kind_models",
    "converted_catalog": "catalog_models",
    "kelly": "kelly_exported_models",
    "int8_folded": "int8_folded_models",
}

#: Frame-for-frame agreement demanded between RTNeural (float32) and the reference engine (float32):
#: both sum the same products in different orders, ~1e-7 apart on outputs of magnitude ~1.
TOLERANCE = 1e-5


@pytest.fixture(scope="session")
def rtneural_src() -> Path:
    given = os.environ.get("RTNEURAL_SRC")
    path = Path(given) if given else SHARED / "rtneural-cpp"
    if not (path / "RTNeural" / "RTNeural.h").is_file():
        unavailable(f"RTNeural's source is not at {path} (set RTNEURAL_SRC to an RTNeural checkout)")
    if shutil.which(os.environ.get("CXX", "g++").split()[0]) is None:
        unavailable("no C++ compiler (g++, or CXX) on PATH")
    return find_rtneural(path)


def require_backend(backend: str, rtneural_src: Path) -> str:
    if backend == "eigen" and eigen_include(rtneural_src) is None:
        unavailable("Eigen 3.4 headers not found (install libeigen3-dev) for RTNeural's Eigen backend")
    return backend


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, rtneural_src) -> str:
    return require_backend(request.param, rtneural_src)


@pytest.fixture(scope="session")
def dynamic_harness(rtneural_src, backend) -> Path:
    """The dynamic-API harness, compiled once per backend (and reused across sessions from the cache)."""
    return harness_binary(rtneural_src, backend)


# ------------------------------------------------------------------------------------ model sources
@pytest.fixture(scope="session")
def testdata_models(rtneural_testdata) -> list[cases.Case]:
    return cases.testdata_cases(rtneural_testdata)


@pytest.fixture(scope="session")
def layer_kind_models(tmp_path_factory) -> list[cases.Case]:
    return cases.layer_kind_cases(tmp_path_factory.mktemp("layer_kinds"))


@pytest.fixture(scope="session")
def kelly_exported_models(kelly_models) -> list[cases.Case]:
    return cases.kelly_cases(kelly_models)


@pytest.fixture(scope="session")
def int8_folded_models(tmp_path_factory) -> list[cases.Case]:
    return cases.int8_folded_cases(tmp_path_factory.mktemp("int8_folded"))


@pytest.fixture(scope="session")
def catalog_models(converted_catalog) -> list[cases.Case]:
    return cases.catalog_cases(converted_catalog)


# ------------------------------------------------------------------------------ what was verified
_VERIFIED: list[tuple[str, str, float]] = []


@pytest.fixture(scope="session")
def verified():
    """Record (what, model, max abs error) for the end-of-run summary line."""
    return lambda what, name, error: _VERIFIED.append((what, name, float(error)))


def pytest_terminal_summary(terminalreporter):
    if not _VERIFIED:
        return
    worst = max(_VERIFIED, key=lambda item: (np.isnan(item[2]), item[2]))
    models = {name for _, name, _ in _VERIFIED}
    terminalreporter.write_line(f"RTNeural C++ conformance: {len(_VERIFIED)} runs of {len(models)} models checked; "
                                f"worst |error| {worst[2]:.3g} ({worst[1]}, {worst[0]})")
    for what in sorted({what for what, _, _ in _VERIFIED}):
        runs = [(name, error) for w, name, error in _VERIFIED if w == what]
        name, error = max(runs, key=lambda item: (np.isnan(item[1]), item[1]))
        terminalreporter.write_line(f"  {what}: {len(runs)} runs, worst {error:.3g} ({name})")
