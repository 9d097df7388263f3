"""Measure every issue-11 pattern with all three exporter modes: form written and worst error vs onnxruntime
(check_files, 2048 seeded frames, stream + half-way reset). Usage: PYTHONPATH=. python bench/graph_patterns.py [NAME...]"""
import sys, time, tempfile
from pathlib import Path
from tests.fixtures import graph_models as gm
from tests.fixtures.export import export_legacy, export_dynamo
from toolchain.convert import convert_file
from toolchain.check import check_files
from toolchain.graph_json import output_form
from toolchain.errors import KellyError
folder = Path(tempfile.mkdtemp())
names = sys.argv[1:] or list(gm.PATTERNS)
for name in names:
    _, layout, feats, form = gm.PATTERNS[name]
    model = gm.build(name); x = gm.example(layout, feats)
    time_axis = 1 if layout == "btf" else 2
    for exporter in ("legacy", "dynamo", "dynamo_dynamic"):
        path = folder / f"{name}-{exporter}.onnx"
        t = time.time()
        try:
            if exporter == "legacy":
                export_legacy(model, x, path, {0: "batch", time_axis: "time"})
            else:
                export_dynamo(model, x, path, time_axis=time_axis if exporter == "dynamo_dynamic" else None)
        except Exception as e:
            print(name, exporter, "EXPORT FAIL", type(e).__name__, str(e)[:200]); continue
        te = time.time() - t
        try:
            m = convert_file(path, path.with_suffix(".json"))
            r = check_files(path, path.with_suffix(".json"), frames=None, atol=1e-5)
            print(f"{name:22s} {exporter:15s} {output_form(m):9s} worst={r.worst_abs_error:.2e} passed={r.passed} export={te:.1f}s")
        except KellyError as e:
            print(name, exporter, "REFUSED", e.line())
