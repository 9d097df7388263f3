"""Compression passes over ONNX graphs: INT8 quantization and pruning (docs/COMPRESSION.md).

- ``rules/``        one rule per ONNX op family (what is a weight, which axis is a channel, how units
                    pass through, what shapes must agree) -- the per-op knowledge, registered by op type;
- ``onnx_graph``    the shared graph index and walk helpers; ``validate`` the weight-shape validator;
- ``int8``          symmetric INT8 weights (+ static activation QDQ) as standard ONNX;
- ``calibration``   model inputs (file or seeded), onnxruntime runs, MinMax/percentile ranges;
- ``prune``         structured (smaller dense model) and unstructured (magnitude) pruning;
- ``report``        sizes, accuracy vs the original, quantize_dynamic side by side, engine latency;
- ``workflow``      file in, file out: what ``kelly-tc quantize`` / ``kelly-tc prune`` call;
- ``int8_json``     the INT8 variant of RTNeural JSON (run by the reference engine's INT8 kernels);
- ``finetune``      fine-tuning a pruned Kelly model; ``summary``/``variants`` the side-by-side
                    tables of ``bench/compression.py`` and ``kelly-tc pipeline``.
"""
