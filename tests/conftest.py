"""Shared test fixtures: where the reference material lives, and the CI rule for it."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the repository (as in this repository's CI); KELLY_TC_SHARED overrides it.
SHARED = Path(os.environ.get("KELLY_TC_SHARED", REPO.parent / "shared"))


def _rtneural_testdata() -> Path:
    """RTNeural's reference models and vectors: the ``models/`` and ``test_data/`` of the RTNeural checkout
    that RTNEURAL_SRC names (one variable for a user: the same checkout the C++ tests compile against),
    else ``SHARED/rtneural-testdata`` (a copy of those two folders)."""
    checkout = os.environ.get("RTNEURAL_SRC")
    if checkout and (Path(checkout) / "models").is_dir() and (Path(checkout) / "test_data").is_dir():
        return Path(checkout)
    return SHARED / "rtneural-testdata"


RTNEURAL_TESTDATA = _rtneural_testdata()
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")


def unavailable(reason: str) -> NoReturn:
    """THE way a test is skipped: skip, saying why -- but under CI=true fail, since .ci/run provides every
    dependency and reference file, and a skip there would hide a test that stopped running. Works inside a
    test, a fixture, or at module level (it then skips or fails the whole module)."""
    if IN_CI:
        pytest.fail(f"{reason}; in CI this is a failure (.ci/run must provide it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


#: How to install each optional module the tests use (the extras of pyproject.toml).
INSTALL_HINTS = {"torch": "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
                 "onnxscript": "pip install -e '.[torch]'", "matplotlib": "pip install -e '.[plot]'"}


def require_shared(path: Path) -> Path:
    """``path`` (reference material), or :func:`unavailable`."""
    if not path.exists():
        unavailable(f"{path} not present (set RTNEURAL_SRC to an RTNeural checkout: its models/ and test_data/)")
    return path


def require_modules(*names: str):
    """Import the optional ``names`` and return the first, or :func:`unavailable` (replaces pytest.importorskip,
    which skips even in CI)."""
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            hint = INSTALL_HINTS.get(name, "pip install -e '.[dev]'")
            unavailable(f"{name} is not installed ({hint})")
    return modules[0] if modules else None


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
    require_modules("torch")
    from tests.toolchain.kelly.exported_models import export_random_models

    return export_random_models(tmp_path_factory.mktemp("kelly_models"))
