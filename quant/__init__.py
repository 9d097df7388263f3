"""Compression passes over ONNX graphs: INT8 weight quantization and structured pruning."""
