"""MaxMind's test database, fetched once per user (ccl/vector/maxmind_testdb.py), by however many processes at once."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import tarfile
from pathlib import Path

from ccl.vector import maxmind_testdb


def _fetch_beside_another(directory: str, database: str, barrier) -> None:
    """In a child process: fetch with `pip download` answered from `database`, renaming only once both wrote."""
    def pip_download(command, **_):
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            tar.add(database, arcname=maxmind_testdb.MEMBER)
        (Path(command[command.index("-d") + 1]) / "maxminddb-3.2.0.tar.gz").write_bytes(archive.getvalue())
        return subprocess.CompletedProcess(command, 0, "", "")

    real_replace = Path.replace

    def replace_when_both_wrote(self, target):
        barrier.wait(timeout=30)
        return real_replace(self, target)

    maxmind_testdb.subprocess.run = pip_download
    Path.replace = replace_when_both_wrote
    maxmind_testdb.city_test_database(Path(directory))


def test_two_processes_fetching_the_database_at_once_both_get_it_whole(geoip_db, tmp_path):
    context = multiprocessing.get_context("spawn")  # not fork: this process may have server threads
    barrier = context.Barrier(2)
    fetchers = [context.Process(target=_fetch_beside_another, args=(str(tmp_path), str(geoip_db), barrier))
                for _ in range(2)]
    for fetcher in fetchers:
        fetcher.start()
    for fetcher in fetchers:
        fetcher.join(timeout=60)
    assert [fetcher.exitcode for fetcher in fetchers] == [0, 0]
    assert (tmp_path / maxmind_testdb.FILE_NAME).read_bytes() == geoip_db.read_bytes()
    assert [path.name for path in tmp_path.iterdir()] == [maxmind_testdb.FILE_NAME]  # no partial file left
