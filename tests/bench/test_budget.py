"""Budget units and verdicts (reference_engine/budget.py, the one place units are parsed)."""
from __future__ import annotations

import pytest

from reference_engine.budget import Budget, format_duration, format_size, parse_duration, parse_size
from toolchain.errors import InputError


@pytest.mark.parametrize("text,seconds", [
    ("10ms", 0.01), ("500us", 500e-6), ("500µs", 500e-6), ("1.5ms", 1.5e-3), ("2s", 2.0), ("250ns", 250e-9),
    (" 10 ms ", 0.01), ("1e3us", 1e-3),
])
def test_durations_parse_with_their_units(text, seconds):
    parsed = parse_duration(text)
    assert parsed == pytest.approx(seconds)


@pytest.mark.parametrize("text,size", [
    ("4MB", 4 << 20), ("512KB", 512 << 10), ("512kb", 512 << 10), ("1.5MiB", 3 << 19), ("100B", 100), ("1GB", 1 << 30),
])
def test_sizes_parse_in_powers_of_1024(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text,reason", [
    ("10", "add a unit"), ("10 parsecs", "unknown unit"), ("-1ms", "cannot read"), ("0ms", "must be positive"),
    ("ms", "cannot read"), ("1MB", "unknown unit"),
])
def test_bad_durations_are_refused_naming_the_option(text, reason):
    with pytest.raises(InputError, match=reason) as caught:
        parse_duration(text)
    assert caught.value.where == "--budget"


@pytest.mark.parametrize("text,reason", [("4", "add a unit"), ("4 MHz", "unknown unit"), ("0KB", "must be positive")])
def test_bad_sizes_are_refused_naming_the_option(text, reason):
    with pytest.raises(InputError, match=reason) as caught:
        parse_size(text)
    assert caught.value.where == "--memory-budget"


def test_an_unknown_statistic_is_refused():
    with pytest.raises(InputError, match="p99.9"):
        Budget.parse("10ms", None, "p95")


LATENCY = {"p50": 100e-6, "p99": 200e-6, "p99.9": 400e-6, "max": 2e-3}


def test_within_budget_has_no_violation_and_reports_headroom():
    budget = Budget.parse("10ms", "4MB")
    assert budget.violations("m", LATENCY, 1 << 20) == []
    assert budget.headroom(LATENCY) == pytest.approx(50.0)  # 10 ms / 200 us, on p99


def test_over_budget_says_which_statistic_and_by_how_much():
    budget = Budget.parse("150us", "512KB")
    messages = budget.violations("EmotionRecognizer", LATENCY, 1 << 20)
    assert messages == [
        "EmotionRecognizer: p99 latency 200 us is over the 150 us budget by 50 us (33%)",
        "EmotionRecognizer: memory 1 MB is over the 512 KB budget by 512 KB (100%)",
    ]


def test_the_budgeted_statistic_is_selectable():
    assert Budget.parse("1ms", None, "p99.9").violations("m", LATENCY, 0) == []
    assert Budget.parse("1ms", None, "max").violations("m", LATENCY, 0) != []


def test_no_budget_means_unchecked():
    assert Budget().violations("m", LATENCY, 1 << 40) == [] and Budget().headroom(LATENCY) is None


def test_formatting_round_trips_the_units():
    text = format_duration(parse_duration("12.5us"))
    assert text == "12.5 us"
    assert format_size(parse_size("4.4MB")) == "4.4 MB"
