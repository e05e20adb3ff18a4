"""Trying deploy without an account: `ccl simulate --datadog`, and the demo's last step."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ccl import demo
from tests.conftest import CCL, ROOT

CONTENT = ("pipelines", "dashboards", "monitors", "detections")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    for directory in CONTENT:
        shutil.copytree(ROOT / directory, tmp_path / directory)
    return tmp_path


def served_exports(process: subprocess.Popen) -> dict[str, str]:
    """The variables the announcement says to export, read from its stderr as it starts."""
    assert process.stderr is not None
    for _ in range(20):
        line = process.stderr.readline()
        found = re.search(r"export (DD_API_URL=\S+) (DD_API_KEY=\S+) (DD_APP_KEY=\S+)", line)
        if found:
            return dict(item.split("=", 1) for item in found.groups())
    raise AssertionError("no export line")


def test_simulate_datadog_serves_the_fake_for_plan_and_deploy_and_prints_what_to_export(repository):
    process = subprocess.Popen([*CCL, "simulate", "--datadog", "--port", "0"], stderr=subprocess.PIPE, text=True,
                               stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        exports = served_exports(process)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", exports["DD_API_URL"])
        assert len(exports["DD_API_KEY"]) == 32 and len(exports["DD_APP_KEY"]) == 40
        env = {key: value for key, value in os.environ.items() if not key.startswith("DD_")} | exports

        def ccl(*args: str, **extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([*CCL, *args], cwd=repository, capture_output=True, text=True, timeout=300,
                                  env=env | extra, check=False)

        first = ccl("plan")
        assert first.returncode == 0, first.stderr
        created = int(re.search(r": (\d+) to create, 0 to update, 0 to delete, 0 unchanged", first.stdout).group(1))
        assert created == sum(len(list((repository / d).glob("*.yaml"))) for d in CONTENT)
        deployed = ccl("deploy", "--yes")
        assert deployed.returncode == 0 and f"applied ({created})" in deployed.stdout, deployed.stdout
        again = json.loads(ccl("plan", "--json").stdout)
        assert len(again) == created and {item["action"] for item in again} == {"noop"}
        refused = ccl("plan", DD_APP_KEY="0" * 40)  # like Datadog, it knows only its own keys
        assert refused.returncode == 3 and "403 Forbidden" in refused.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert re.search(r"fake Datadog stopped after \d+ requests", process.stderr.read())


def test_simulate_datadog_on_a_port_in_use_says_so():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CCL, "simulate", "--datadog", "--port", str(port)], capture_output=True, text=True,
                              cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_demo_ends_with_plan_deploy_and_a_plan_that_is_all_unchanged(repository, monkeypatch, capsys):
    monkeypatch.chdir(repository)
    (repository / ".demo").mkdir()
    assert demo.deploy_to_fake_datadog() is True
    shown = capsys.readouterr().out
    assert "$ ccl plan\n" in shown and "$ ccl deploy --yes\n" in shown
    plans = [(repository / ".demo" / name).read_text() for name in ("1-plan.txt", "3-plan.txt")]
    assert " 0 unchanged" in plans[0].splitlines()[0]
    assert ": 0 to create, 0 to update, 0 to delete, " in plans[1].splitlines()[0]
    assert "applied (" in (repository / ".demo" / "2-deploy-yes.txt").read_text()


def test_the_demos_hints_are_runnable_as_printed(monkeypatch):
    venv_bin = Path(sys.prefix) / "bin"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as after `make demo`: the venv is not activated
    hints = [hint.split("  #")[0].rstrip() for hint in demo.next_steps()]
    activate = hints[0].removeprefix("source ")
    assert hints[0].startswith("source ") and (Path.cwd() / activate).resolve() == (venv_bin / "activate").resolve()
    assert all(hint.startswith("ccl ") for hint in hints[1:])
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")  # activated: ccl is on PATH, no `source` line
    assert demo.next_steps()[0].startswith("ccl status")
