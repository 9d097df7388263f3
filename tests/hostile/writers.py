"""A source audit: every call that writes a file in the product code must write through
``toolchain.atomic`` (a temporary file beside the target, renamed into place).

A writer call (``open(..., "w")``, ``Path.write_text/write_bytes``, ``np.save*``, ``onnx.save``,
``torch.save``, ``torch.onnx.export``, ``savefig``, ``soundfile.write``, pretty_midi's ``.write(str(path))``,
``shutil.copy*``) is atomic when the path it writes is

- the temporary path of an enclosing ``with atomic_path(...) as tmp`` (or a name computed from it);
- in memory (a name bound to ``io.BytesIO()``/``io.StringIO()``);
- inside an enclosing ``with tempfile.TemporaryDirectory() as folder`` (scratch files, never outputs);
- or the call is ``atomic.write_*`` itself.

Everything else is reported as ``file:line: code``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

#: (module alias, function) pairs that write the file named by argument ``index`` (or keyword ``keyword``).
PATH_WRITERS = {("np", "save"): (0, "file"), ("numpy", "save"): (0, "file"), ("np", "savez"): (0, "file"),
                ("np", "savez_compressed"): (0, "file"), ("np", "savetxt"): (0, "fname"), ("onnx", "save"): (1, "f"),
                ("onnx", "save_model"): (1, "f"), ("torch", "save"): (1, "f"), ("soundfile", "write"): (0, "file"),
                ("sf", "write"): (0, "file"), ("shutil", "copy"): (1, "dst"), ("shutil", "copy2"): (1, "dst"),
                ("shutil", "copyfile"): (1, "dst"), ("shutil", "move"): (1, "dst"), ("onnx", "export"): (2, "f")}
#: Methods whose receiver is the path written (``path.write_text(...)``), or whose first argument is.
RECEIVER_WRITERS = {"write_text", "write_bytes"}
ARGUMENT_WRITERS = {"savefig": 0, "to_csv": 0}
IN_MEMORY = {"BytesIO", "StringIO"}
SCRATCH = {"TemporaryDirectory", "mkdtemp"}


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code}"


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """``np.save`` -> ("np", "save"); ``torch.onnx.export`` -> ("torch", "onnx", "export")."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def _argument(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return call.args[index] if len(call.args) > index else None


def _open_mode(call: ast.Call, index: int = 1) -> str:
    mode = _argument(call, index, "mode")
    return mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else "r"


def written_path(call: ast.Call) -> ast.AST | None:
    """The expression naming the file ``call`` writes, or None if ``call`` does not write a file."""
    name = _dotted(call.func)
    if (isinstance(call.func, ast.Name) and call.func.id == "open") or name[-2:] in (("io", "open"), ("os", "fdopen")):
        return _argument(call, 0, "file") if set(_open_mode(call)) & set("wax+") else None
    if len(name) >= 2 and (name[-2], name[-1]) in PATH_WRITERS:
        return _argument(call, *PATH_WRITERS[(name[-2], name[-1])])
    if isinstance(call.func, ast.Attribute):
        method = call.func.attr
        if method in RECEIVER_WRITERS and _dotted(call.func.value) != ("atomic",):
            return call.func.value
        if method in ARGUMENT_WRITERS:
            return _argument(call, ARGUMENT_WRITERS[method], "fname")
        if method == "open" and name[-2:] != ("io", "open") and set(_open_mode(call, 0)) & set("wax+"):  # Path.open("w")
            return call.func.value
        if method == "write" and call.args and isinstance(call.args[0], ast.Call) and _dotted(call.args[0].func) in (("str",), ("os", "fspath")):
            return call.args[0]  # pretty_midi's midi.write(str(path)); a handle's write(data) is covered by its open()
    return None


class _Scopes(ast.NodeVisitor):
    """Walks one module, keeping the names bound by enclosing ``with`` blocks and the assignments of the
    enclosing function, and records every writer call whose path is not provably safe."""

    def __init__(self, file: str, source: str):
        self.file, self.lines = file, source.splitlines()
        self.safe: list[set[str]] = [set()]
        self.assignments: list[dict[str, ast.AST]] = [{}]
        self.violations: list[Violation] = []

    def visit_FunctionDef(self, node):
        assigned = {}
        for child in ast.walk(node):
            if isinstance(child, ast.Assign) and len(child.targets) == 1 and isinstance(child.targets[0], ast.Name):
                assigned[child.targets[0].id] = child.value
        self.assignments.append(assigned)
        self.safe.append(set(self.safe[-1]))
        self.generic_visit(node)
        self.safe.pop()
        self.assignments.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_With(self, node):
        added = set()
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and isinstance(item.optional_vars, ast.Name):
                function = _dotted(call.func)[-1:] or ("",)
                if function[0] == "atomic_path" or function[0] in SCRATCH:
                    added.add(item.optional_vars.id)
        self.safe.append(self.safe[-1] | added)
        self.generic_visit(node)
        self.safe.pop()

    def _names(self, expression: ast.AST, depth: int = 0) -> set[str]:
        """Names ``expression`` is built from, following the enclosing function's assignments twice."""
        names = {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)}
        if depth < 2:
            for name in list(names):
                if name in self.assignments[-1]:
                    names |= self._names(self.assignments[-1][name], depth + 1)
        return names

    def _in_memory(self, expression: ast.AST) -> bool:
        if isinstance(expression, ast.Call) and _dotted(expression.func)[-1:] and _dotted(expression.func)[-1] in IN_MEMORY:
            return True
        value = self.assignments[-1].get(expression.id) if isinstance(expression, ast.Name) else None
        return isinstance(value, ast.Call) and (_dotted(value.func)[-1:] or ("",))[0] in IN_MEMORY

    def visit_Call(self, node):
        target = written_path(node)
        if target is not None and not self._in_memory(target) and not (self._names(target) & self.safe[-1]):
            self.violations.append(Violation(self.file, node.lineno, self.lines[node.lineno - 1].strip()))
        self.generic_visit(node)


def audit(root: Path, folders: tuple[str, ...], exclude: tuple[str, ...] = ()) -> list[Violation]:
    """Every non-atomic writer call in the ``.py`` files under ``root/folder`` for each folder."""
    violations = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            if str(path.relative_to(root)) in exclude:
                continue
            source = path.read_text(encoding="utf-8")
            scopes = _Scopes(str(path.relative_to(root)), source)
            scopes.visit(ast.parse(source, filename=str(path)))
            violations += scopes.violations
    return violations


def unsafe_loads(root: Path, folders: tuple[str, ...]) -> list[Violation]:
    """Calls that could unpickle a file: ``torch.load`` without ``weights_only=True``, ``np.load`` with
    ``allow_pickle=True``, and any ``pickle``/``dill``/``joblib`` load."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source, filename=str(path))):
                if isinstance(node, ast.ImportFrom) and node.module in ("torch", "pickle", "dill", "joblib", "cloudpickle") and \
                        any(alias.name in ("load", "loads", "Unpickler") for alias in node.names):
                    found.append(Violation(str(path.relative_to(root)), node.lineno, lines[node.lineno - 1].strip()))
                if not isinstance(node, ast.Call):
                    continue
                name = _dotted(node.func)
                keywords = {k.arg: k.value for k in node.keywords}

                def is_true(key):
                    return isinstance(keywords.get(key), ast.Constant) and keywords[key].value is True

                bad = (name[-2:] == ("torch", "load") and not is_true("weights_only")) or \
                      (name[-2:] in (("np", "load"), ("numpy", "load")) and "allow_pickle" in keywords and not
                       (isinstance(keywords["allow_pickle"], ast.Constant) and keywords["allow_pickle"].value is False)) or \
                      (len(name) >= 2 and name[-2] in ("pickle", "dill", "joblib", "cloudpickle") and name[-1] in ("load", "loads", "Unpickler"))
                if bad:
                    found.append(Violation(str(path.relative_to(root)), node.lineno, lines[node.lineno - 1].strip()))
    return found
