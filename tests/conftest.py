"""Shared test fixtures: where the reference material lives, and the CI rule for it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the repository (as in CI); KELLY_TC_SHARED overrides it.
SHARED = Path(os.environ.get("KELLY_TC_SHARED", REPO.parent / "shared"))
RTNEURAL_TESTDATA = SHARED / "rtneural-testdata"
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")


def require_shared(path: Path) -> Path:
    """Skip when the shared reference material is absent -- but fail in CI, where .ci/run provides it."""
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing in CI; .ci/run must provide it")
        pytest.skip(f"{path} not present (set KELLY_TC_SHARED)")
    return path


def require_modules(*names: str) -> None:
    """Skip when an optional module is missing -- but fail in CI, where .ci/run installs it."""
    for module in names:
        try:
            __import__(module)
        except ImportError:
            if IN_CI:
                pytest.fail(f"{module} is missing in CI; .ci/run must install it")
            pytest.skip(f"{module} is not installed (pip install torch==2.13.0 onnxscript)")


@pytest.fixture(scope="session")
def rtneural_testdata() -> Path:
    return require_shared(RTNEURAL_TESTDATA)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def converted_catalog(tmp_path_factory):
    """Every torch test model (tests/fixtures/torch_models.py), exported with both torch exporters
    (plus one dynamo export with external data) and converted, once per session.

    A list of entries with ``.name``, ``.exporter``, ``.onnx_path``, ``.json_path``, ``.kinds``,
    ``.frames`` (the example input as [T, in]) and ``.torch_output`` ([T, out]); ``.entry(id)``
    finds one by ``name-exporter`` (ids in ``tests.fixtures.catalog.ENTRY_IDS``).
    """
    require_modules("torch", "onnxscript")  # the exporters
    from tests.fixtures.catalog import build_catalog

    return build_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session")
def kelly_models(tmp_path_factory):
    """The five Kelly models (seeded random weights) exported once per session with ``kelly-tc export``'s
    library function: ``.directory`` (NAME.onnx + NAME.json with the reference pair), ``.json_paths`` /
    ``.onnx_paths`` by name, ``.torch_models`` by name, ``.report`` (tests/toolchain/kelly/exported_models.py)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("torch is missing in CI; .ci/run must install it")
        pytest.skip("torch is not installed (pip install torch==2.13.0)")
    from tests.toolchain.kelly.exported_models import export_random_models

    return export_random_models(tmp_path_factory.mktemp("kelly_models"))
