"""Tables of the runtime comparison: rich for the terminal, Markdown for bench/results/."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

COLUMNS = ("model", "weights", "engine p50", "engine p99", "onnxruntime p50", "torch p50", "numpy p50",
           "engine/ORT", "engine/torch", "engine compute", "BLAS sgemv", "compute/BLAS",
           "GB/s (BLAS)", "GFLOP/s (BLAS)",
           "RTNeural p50", "RTNeural ModelT p50", "engine/RTNeural", "engine/ModelT",  # C++, timed in C++ (RTNEURAL_SRC)
           "block 64: engine p50/frame", "engine p99/frame", "ModelT p50/frame", "engine/ModelT @64")


def _us(value) -> str:
    return "-" if value is None else f"{value:.2f} us" if value < 100 else f"{value:.0f} us"


def _number(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def block_cells(block: dict | None) -> list[str]:
    """The block-64 columns: per-frame figures of blocks timed as one call (engine) or one C++ loop (ModelT)."""
    if not block:
        return ["-"] * 4
    latency = block["latency_us"]
    modelt = latency.get("rtneural-modelt", {}).get("p50")
    return [_us(latency["engine"]["p50"]), _us(latency["engine"]["p99"]), _us(modelt),
            _number(block.get("ratios_p50", {}).get("engine/rtneural-modelt"))]


def rows(report: dict) -> list[list[str]]:
    table = []
    for row in report["models"] + ([report["pipeline"]] if report.get("pipeline") else []):
        latency, ratios = row["latency_us"], row["ratios_p50"]
        p50 = lambda name: latency[name]["p50"] if name in latency else None  # noqa: E731
        get = row.get
        table.append([
            row["model"], f"{row['weight_bytes'] / 1024:.0f} KB" if "weight_bytes" in row else "-",
            _us(p50("engine")), _us(latency["engine"]["p99"]), _us(p50("onnxruntime")), _us(p50("torch")), _us(p50("numpy")),
            _number(ratios.get("engine/onnxruntime")), _number(ratios.get("engine/torch")),
            _us(get("engine_compute_us")), _us(get("blas_us")), _number(get("compute_over_blas")),
            "-" if "achieved_gb_per_s" not in row else f"{row['achieved_gb_per_s']:.1f} ({row['blas_gb_per_s']:.1f})",
            "-" if "achieved_gflop_per_s" not in row else f"{row['achieved_gflop_per_s']:.1f} ({_number(get('blas_gflop_per_s'), 1)})",
            _us(p50("rtneural")), _us(p50("rtneural-modelt")),
            _number(ratios.get("engine/rtneural")), _number(ratios.get("engine/rtneural-modelt")),
            *block_cells(row.get("block_64")),
        ])
    return table


def print_table(report: dict, console: Console) -> None:
    table = Table(title=f"per-frame latency, one call per frame, {report['frames']} frames ({report['machine']['cpu']}); "
                        "engine/X < 1: the engine is faster")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    for values in rows(report):
        table.add_row(*values)
    console.print(table)


def markdown_report(report: dict) -> str:
    machine = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        "# Runtime comparison: per-frame latency",
        "",
        f"Machine: {machine['cpu']} ({machine['llvm_cpu']}), {machine['cores']} cores, {machine['platform']}, "
        f"load average {machine.get('load_average_1_5_15min')} when the run ended (other processes on the cores "
        "lengthen the tail).  ",
        f"Versions: {versions}.  ",
        f"{report['frames']} timed frames per model and runtime after {report['warmup']} warm-up frames, in "
        f"{report['rounds']} rounds alternating between runtimes; one call per frame, state carried, one thread. "
        f"Kelly shapes from {report['kelly_shapes_from']}, random weights.{' QUICK MODE (smoke test).' if report['quick'] else ''}",
        "",
        "Latencies are medians (p50) per frame, plus the engine's p99. `engine/X` < 1 means the engine is faster "
        "(0.25 = 4x faster). `engine compute`: the engine's time per frame without Python per frame (`Engine.run`). "
        "`BLAS sgemv`: BLAS (one thread) doing the same matrix-vector products in sequence, called from compiled "
        "code, no Python per product (bench/bound.py). GB/s: weight bytes / engine compute time; GFLOP/s: "
        "2 x multiply-adds / engine compute time; BLAS's figures in brackets. `block 64`: the engine and RTNeural's "
        "ModelT timed per block of 64 frames (one `Engine.process` call; a C++ loop of 64 `forward()` calls) in the "
        "same run, divided by 64: the per-frame cost inside a plugin's audio callback.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(values) + " |" for values in rows(report)]
    return "\n".join(lines) + "\n"
