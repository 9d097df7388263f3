"""``kelly-tc check MODEL.json``: a model file checked against the reference pair it ships.

kelly-tc files carry ``kelly_tc.reference``; AIDA-X files carry ``input_batch``/``output_batch``
(``toolchain.cpp.reference_pair`` reads both). The engine replays the pair from reset, one ``forward()``
per frame; a second replay follows frames of noise and a ``reset()`` (state must be cleared). With
``rtneural`` the real RTNeural replays it too (an ``in_skip`` file, whose key RTNeural's own parser
ignores, through the kelly-tc header's compile-time model with the skip: ``toolchain.cpp.apis``).

Bound: with ``atol``/``rtol`` given, ``|result - stored| <= atol + rtol * max|stored|``. By default
``max(DEFAULT_ATOL, SPREAD_FACTOR x spread)`` where the spread is the engine's distance to a float64
evaluation of the same file on the same input (``toolchain.float64_eval``): what float32 rounding does
to this model here. The stored output is itself a float32 result of another implementation, so it
cannot be expected closer than that; a wrong weight or layout is orders of magnitude beyond it.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from toolchain.check import DEFAULT_ATOL, SPREAD_FACTOR, CheckReport, compare, run_engine
from toolchain.errors import InputError, KellyError


def check_json_file(json_path: str | Path, atol: float | None = None, rtol: float | None = None,
                    rtneural: str | Path | None = None, seed: int = 0) -> CheckReport:
    from reference_engine.model import load_engine
    from toolchain.cpp.reference_pair import reference_pair, reference_source
    from toolchain.float64_eval import evaluate
    from toolchain.graph_json import read_model

    for label, value in (("--atol", atol), ("--rtol", rtol)):
        if value is not None and not (np.isfinite(value) and value >= 0):
            raise InputError(f"must be a finite number >= 0, got {value}", where=label)
    model = read_model(json_path).validate()  # (graph_json leaves an in_skip model's merge sizes unfilled)
    try:
        pair = reference_pair(model)
    except KellyError as error:
        raise error.with_file(json_path)
    if pair is None:
        raise InputError("no reference pair to check against: the file has neither kelly_tc.reference nor AIDA-X's "
                         "input_batch/output_batch (check it against its ONNX model: kelly-tc check MODEL.onnx MODEL.json)",
                         file=json_path)
    inputs, stored = pair
    source = reference_source(model)
    engine = load_engine(json_path)
    fixed = atol is not None or rtol is not None
    report = CheckReport(source, str(json_path), len(inputs), float(DEFAULT_ATOL if atol is None else atol), None, None,
                         runtime=f"the file's {source}", rtol=float(rtol or 0.0), tolerance="fixed" if fixed else "float64")
    ours = run_engine(engine, inputs, None)
    exact = evaluate(model, inputs)
    spread = float(np.max(np.abs(ours.astype(np.float64) - exact))) if ours.size else 0.0
    report.float32_spread = {"engine vs float64 evaluation": spread}
    scale = float(np.abs(stored).max()) if stored.size else 0.0
    bound = report.atol + report.rtol * scale if fixed else max(DEFAULT_ATOL, SPREAD_FACTOR * spread)

    def judged(label, result):
        return replace(compare("output", label, result, stored), bound=bound)

    report.comparisons.append(judged("stream", ours))
    noise = np.random.default_rng(seed).uniform(-1, 1, (max(len(inputs) // 2, 2), inputs.shape[1])).astype(np.float32)
    run_engine(engine, noise, None)  # leave state behind; run_engine resets before the replay
    report.comparisons.append(judged("after reset (state left by noise)", run_engine(engine, inputs, None)))
    if rtneural is not None:
        from toolchain.cpp.apis import rtneural_check

        for api, outputs in rtneural_check(json_path, inputs, rtneural).items():
            report.comparisons.append(judged(f"RTNeural {api}", outputs))
    return report
