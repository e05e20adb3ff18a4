"""What `make dist` ships: the single-file collector on a bare python3, and the wheel's package data.

Both are built once per session, offline, from what is installed in this environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_KEY, history_ids
from tests.test_collect_once import since_arg

BUILDER = ROOT / "deploy" / "build_pyz.py"


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "claude-compliance-collector.pyz"
    done = subprocess.run([sys.executable, str(BUILDER), "--out", str(out)], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def bare_python() -> list[str]:
    """The base interpreter of this venv with -I, checked to see neither httpx nor the project."""
    command = [getattr(sys, "_base_executable", sys.executable), "-I"]
    probe = "import importlib.util as u; print(u.find_spec('httpx'), u.find_spec('collector'), u.find_spec('ccl'))"
    seen = subprocess.run([*command, "-c", probe], capture_output=True, text=True, cwd="/", check=True).stdout
    if seen.split() != ["None"] * 3:
        command.append("-S")  # this Python has them in its own site-packages: leave those out too
        seen = subprocess.run([*command, "-c", probe], capture_output=True, text=True, cwd="/", check=True).stdout
    assert seen.split() == ["None"] * 3
    return command


def bare_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv, no keys but the ones given."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra)
    return env


def test_the_pyz_teaches_its_options_on_a_bare_python(pyz, bare_python, tmp_path):
    done = subprocess.run([*bare_python, str(pyz), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          env=bare_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert "--state-dir" in done.stdout and "--once" in done.stdout and "never an argument" in done.stdout


def test_the_pyz_drains_the_simulator_and_reports_its_state(pyz, bare_python, make_simulator, tmp_path):
    simulator = make_simulator(seed=12, rate=2.0, history=5400)
    since, since_epoch = since_arg(80 * 60)
    state = tmp_path / "state"
    env = bare_env(CCL_API_URL=simulator.url, ANTHROPIC_COMPLIANCE_KEY=TEST_KEY)

    run = subprocess.run([*bare_python, str(pyz), "--once", "--since", since, "--max-rpm", "0", "--log-format",
                          "json", "--state-dir", str(state)], capture_output=True, cwd=tmp_path, env=env,
                         timeout=120, check=False)

    assert run.returncode == 0, run.stderr.decode()
    counts = Counter(json.loads(line)["id"] for line in run.stdout.splitlines())
    expected = history_ids(simulator, since_epoch)
    assert len(expected) > 5000  # more than one page
    assert expected <= set(counts) and max(counts.values()) == 1
    assert TEST_KEY.encode() not in run.stdout + run.stderr

    status = subprocess.run([*bare_python, str(pyz), "status", "--state-dir", str(state), "--json"],
                            capture_output=True, text=True, cwd=tmp_path, env=bare_env(), check=False)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["emitted"] == sum(counts.values())


def test_python_finds_the_collector_inside_the_pyz_as_vector_toml_runs_it(pyz, bare_python, tmp_path):
    """vector.toml runs `python3 -m collector`; the image and the systemd units set PYTHONPATH to the pyz."""
    command = [arg for arg in bare_python if arg != "-I"] + ["-s", "-m", "collector", "status", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env=bare_env(PYTHONPATH=str(pyz)), check=False)
    assert done.returncode == 0, done.stderr
    assert "--state-dir" in done.stdout


def test_the_pyz_holds_pure_python_only_with_the_licences_of_what_it_carries(pyz):
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
        contents = archive.read("CONTENTS.txt").decode().split("\n")
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n") and os.access(pyz, os.X_OK)
    assert not [name for name in names if name.endswith((".so", ".pyd", ".dylib", ".pyc"))]
    assert "certifi/cacert.pem" in names  # httpx verifies TLS with it
    for line in filter(None, contents[1:]):
        name, version = line.split()
        assert version == metadata.version(name)
        dist_info = f"{name.replace('-', '_')}-{version}.dist-info/"
        assert f"{dist_info}METADATA" in names and any("licen" in n.lower() for n in names if n.startswith(dist_info))


def test_a_compiled_dependency_is_refused_with_one_line_naming_it():
    spec = importlib.util.spec_from_file_location("build_pyz", BUILDER)
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    with pytest.raises(builder.BuildError, match=r"^orjson [\d.]+ is not pure Python \(orjson/.*\.so\)"):
        builder.distribution_files(metadata.distribution("orjson"))


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel as `make dist` builds it: sdist first, then the wheel from the sdist."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return next(out.glob("*.whl"))


def test_a_scaffolded_repository_works_with_ccl_from_the_wheel(wheel, tmp_path):
    """The samples, templates and schemas are package data (some are symlinks in the source tree)."""
    unpacked = tmp_path / "wheel"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    assert (unpacked / "ccl" / "data" / "datadog-pipeline-tests.yaml").read_bytes() == \
        (ROOT / "tests" / "data" / "datadog-pipeline-tests.yaml").read_bytes()
    # ccl from the wheel, its dependencies from this venv, without the editable install's path hook.
    site_packages = Path(metadata.distribution("click").locate_file(""))
    env = {**os.environ, "PYTHONPATH": f"{unpacked}{os.pathsep}{site_packages}"}
    ccl = [sys.executable, "-S", "-m", "ccl"]
    repository = tmp_path / "detections"

    where = subprocess.run([sys.executable, "-S", "-c", "import ccl; print(ccl.__file__)"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, check=True)
    assert where.stdout.startswith(str(unpacked))
    # validate reads the pipeline's samples too (tests/test_init.py runs `ccl test` there).
    for args, cwd in ((["init", str(repository)], tmp_path), (["validate"], repository)):
        done = subprocess.run([*ccl, *args], capture_output=True, text=True, env=env, cwd=cwd, check=False)
        assert done.returncode == 0, f"ccl {' '.join(args)}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    assert done.stdout.strip() == "ok: 1 pipeline, 1 dashboard, 1 monitor, 1 rule"
