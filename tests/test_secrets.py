"""The key never appears in any output, log, error message, state file or cassette."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ADMIN_TEST_KEY, ROOT, TEST_KEY, collector_env, run_collector

KEY_SHAPE = re.compile(rb"sk-ant-(?:admin01|api0[1-3])-[A-Za-z0-9_-]{8,}")


def assert_clean(blob: bytes, where: str) -> None:
    for secret in (TEST_KEY, ADMIN_TEST_KEY):
        assert secret.encode() not in blob, f"the key leaked into {where}"
        assert secret[-16:].encode() not in blob, f"part of the key leaked into {where}"


def test_no_output_of_any_path_holds_the_key(make_simulator, tmp_path):
    produced: list[tuple[str, bytes]] = []
    cases = [
        ("", TEST_KEY, ["--once"]),
        ("429@1,503@2,drop@3,garbage@4", ADMIN_TEST_KEY, ["--once", "--max-rpm", "0"]),
        ("not-enabled", TEST_KEY, ["--once"]),
        ("403", ADMIN_TEST_KEY, ["--once"]),
        ("401", TEST_KEY, ["--once", "--log-level", "DEBUG"]),
        ("500-final", TEST_KEY, ["--once", "--log-format", "text"]),
    ]
    for index, (faults, key, args) in enumerate(cases):
        simulator = make_simulator(faults, seed=50 + index, rate=0.5, history=600)
        state = tmp_path / f"state{index}"
        run = run_collector(simulator.url, state, *args, key=key)
        produced += [(f"stdout of case {index}", run.stdout), (f"stderr of case {index}", run.stderr.encode())]
        produced += [(str(path), path.read_bytes()) for path in state.iterdir() if path.is_file()]
        # What the simulator recorded about the requests (compliance_api_accessed) holds no key either.
        produced.append((f"simulated feed {index}", repr(simulator.store.all_activities()).encode()))

    simulator = make_simulator(seed=60, rate=0.5, history=600)
    backfill = subprocess.run([sys.executable, "-m", "collector", "backfill", "--since", "1h", "--state-dir",
                               str(tmp_path / "bf")], env=collector_env(simulator.url), capture_output=True,
                              cwd=ROOT, timeout=60)
    status = subprocess.run([sys.executable, "-m", "collector", "status", "--json", "--state-dir",
                             str(tmp_path / "state0")], capture_output=True, cwd=ROOT, timeout=60)
    produced += [("backfill stdout", backfill.stdout), ("backfill stderr", backfill.stderr),
                 ("status", status.stdout + status.stderr)]
    for where, blob in produced:
        assert_clean(blob, where)
    assert backfill.returncode == 0 and status.returncode == 0


def test_a_key_in_a_key_file_that_is_malformed_is_not_echoed(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(TEST_KEY + " trailing words\n")
    key_file.chmod(0o600)
    run = run_collector("http://127.0.0.1:9", tmp_path / "s", "--once", "--key-file", str(key_file), key=None)
    assert run.returncode == 2
    assert "contains spaces" in run.stderr
    assert_clean(run.stderr.encode() + run.stdout, "the error about a malformed key file")


def test_cassettes_hold_no_key():
    cassettes = sorted((ROOT / "tests" / "cassettes").rglob("*.yaml"))
    assert cassettes, "the cassettes are part of the suite"
    for path in cassettes:
        blob = path.read_bytes()
        assert not KEY_SHAPE.search(blob), f"{path} holds something shaped like a key"
        assert_clean(blob, str(path))
