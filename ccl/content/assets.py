"""YAML assets, one object per file: pipelines/, dashboards/, detections/ (rules), monitors/.

Loaded with ruamel.yaml so that every problem can name the file and line it comes from. What a
text loaded to is kept per user (asset_cache.py); an asset from there parses its text again only
when asked for a line, which happens only to report a problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ccl.content import asset_cache
from ccl.content.bounded_yaml import YamlLimitError, bounded_yaml

KIND_DIRS = {"pipeline": "pipelines", "dashboard": "dashboards", "rule": "detections", "monitor": "monitors"}
DIR_KINDS = {directory: kind for kind, directory in KIND_DIRS.items()}


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Asset:
    kind: str
    path: Path
    data: dict[str, Any]
    _tree: Any = field(repr=False, default=None)
    # The text the data came from, when it came from the cache: parsed again only to find a line.
    _text: str | None = field(repr=False, default=None)

    @property
    def id(self) -> str:
        return str(self.data.get("id", self.path.stem))

    def line(self, *keys: str | int) -> int:
        """1-based line of the value at `keys` (or of the nearest parent that exists)."""
        if self._tree is None and self._text is not None:
            self._tree = bounded_yaml("rt").load(self._text)
        node, line = self._tree, 1
        for key in keys:
            if isinstance(node, CommentedMap) and key in node:
                position = node.lc.key(key)
                line = position[0] + 1
                node = node[key]
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
                position = node.lc.item(key)
                line = position[0] + 1
                node = node[key]
            else:
                break
        return line


def discover(paths: Iterable[Path], root: Path) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """(kind, file) for every YAML file under `paths` (default: the four asset directories)."""
    chosen = list(paths) or [root / d for d in KIND_DIRS.values() if (root / d).is_dir()]
    found: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    for path in chosen:
        if not path.exists():
            problems.append(Problem(path, 0, "no such file or directory"))
            continue
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        for file in files:
            kind = _kind_of(file)
            if kind is None:
                problems.append(Problem(file, 0, "cannot tell what this is: put it under pipelines/, dashboards/, "
                                                 "detections/ or monitors/"))
            else:
                found.append((kind, file))
    return found, problems


def _kind_of(path: Path) -> str | None:
    for parent in path.resolve().parents:
        if parent.name in DIR_KINDS:
            return DIR_KINDS[parent.name]
    return None


def load(kind: str, path: Path) -> Asset | Problem:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        return Problem(path, 0, f"cannot read: {error.strerror}")
    except UnicodeDecodeError:
        return Problem(path, 0, "not UTF-8 text")
    cached = asset_cache.cached_data(text)
    if cached is not None:
        return Asset(kind, path, cached, _text=text)
    try:
        tree = bounded_yaml("rt").load(text)
    except YamlLimitError as error:
        return Problem(path, error.line, error.message)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        return Problem(path, line, f"not valid YAML: {error.problem or error.context}; check indentation and quoting")
    except YAMLError as error:
        return Problem(path, 0, f"not valid YAML: {error}")
    if not isinstance(tree, CommentedMap):
        return Problem(path, 1, f"a {kind} file holds one mapping (key: value lines), not "
                                f"{type(tree).__name__ if tree is not None else 'nothing'}")
    asset = Asset(kind, path, plain(tree), tree)
    asset_cache.keep(text, asset.data)
    return asset


def plain(value: Any) -> Any:
    """ruamel's commented types -> dict, list, str, int, float, bool, None."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def load_all(paths: Iterable[Path], root: Path) -> tuple[list[Asset], list[Problem]]:
    found, problems = discover(paths, root)
    assets = []
    for kind, file in found:
        loaded = load(kind, file)
        if isinstance(loaded, Problem):
            problems.append(loaded)
        else:
            assets.append(loaded)
    return assets, problems
