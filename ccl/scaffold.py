"""`ccl init DIR`: a team's own detections repository, ready for `ccl validate` and CI.

The templates live in ccl/data/scaffold/; the four examples there are this repository's own
content (so they are valid by construction and tested with it), the schemas are ccl/schemas/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from collector import __version__

# Template names that cannot be package data as they are (hidden names) -> their place in DIR.
RENAMED = {"gitignore": ".gitignore", "github": ".github"}
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=\S*?([a-z]+\.json)\s*$")
SCHEMAS_DIR = "schemas"
DEFAULT_INSTALL = f"claude-compliance-logs[tool]=={__version__}"


class ScaffoldError(Exception):
    """DIR cannot be used; the message says why and what to do."""


@dataclass
class Scaffold:
    directory: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def scaffold(directory: Path, install: str = DEFAULT_INSTALL, force: bool = False) -> Scaffold:
    """Write the repository into `directory`; existing files are never overwritten."""
    _check_directory(directory, force)
    if not install.strip() or "\n" in install:
        raise ScaffoldError("--install must be one pip requirement line, e.g. "
                            "'claude-compliance-logs[tool] @ git+https://github.com/YOUR-ORG/claude-compliance-logs'")
    result = Scaffold(directory)
    for relative, text in sorted(_files(install).items()):
        target = directory / relative
        if target.exists() or target.is_symlink():
            result.kept.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        result.written.append(relative)
    return result


def _check_directory(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"{directory} exists and is not a directory; choose another path")
    if directory.is_dir() and not force:
        # A repository just made with `git init` counts as empty.
        entries = sorted(entry.name for entry in directory.iterdir() if entry.name != ".git")
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ScaffoldError(f"{directory} is not empty ({shown}); choose a new directory, or pass --force "
                                "to add only the files that are missing (existing files are never overwritten)")


def _files(install: str) -> dict[str, str]:
    """Relative path in DIR -> text, for every file of the scaffold."""
    files: dict[str, str] = {}
    templates = resources.files("ccl").joinpath("data", "scaffold")
    for relative, entry in _walk(templates, ""):
        text = entry.read_text(encoding="utf-8")
        if relative.endswith(".yaml"):
            text = _point_at_local_schema(text, relative)
        files[relative] = text.replace("@INSTALL@", install.strip()).replace("@VERSION@", __version__)
    for entry in resources.files("ccl").joinpath("schemas").iterdir():
        if entry.name.endswith(".json"):
            files[f"{SCHEMAS_DIR}/{entry.name}"] = entry.read_text(encoding="utf-8")
    return files


def _walk(folder: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found = []
    for entry in folder.iterdir():
        if entry.name.startswith((".", "__")):
            continue
        name = prefix + RENAMED.get(entry.name, entry.name)
        found.extend(_walk(entry, name + "/") if entry.is_dir() else [(name, entry)])
    return found


def _point_at_local_schema(text: str, relative: str) -> str:
    """The first line names the schema for editors: here ../ccl/schemas/X.json, there ../schemas/X.json."""
    first, _, rest = text.partition("\n")
    match = SCHEMA_LINE.match(first)
    if match is None:
        raise ScaffoldError(f"template {relative} does not name its schema on its first line")  # a packaging bug
    depth = relative.count("/")
    return f"# yaml-language-server: $schema={'../' * depth}{SCHEMAS_DIR}/{match.group(1)}\n{rest}"
