"""Every skip in the suite goes through ``tests.conftest.unavailable`` (directly, or via ``require_modules``
/ ``require_shared`` / the C++ fixtures), which fails under CI=true: a missing dependency there is a
failure, never a silent skip. ``pytest.importorskip`` and bare ``pytest.skip`` would skip in CI too."""
from __future__ import annotations

import re

import pytest

from tests import conftest
from tests.conftest import REPO

#: A skip that bypasses the helper: importorskip, pytest.skip(...), or a skip/skipif marker.
BYPASS = re.compile(r"pytest\.importorskip\(|pytest\.skip\(|pytest\.mark\.skip(if)?\b")


def test_no_test_module_skips_around_the_helper():
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path == REPO / "tests" / "conftest.py" or path == REPO / "tests" / "test_skips.py":
            continue  # the helper itself; this file names the patterns
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if BYPASS.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "skips that would pass silently under CI=true:\n" + "\n".join(offenders)


def test_the_helper_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="libfoo is missing"):
        conftest.unavailable("libfoo is missing")
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="libfoo is missing; in CI this is a failure"):
        conftest.unavailable("libfoo is missing")
    with pytest.raises(pytest.fail.Exception, match="no_such_module_kelly is not installed"):
        conftest.require_modules("no_such_module_kelly")


def test_require_modules_returns_the_module_like_importorskip():
    import json

    assert conftest.require_modules("json") is json


def test_one_variable_names_the_rtneural_checkout_for_source_and_test_data(tmp_path, monkeypatch):
    """An RTNeural checkout holds RTNeural/ (the C++ source), models/ and test_data/ (the reference vectors):
    RTNEURAL_SRC pointing at it serves both; without those folders the ../shared copy is used."""
    monkeypatch.setenv("RTNEURAL_SRC", str(tmp_path))
    assert conftest._rtneural_testdata() == conftest.SHARED / "rtneural-testdata"
    (tmp_path / "models").mkdir()
    (tmp_path / "test_data").mkdir()
    assert conftest._rtneural_testdata() == tmp_path
    monkeypatch.delenv("RTNEURAL_SRC")
    assert conftest._rtneural_testdata() == conftest.SHARED / "rtneural-testdata"
