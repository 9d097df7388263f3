"""One module per ``kelly-tc`` subcommand; importing this package registers them all."""
import importlib

#: Subcommand modules, in the order ``kelly-tc --help`` lists them.
COMMANDS = ("convert", "check", "run", "quantize", "prune", "train", "features", "cpp", "bench", "export", "validate", "pipeline")

for _name in COMMANDS:
    importlib.import_module(f"{__name__}.{_name}")
