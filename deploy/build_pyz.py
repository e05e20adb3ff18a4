"""Build claude-compliance-collector.pyz: the collector with httpx and its dependencies, in one file.

The result runs with a bare python3 (3.11 or newer) and nothing installed:

    python3 claude-compliance-collector.pyz --help
    PYTHONPATH=/path/to/claude-compliance-collector.pyz python3 -m collector ...   # what vector.toml runs

It is built from the packages installed in the Python that runs this script (no download), so it
can be built offline; each of them must be pure Python (a compiled module cannot be imported from a
zip file), and the build stops with one line naming the package if one is not. The archive is a
standard zipapp (PEP 441), written with fixed timestamps in a fixed order, so the same inputs give
the same bytes.

    python deploy/build_pyz.py [--out dist/claude-compliance-collector.pyz]
"""

from __future__ import annotations

import argparse
import io
import sys
import tomllib
import zipapp
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "dist" / "claude-compliance-collector.pyz"
OLDEST_PYTHON = (3, 11)
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
# Installer bookkeeping that means nothing inside the archive (licences and METADATA stay).
SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
MAIN = f'''\
"""claude-compliance-collector.pyz [backfill | status] [options]: the collector of claude-compliance-logs."""
import sys

if sys.version_info < {OLDEST_PYTHON!r}:
    sys.exit("claude-compliance-collector.pyz needs Python {".".join(map(str, OLDEST_PYTHON))} or newer, "
             "not " + sys.version.split()[0])

from collector.cli import main

sys.exit(main())
'''


class BuildError(Exception):
    """The archive cannot be built from this environment; the message says why and what to do."""


def project_requirements() -> list[Requirement]:
    """The collector's own dependencies: [project] dependencies of pyproject.toml (no extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def _applies(requirement: Requirement) -> bool:
    """Needed on the oldest supported Python or on this one (no extras are ever asked for)."""
    if requirement.marker is None:
        return True
    oldest = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0", "extra": ""}
    current = {**default_environment(), "extra": ""}
    return requirement.marker.evaluate(oldest) or requirement.marker.evaluate(current)


def dependency_closure(requirements: list[Requirement]) -> list[metadata.Distribution]:
    """Every installed distribution the requirements need, transitively, each checked once."""
    found: dict[str, metadata.Distribution] = {}
    pending = [r for r in requirements if _applies(r)]
    while pending:
        requirement = pending.pop()
        key = requirement.name.lower().replace("_", "-")
        if key in found:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise BuildError(f"{requirement.name} is not installed in {sys.prefix}; run `make dist` "
                             "(it installs the project first) or pip install it") from None
        if not requirement.specifier.contains(distribution.version, prereleases=True):
            raise BuildError(f"{requirement.name} {distribution.version} is installed but {requirement} is "
                             "required; reinstall the project (make clean && make dist)")
        found[key] = distribution
        pending.extend(r for r in map(Requirement, distribution.requires or []) if _applies(r))
    return [found[key] for key in sorted(found)]


def distribution_files(distribution: metadata.Distribution) -> dict[str, Path]:
    """Archive name -> installed file, for one pure-Python distribution; BuildError if it is not pure."""
    name = f"{distribution.metadata['Name']} {distribution.version}"
    wheel = distribution.read_text("WHEEL") or ""
    compiled = [str(f) for f in distribution.files or [] if str(f).endswith(COMPILED_SUFFIXES)]
    if compiled or "Root-Is-Purelib: false" in wheel:
        shown = compiled[0] if compiled else "its WHEEL says Root-Is-Purelib: false"
        raise BuildError(f"{name} is not pure Python ({shown}): a compiled module cannot be imported from a "
                         "zip file; install its pure-Python build or leave it out of the collector's dependencies")
    files = {}
    for relative in distribution.files or []:
        path = PurePosixPath(str(relative))
        if path.parts[0] == ".." or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue  # console scripts outside site-packages, and bytecode of this Python
        if path.parts[0].endswith(".dist-info") and path.name in SKIPPED_METADATA:
            continue
        files[str(path)] = Path(distribution.locate_file(relative))
    if not files:
        raise BuildError(f"{name} lists no installed files (an editable or broken install?); reinstall it")
    return files


def collector_files() -> dict[str, Path]:
    """The collector package from this source tree (installed editable, so not from site-packages)."""
    package = ROOT / "collector"
    return {str(PurePosixPath("collector") / path.relative_to(package)): path
            for path in sorted(package.rglob("*.py")) if "__pycache__" not in path.parts}


def build(out: Path) -> list[str]:
    """Write the archive; returns `name version` of every distribution inside, the collector first."""
    from collector import __version__

    members = collector_files()
    contents = [f"collector {__version__}"]
    for distribution in dependency_closure(project_requirements()):
        members.update(distribution_files(distribution))
        contents.append(f"{distribution.metadata['Name']} {distribution.version}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _add(archive, "__main__.py", MAIN.encode())
        _add(archive, "CONTENTS.txt", ("\n".join(contents) + "\n").encode())
        for name in sorted(members):
            _add(archive, name, members[name].read_bytes())
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer.seek(0)
    zipapp.create_archive(buffer, out, interpreter="/usr/bin/env python3")
    out.chmod(0o755)  # runnable as ./claude-compliance-collector.pyz by anyone who may read it
    return contents


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the collector's __version__, from this tree
    try:
        contents = build(args.out)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"{args.out}: {size / 1024:,.0f} KiB, {', '.join(contents)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
