"""MaxMind's GeoIP2 City *test* database, fetched through the package registry.

The `maxminddb` source distribution on PyPI ships MaxMind's test databases (Apache-2.0 OR MIT,
"fake GeoIP2 data, for example purposes only"), byte-identical to maxmind/MaxMind-DB. The demo
and the tests use it, so no third-party binary lives in this repository. It is cached per user.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "maxminddb==3.2.0"
MEMBER = "maxminddb-3.2.0/tests/data/test-data/GeoIP2-City-Test.mmdb"
MD5 = "4e3bfd1b3d7d6f795fcfb0ab1fb5d6c0"
FILE_NAME = "GeoIP2-City-Test.mmdb"


class TestDatabaseError(Exception):
    """The test database could not be fetched or did not match its checksum."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "claude-compliance-logs"


def city_test_database(directory: Path | None = None) -> Path:
    """Path to GeoIP2-City-Test.mmdb, downloading the maxminddb sdist once if needed."""
    target_dir = directory or cache_dir()
    target = target_dir / FILE_NAME
    if target.is_file() and _md5(target) == MD5:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        # --no-build-isolation: only the archive is wanted; building metadata in isolation would
        # first install setuptools from the registry (half a minute) for nothing.
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   "--no-build-isolation", SDIST, "-d", work]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        archives = list(Path(work).glob("maxminddb-*.tar.gz"))
        if not archives:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no archive"]
            raise TestDatabaseError(f"could not download {SDIST} from the package index: {detail[0]}")
        with tarfile.open(archives[0]) as archive:
            try:
                member = archive.extractfile(MEMBER)
            except KeyError:
                member = None
            if member is None:
                raise TestDatabaseError(f"{archives[0].name} has no {MEMBER}")
            data = member.read()
    if hashlib.md5(data).hexdigest() != MD5:
        raise TestDatabaseError(f"{FILE_NAME} from {SDIST} does not match MaxMind's published file")
    # One partial file per process: two processes fetching at once (pytest -n) never rename the other's half.
    partial = target.with_name(f".{FILE_NAME}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
