"""Reading an MMEngine Python config file without running it: ``_base_`` inheritance, evaluated from the
file's syntax tree (``ast``). No statement of the file runs and nothing it imports is imported.

What is evaluated, and nothing else (anything else is a problem naming the file and the line):

- statements: ``name = value`` (also ``a = b = value`` and ``name: T = value``); ``name.key = value``
  and ``name['key'] = value`` on a dict defined before; ``name.update(...)`` (merged as MMEngine's
  ``ConfigDict.update``); ``_base_ = 'file.py'`` or a list of files; imports, which are not run: an
  imported name stands for its dotted path (``type=ResNet`` after ``from mmpretrain.models import
  ResNet`` is ``'mmpretrain.models.ResNet'``); the new-style ``with read_base(): from .base import *``
  (inheritance, as ``_base_``); docstrings.
- values: literals (strings, numbers, ``True``/``False``/``None``); dict, list, tuple and set displays;
  ``dict(...)``, ``list(...)``, ``tuple(...)`` of those; names defined before (in the file or by
  ``read_base``); ``{{_base_.a.b}}`` and ``_base_.a.b`` (a value of the bases); ``x[k]`` and ``x.k``
  on dicts and lists; ``-x``, ``not x``; arithmetic (``+ - * / // % **``) and comparisons of values;
  ``a if c else b``; f-strings of values.

Inheritance is MMEngine's: each base file is read the same way (paths relative to the file that names
it), several bases must not define the same key, and the file's values are merged into its bases' as
``Config.fromfile`` merges them: a dict into a dict key by key, recursively, unless it holds
``_delete_=True`` (then it replaces the base's dict); anything else replaces. Names starting with
``_`` are the file's own (``_base_``, helpers) and are not settings.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typedrunner.errors import ConfigError, Problem

__all__ = ["ImportedName", "PyConfig", "read_config", "uses_inheritance"]

_BASE_REFERENCE = re.compile(r"""(["']?)\{\{\s*_base_\.([\w.]+)\s*\}\}\1""")
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_CONTAINERS: dict[str, Callable[..., Any]] = {"dict": dict, "list": list, "tuple": tuple}


@dataclass(frozen=True)
class ImportedName:
    """A name the file imports (never imported here): it stands for its dotted path."""

    path: str


@dataclass
class PyConfig:
    """What a config file (and its bases) set: ``values`` (public names only) and where each came from."""

    values: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    """Every file read, the config first, then its bases (depth first)."""


class _Unsupported(Exception):
    """A construct this reader does not evaluate (the message says which, and the fix)."""


def uses_inheritance(path: Path) -> bool:
    """Whether the file sets ``_base_`` or uses ``read_base`` (read from its syntax, not run)."""
    try:
        tree = ast.parse(_substitute(path.read_text(encoding="utf-8")), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            return True
        if isinstance(node, ast.With) and any(_is_read_base(item.context_expr) for item in node.items):
            return True
    return False


def read_config(path: str | Path) -> PyConfig:
    """Read ``path`` and its bases; raise ``ConfigError`` listing every construct that could not be read."""
    reader = _Reader()
    values = reader.read(Path(path).resolve(), ())
    if reader.problems:
        raise ConfigError(reader.problems, title=f"cannot read config file {str(path)!r}")
    public = {k: _plain(v) for k, v in values.items() if not k.startswith("_")}
    return PyConfig(public, reader.files)


def _substitute(text: str) -> str:
    """MMEngine's ``{{_base_.a.b}}`` (bare or quoted) as the expression ``_base_.a.b``."""
    return _BASE_REFERENCE.sub(lambda m: f"_base_.{m.group(2)}", text)


def _is_read_base(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "read_base"


def _plain(value: Any) -> Any:
    """Imported names as their dotted paths, ``_delete_`` markers dropped, containers copied."""
    if isinstance(value, ImportedName):
        return value.path
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "_delete_"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` merged into ``base`` as MMEngine merges a config into its bases."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and value.get("_delete_"):
            out[key] = {k: v for k, v in value.items() if k != "_delete_"}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.files: list[Path] = []

    def problem(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem("", f"{path}:{line}: {message}"))

    # -- files ---------------------------------------------------------------------------------
    def read(self, path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
        if path in chain:
            self.problem(path, 1, "inherits from itself through _base_ (" + " -> ".join(p.name for p in chain) + ")")
            return {}
        if not path.is_file():
            where = chain[-1] if chain else path
            self.problem(where, 1, f"config file {str(path)!r} does not exist")
            return {}
        self.files.append(path)
        try:
            tree = ast.parse(_substitute(path.read_text(encoding="utf-8")), filename=str(path))
        except SyntaxError as e:
            self.problem(path, e.lineno or 1, f"not valid Python: {e.msg}")
            return {}
        base = self._bases(path, tree, (*chain, path))
        own: dict[str, Any] = {}
        scope = _Scope(base, own)
        for node in tree.body:
            try:
                self._statement(path, node, scope, (*chain, path))
            except _Unsupported as e:
                self.problem(path, node.lineno, str(e))
        return merge(base, own)

    def _bases(self, path: Path, tree: ast.Module, chain: tuple[Path, ...]) -> dict[str, Any]:
        """The merged values of the file's ``_base_`` files (read before the file's own statements)."""
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
                try:
                    names = _Scope({}, {}).evaluate(node.value)
                except _Unsupported as e:
                    self.problem(path, node.lineno, f"_base_: {e}")
                    return {}
                names = [names] if isinstance(names, str) else names
                if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                    self.problem(path, node.lineno, "_base_ must be a file name or a list of file names")
                    return {}
                return self._merge_bases(
                    path, node.lineno, [self._base_file(path, node.lineno, n) for n in names], chain
                )
        return {}

    def _base_file(self, path: Path, line: int, name: str) -> Path | None:
        if "::" in name:
            self.problem(
                path, line, f"_base_ {name!r} is a config of an installed package; copy it next to the config instead"
            )
            return None
        return (path.parent / name).resolve()

    def _merge_bases(self, path: Path, line: int, files: list[Path | None], chain: tuple[Path, ...]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for file in files:
            if file is None:
                continue
            values = self.read(file, chain)
            clash = sorted(k for k in values if k in merged and not k.startswith("_"))
            if clash:
                self.problem(path, line, f"several bases define {', '.join(clash)} (MMEngine refuses this too)")
            merged.update(values)
        return merged

    # -- statements ----------------------------------------------------------------------------
    def _statement(self, path: Path, node: ast.stmt, scope: _Scope, chain: tuple[Path, ...]) -> None:
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
                return  # read first, by _bases
            value = scope.evaluate(node.value)
            for target in node.targets:
                scope.assign(target, value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            scope.assign(node.target, scope.evaluate(node.value))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring
        elif isinstance(node, ast.Expr) and _is_update(node.value):
            call = node.value
            assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            target = scope.evaluate(call.func.value)
            if not isinstance(target, dict):
                raise _Unsupported(".update(...) on something that is not a dict")
            update = scope.call_arguments(call, "update")
            merged = merge(target, update)
            target.clear()
            target.update(merged)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                scope.imports[alias.asname or alias.name.partition(".")[0]] = ImportedName(
                    alias.name if alias.asname else alias.name.partition(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise _Unsupported("a relative import outside `with read_base():` (migrate reads no code)")
            for alias in node.names:
                if alias.name == "*":
                    raise _Unsupported(f"`from {node.module} import *` (migrate imports nothing)")
                scope.imports[alias.asname or alias.name] = ImportedName(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.With) and all(_is_read_base(item.context_expr) for item in node.items):
            for inner in node.body:
                self._read_base(path, inner, scope, chain)
        else:
            raise _Unsupported(
                f"a {type(node).__name__} statement is not evaluated (a config is read, not run: only "
                "assignments of values, imports and _base_ are)"
            )

    def _read_base(self, path: Path, node: ast.stmt, scope: _Scope, chain: tuple[Path, ...]) -> None:
        """New-style inheritance: ``from .x import *`` (or names) inside ``with read_base():``."""
        if not isinstance(node, ast.ImportFrom) or not node.level:
            raise _Unsupported("only relative `from .file import ...` lines belong in `with read_base():`")
        directory = path.parent
        for _ in range(node.level - 1):
            directory = directory.parent
        file = (directory / Path(*(node.module or "").split("."))).with_suffix(".py").resolve()
        values = self.read(file, chain)
        if any(alias.name == "*" for alias in node.names):
            chosen = {k: v for k, v in values.items() if not k.startswith("_")}
        else:
            missing = [a.name for a in node.names if a.name not in values]
            if missing:
                raise _Unsupported(f"{file.name} defines no {', '.join(missing)}")
            chosen = {a.asname or a.name: values[a.name] for a in node.names}
        for key, value in chosen.items():
            scope.base[key] = value
            scope.own[key] = _plain(value) if not isinstance(value, dict) else merge({}, value)


def _is_update(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"


class _Scope:
    """Names visible to a file's expressions: its own assignments, over its bases' values."""

    def __init__(self, base: dict[str, Any], own: dict[str, Any]) -> None:
        self.base = base
        self.own = own
        self.imports: dict[str, ImportedName] = {}
        """Names bound by imports: usable as values (their dotted paths), not settings themselves."""

    def lookup(self, name: str) -> Any:
        if name in self.own:
            return self.own[name]
        if name in self.imports:
            return self.imports[name]
        if name == "_base_":
            return self.base
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        raise _Unsupported(
            f"name {name!r} is not defined before this line (migrate evaluates only names set in the config)"
        )

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.own[target.id] = value
            return
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            holder = self.evaluate(target.value)
            key: Any = target.attr if isinstance(target, ast.Attribute) else self.evaluate(target.slice)
            if isinstance(holder, dict) or (isinstance(holder, list) and isinstance(key, int)):
                holder[key] = value
                return
        raise _Unsupported(f"cannot assign to {ast.unparse(target)}")

    def call_arguments(self, node: ast.Call, what: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for arg in node.args:
            value = self.evaluate(arg)
            if not isinstance(value, dict):
                raise _Unsupported(f"{what}(...) takes dicts or keyword arguments")
            out.update(value)
        for keyword in node.keywords:
            value = self.evaluate(keyword.value)
            if keyword.arg is None:
                if not isinstance(value, dict):
                    raise _Unsupported(f"**{ast.unparse(keyword.value)} is not a dict")
                out.update(value)
            else:
                out[keyword.arg] = value
        return out

    def evaluate(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    spread = self.evaluate(value)
                    if not isinstance(spread, dict):
                        raise _Unsupported(f"**{ast.unparse(value)} is not a dict")
                    out.update(spread)
                else:
                    out[self.evaluate(key)] = self.evaluate(value)
            return out
        if isinstance(node, ast.List):
            return [self.evaluate(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.evaluate(e) for e in node.elts)
        if isinstance(node, ast.Set):
            return {self.evaluate(e) for e in node.elts}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONTAINERS:
            if node.func.id == "dict":
                return self.call_arguments(node, "dict")
            if node.keywords or len(node.args) > 1:
                raise _Unsupported(f"{node.func.id}(...) takes one value")
            return _CONTAINERS[node.func.id](self.evaluate(node.args[0]) if node.args else ())
        if isinstance(node, ast.Attribute):
            holder = self.evaluate(node.value)
            if isinstance(holder, ImportedName):
                return ImportedName(f"{holder.path}.{node.attr}")
            if isinstance(holder, dict) and node.attr in holder:
                return holder[node.attr]
            raise _Unsupported(f"{ast.unparse(node)}: no such key")
        if isinstance(node, ast.Subscript):
            holder = self.evaluate(node.value)
            key = self.evaluate(node.slice)
            try:
                return holder[key]
            except (KeyError, IndexError, TypeError) as e:
                raise _Unsupported(f"{ast.unparse(node)}: {type(e).__name__}") from None
        if isinstance(node, ast.UnaryOp):
            operand = self.evaluate(node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return +operand
            if isinstance(node.op, ast.Not):
                return not operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if not all(isinstance(v, (int, float, str, list, tuple)) for v in (left, right)):
                raise _Unsupported(f"{ast.unparse(node)}: arithmetic on something that is not a number or a string")
            if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
                raise _Unsupported(f"{ast.unparse(node)}: too large an exponent")
            if isinstance(node.op, ast.Mult) and any(isinstance(v, (str, list, tuple)) for v in (left, right)):
                raise _Unsupported(f"{ast.unparse(node)}: repeating a string or a list")
            try:
                return _BINARY[type(node.op)](left, right)
            except (TypeError, ZeroDivisionError, ValueError) as e:
                raise _Unsupported(f"{ast.unparse(node)}: {e}") from None
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return _COMPARE[type(node.ops[0])](self.evaluate(node.left), self.evaluate(node.comparators[0]))
        if isinstance(node, ast.IfExp):
            return self.evaluate(node.body) if self.evaluate(node.test) else self.evaluate(node.orelse)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    parts.append(format(self.evaluate(value.value)))
                else:
                    parts.append(str(self.evaluate(value)))
            return "".join(parts)
        raise _Unsupported(
            f"{ast.unparse(node)!r} is not evaluated (a config is read, not run: only values, names set "
            "before, dict(...)/list(...) and arithmetic are)"
        )
