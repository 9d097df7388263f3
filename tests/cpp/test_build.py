"""Finding RTNeural and building against it once: the cache key and the errors."""
from __future__ import annotations

import shutil

import pytest

from toolchain.cpp import build
from toolchain.cpp.build import RTNeuralNotFound, build_key, compile_program, find_rtneural, harness_binary


def test_rtneural_is_found_from_an_explicit_path_its_inner_folder_or_the_environment(rtneural_src, monkeypatch):
    assert find_rtneural(rtneural_src) == rtneural_src
    assert find_rtneural(rtneural_src / "RTNeural") == rtneural_src
    monkeypatch.setenv("RTNEURAL_SRC", str(rtneural_src))
    assert find_rtneural() == rtneural_src


def test_a_missing_rtneural_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("RTNEURAL_SRC", raising=False)
    with pytest.raises(RTNeuralNotFound, match="pass its path \\(--rtneural SRC\\) or set RTNEURAL_SRC"):
        find_rtneural()
    with pytest.raises(RTNeuralNotFound, match=f"{tmp_path}: not an RTNeural checkout"):
        find_rtneural(tmp_path)


def test_a_checkout_without_its_json_submodule_is_named(tmp_path):
    (tmp_path / "RTNeural").mkdir()
    (tmp_path / "RTNeural" / "RTNeural.h").write_text("")
    with pytest.raises(RTNeuralNotFound, match="no modules/json/json.hpp"):
        find_rtneural(tmp_path)


@pytest.fixture
def rtneural_copy(rtneural_src, tmp_path):
    copy = tmp_path / "rtneural"
    shutil.copytree(rtneural_src, copy)
    return copy


def test_the_cache_key_follows_the_rtneural_tree_the_flags_and_the_sources(rtneural_src, rtneural_copy):
    sources = [build.HERE / "harness.cpp"]
    key = build_key(sources, rtneural_src, ["-O2"])
    assert build_key(sources, rtneural_copy, ["-O2"]) == key  # same content elsewhere: same binary
    assert build_key(sources, rtneural_src, ["-O1"]) != key
    (rtneural_copy / "RTNeural" / "Model.h").write_text((rtneural_copy / "RTNeural" / "Model.h").read_text() + "\n// edited\n")
    build.tree_hash.cache_clear()
    assert build_key(sources, rtneural_copy, ["-O2"]) != key


@pytest.mark.cpp
def test_the_harness_is_built_once_and_reused(rtneural_src):
    first = harness_binary(rtneural_src, "stl")
    stamp = first.stat().st_mtime_ns
    assert harness_binary(rtneural_src, "stl") == first and first.stat().st_mtime_ns == stamp


@pytest.mark.cpp
def test_a_build_failure_names_the_error_and_keeps_the_log(rtneural_src, tmp_path, monkeypatch):
    monkeypatch.setenv("KELLY_TC_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "broken.cpp"
    source.write_text("int main() { return undeclared_name; }\n")
    with pytest.raises(build.InputError, match=r"C\+\+ build of broken failed \(stl backend\): .*undeclared_name.*full log: "):
        compile_program([source], src=rtneural_src, name="broken")
    assert not [p for p in (tmp_path / "cache" / "rtneural").iterdir() if p.suffix != ".log"]  # no half-built binary
