"""kelly-tc: ONNX -> RTNeural JSON toolchain for the small networks of real-time audio plugins."""
__version__ = "0.1.0"
