"""deploy/: the Docker image definition, the Helm values and the systemd units, checked without
Docker, Kubernetes or Vector (none runs here): linted, checked against their sources of truth
(Vector's image, the chart's values at the pinned version, systemd's own verifier), and the
topology loaded from the file layout each of them produces."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import CCL, ROOT

DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
CHART_VERSION = "0.56.0"
PYZ_PATH = "/usr/local/lib/claude-compliance-logs/claude-compliance-collector.pyz"
CONFIG_DIR = "/etc/claude-compliance-logs"
# One of vector/tests.toml's tests: an activity line through exec's fields and normalize.vrl.
LAYOUT_PROBE_TEST = "an activity line from the collector is normalized without exec's fields"


def tool(name: str) -> Path:
    path = VENV_BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed for this platform (see the test extra in pyproject.toml)")
    return path


def load_topology_from(layout: Path, configs: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run one Vector unit test over `configs` (absolute paths inside `layout`) from the layout's
    working directory, as Vector would resolve `file = ...` there."""
    tests = tmp_path / "tests.toml"
    shutil.copy(ROOT / "vector" / "tests.toml", tests)
    paths = [str(layout / config.lstrip("/")) for config in configs]
    return subprocess.run([*CCL, "vector-test", *paths, str(tests), "--name", LAYOUT_PROBE_TEST],
                          capture_output=True, text=True, cwd=layout / CONFIG_DIR.lstrip("/"), check=False)


def missing_program_files(layout: Path) -> list[str]:
    """`file = ...` of every Vector config in the layout (both GeoIP stages) that is not there."""
    workdir = layout / CONFIG_DIR.lstrip("/")
    missing = []
    for config in sorted(workdir.rglob("*.toml")):
        for section in tomllib.loads(config.read_text()).get("transforms", {}).values():
            missing += [f"{config.name}: {f}" for f in [section.get("file"), *section.get("files", [])]
                        if f and not (workdir / f).is_file()]
    return missing


# -- Docker -------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "docker" / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_passes_hadolint(tmp_path):
    hadolint = tool("hadolint")
    done = subprocess.run([hadolint, "--format", "json", DEPLOY / "docker" / "Dockerfile"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stdout
    # ... and hadolint does look: the same file without --no-install-recommends is reported.
    careless = tmp_path / "Dockerfile"
    careless.write_text((DEPLOY / "docker" / "Dockerfile").read_text().replace(" --no-install-recommends", ""))
    done = subprocess.run([hadolint, "--format", "json", careless], capture_output=True, text=True, check=False)
    assert "DL3015" in {finding["code"] for finding in json.loads(done.stdout)}


def test_the_image_is_vectors_debian_image_at_0_57_run_as_vector_runs():
    instructions = dockerfile()
    froms = [args for name, args in instructions if name == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"docker\.io/timberio/vector:0\.57\.\d+-debian(@sha256:[0-9a-f]{64})?",
                                              froms[0])
    # Vector's image has no USER and runs /usr/bin/vector (distribution/docker/debian/Dockerfile).
    assert "USER" not in {name for name, _ in instructions}
    assert json.loads(dict(instructions)["ENTRYPOINT"]) == ["/usr/bin/vector"]
    run_lines = " ".join(args for name, args in instructions if name == "RUN")
    assert "apt-get install -y --no-install-recommends python3" in run_lines
    assert dict(instructions)["ENV"] == f"PYTHONPATH={PYZ_PATH}"


def vector_toml_state_dir() -> str:
    """The --state-dir vector.toml gives the collector: every health check must look there."""
    command = tomllib.loads((ROOT / "vector.toml").read_text())["sources"]["compliance_feed"]["command"]
    return command[command.index("--state-dir") + 1]


def run_check(command: list[str], state: Path, *extra: str) -> subprocess.CompletedProcess:
    """A deploy file's health check command, run here: this Python for `python3`, `state` for its state dir."""
    assert command[:5] == ["python3", "-m", "collector", "status", "--check"] or \
        command[:5] == ["/usr/bin/python3", "-m", "collector", "status", "--check"], command
    arguments = [str(state) if word == vector_toml_state_dir() else word for word in command[1:]]
    return subprocess.run([sys.executable, *arguments, *extra], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


@pytest.fixture(scope="module")
def caught_up_state(tmp_path_factory) -> Path:
    """A state dir after one successful --once run against the simulator."""
    from ccl.simulator import Simulator
    from tests.conftest import run_collector

    simulator = Simulator(seed=70, rate=1.0, history=600).start()
    try:
        state = tmp_path_factory.mktemp("check") / "state"
        assert run_collector(simulator.url, state, "--once").returncode == 0
    finally:
        simulator.stop()
    return state


def test_the_image_checks_its_health_with_status_check_on_vector_tomls_state_dir(caught_up_state):
    line = dict(dockerfile())["HEALTHCHECK"]
    options, _, command = line.partition(" CMD ")
    assert "--start-period=10m" in options and "--interval=1m" in options
    check = json.loads(command)
    assert vector_toml_state_dir() in check
    # The command works: unhealthy (not running) on a state no collector holds, healthy for a
    # scheduled one; exit 0 or 1, and one line.
    done = run_check(check, caught_up_state)
    assert done.returncode == 1 and done.stdout.startswith("unhealthy: no collector is running")
    assert run_check(check, caught_up_state, "--allow-not-running").stdout.startswith("healthy: ")


def image_layout(tmp_path: Path) -> tuple[Path, list[str], str]:
    """The files the Dockerfile's COPY lines put in the image, under tmp_path; its CMD and WORKDIR."""
    layout = tmp_path / "image"
    instructions = dockerfile()
    for name, args in instructions:
        if name != "COPY":
            continue
        words = [word for word in shlex.split(args) if not word.startswith("--")]
        *sources, destination = words
        for source in sources:
            origin = ROOT / source
            if source.startswith("dist/"):
                assert source == "dist/claude-compliance-collector.pyz"  # what `make dist` writes
                continue
            assert origin.is_file(), f"COPY {source}: no such file in the repository"
            target = layout / destination.lstrip("/")
            target = target / origin.name if destination.endswith("/") else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, target)
    command = json.loads(dict(instructions)["CMD"])
    return layout, [command[i + 1] for i, word in enumerate(command) if word == "--config"], \
        dict(instructions)["WORKDIR"]


def test_the_image_layout_loads_the_topology_from_its_working_directory(tmp_path):
    layout, configs, workdir = image_layout(tmp_path)
    assert workdir == CONFIG_DIR
    assert missing_program_files(layout) == []
    assert configs == [f"{CONFIG_DIR}/vector.toml", f"{CONFIG_DIR}/vector/geoip-off.toml"]
    done = load_topology_from(layout, configs, tmp_path)
    assert done.returncode == 0 and "1 passed, 0 failed" in done.stdout, done.stdout + done.stderr


# -- Helm ---------------------------------------------------------------------------------------

def helm_values() -> dict:
    return YAML(typ="safe").load((DEPLOY / "helm" / "values.yaml").read_text())


def unknown_keys(ours: dict, chart: dict, prefix: str = "") -> list[str]:
    """Keys we set that the chart does not have. Where the chart's value is not a mapping with keys
    (e.g. `resources: {}`, `env: []`), what goes below it is Kubernetes' business, not the chart's."""
    unknown = []
    for key, value in ours.items():
        path = f"{prefix}{key}"
        if key not in chart:
            unknown.append(path)
        elif isinstance(value, dict) and isinstance(chart[key], dict) and chart[key]:
            unknown.extend(unknown_keys(value, chart[key], path + "."))
    return unknown


def test_every_helm_value_is_a_key_of_the_pinned_chart():
    chart = YAML(typ="safe").load((ROOT / "tests" / "data" / f"vector-chart-{CHART_VERSION}-values.yaml").read_text())
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert f"--version {CHART_VERSION}" in text and f"chart version {CHART_VERSION}" in text
    assert unknown_keys(helm_values(), chart) == []
    assert unknown_keys({"replica": 1, "persistence": {"sise": "1Gi"}}, chart) == ["replica", "persistence.sise"]


def test_the_helm_release_runs_exactly_one_poller_with_its_state_on_a_volume():
    values = helm_values()
    assert values["role"] == "Aggregator"  # the chart's StatefulSet
    # The chart renders `replicas` only when neither kind of autoscaling is on (templates/statefulset.yaml).
    assert values["replicas"] == 1
    assert values["autoscaling"]["enabled"] is False and values["autoscaling"]["external"] is False
    assert values["persistence"]["enabled"] is True and not values["persistence"].get("existingClaim")
    # The volume is mounted at dataDir, which must be vector.toml's data_dir (the cursor is under it).
    assert f'data_dir = "{values["dataDir"]}"' in (ROOT / "vector.toml").read_text()
    readme = (ROOT / "docs" / "install.md").read_text()
    assert "two replicas" in readme and "every activity" in readme


def test_the_helm_readiness_probe_is_status_check_and_there_is_no_liveness_probe(caught_up_state):
    values = helm_values()
    assert "livenessProbe" not in values  # a restart fixes neither an API outage nor a revoked key
    probe = values["readinessProbe"]
    assert set(probe) == {"exec", "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold"}
    command = probe["exec"]["command"]
    assert vector_toml_state_dir() in command
    assert run_check(command, caught_up_state, "--allow-not-running").returncode == 0


def test_the_helm_keys_come_from_a_secret_and_the_image_from_the_dockerfile():
    values = helm_values()
    assert values["envFrom"] == [{"secretRef": {"name": "claude-compliance-logs-keys"}}]
    assert not [e for e in values.get("env", []) if "value" in e and "KEY" in e["name"]]
    assert values["image"]["tag"].startswith("0.57.")


def test_the_helm_config_mount_loads_the_topology_from_the_repositorys_files(tmp_path):
    values = helm_values()
    volume = {v["name"]: v for v in values["extraVolumes"]}["claude-compliance-logs-config"]
    mount = {m["name"]: m for m in values["extraVolumeMounts"]}["claude-compliance-logs-config"]
    assert values["existingConfigMaps"] == [volume["configMap"]["name"]]
    assert mount["mountPath"] == CONFIG_DIR and mount["readOnly"] is True
    # The ConfigMap is made with `kubectl create configmap --from-file` of these files: each key is
    # a file name of the repository, laid out again at `path` under the mount.
    layout = tmp_path / "pod"
    created = re.findall(r"--from-file=(\S+)", (DEPLOY / "helm" / "values.yaml").read_text())
    for item in volume["configMap"]["items"]:
        source = next(ROOT / path for path in created if Path(path).name == item["key"])
        target = layout / CONFIG_DIR.lstrip("/") / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    assert missing_program_files(layout) == []
    configs = [values["args"][i + 1] for i, word in enumerate(values["args"]) if word == "--config"]
    done = load_topology_from(layout, configs, tmp_path)
    assert done.returncode == 0 and "1 passed, 0 failed" in done.stdout, done.stdout + done.stderr


# -- systemd ------------------------------------------------------------------------------------

VECTOR_SERVICE = ROOT / "tests" / "data" / "vector-0.57.0-vector.service"
DROP_IN = DEPLOY / "systemd" / "vector.service.d" / "claude-compliance-logs.conf"
FLUENT_BIT_UNIT = DEPLOY / "systemd" / "claude-compliance-fluent-bit.service"
CHECK_UNIT = DEPLOY / "systemd" / "claude-compliance-logs-check.service"
CHECK_TIMER = DEPLOY / "systemd" / "claude-compliance-logs-check.timer"


def unit(path: Path) -> dict[str, dict[str, str]]:
    """section -> key -> value, as systemd reads a unit (a repeated key, e.g. Environment=, adds a
    line; no continuation lines are used in these files)."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[] "), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and _, f"{path.name}: {line!r} is neither a section nor key=value"
        current[key.strip()] = f"{current[key.strip()]}\n{value.strip()}" if key.strip() in current else value.strip()
    return sections


def test_the_vector_drop_in_gives_the_collector_its_keys_state_and_config():
    service = unit(DROP_IN)["Service"]
    assert service["EnvironmentFile"] == f"{CONFIG_DIR}/keys.env"  # no '-': no keys, no start
    assert service["StateDirectory"] == "vector/claude-compliance-logs" and service["StateDirectoryMode"] == "0700"
    # vector.toml keeps the collector's state and the archive under that directory.
    assert "/var/lib/vector/claude-compliance-logs/collector" in (ROOT / "vector.toml").read_text()
    environment = dict(line.split("=", 1) for line in service["Environment"].splitlines())
    assert environment == {"PYTHONPATH": PYZ_PATH, "VECTOR_CONFIG": f"{CONFIG_DIR}/vector.toml,"
                                                                    f"{CONFIG_DIR}/vector/geoip-off.toml"}
    assert service["WorkingDirectory"] == CONFIG_DIR
    assert "mode 0600" in DROP_IN.read_text()
    assert not [key for key in service if key.startswith("Exec")]  # Vector's own unit starts Vector


def test_the_fluent_bit_unit_makes_writable_exactly_what_fluent_bit_yaml_writes():
    service = unit(FLUENT_BIT_UNIT)["Service"]
    assert service["ExecStart"] == f"/opt/fluent-bit/bin/fluent-bit -c {CONFIG_DIR}/fluent-bit.yaml"
    assert service["EnvironmentFile"] == f"{CONFIG_DIR}/keys.env"
    assert service["Environment"] == f"PYTHONPATH={PYZ_PATH}"
    assert service["DynamicUser"] == "yes"
    writable = [f"/var/lib/{d}" for d in service["StateDirectory"].split()] + \
               [f"/var/log/{d}" for d in service["LogsDirectory"].split()]
    config = YAML(typ="safe").load((ROOT / "vector" / "fluent-bit.yaml").read_text())
    inputs = {i["name"]: i for i in config["pipeline"]["inputs"]}
    command = shlex.split(inputs["exec"]["command"])
    written = [config["service"]["storage.path"], command[command.index("--state-dir") + 1],
               next(w for w in command if w.startswith("2>>"))[3:], inputs["tail"]["db"]]
    for path in written:
        assert any(Path(path).parent == Path(d) or Path(d) in Path(path).parents for d in writable), path


def test_the_check_unit_runs_status_check_as_the_state_dirs_owner_every_5_minutes(caught_up_state):
    service = unit(CHECK_UNIT)["Service"]
    assert service["Type"] == "oneshot" and service["User"] == "vector"  # vector.service's user owns the state
    assert service["Environment"] == f"PYTHONPATH={PYZ_PATH}"
    command = shlex.split(service["ExecStart"])
    assert vector_toml_state_dir() in command
    assert run_check(command, caught_up_state).returncode == 1  # no collector holds the lock here
    timer = unit(CHECK_TIMER)
    assert timer["Timer"] == {"OnBootSec": "10min", "OnUnitActiveSec": "5min"}
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    verifier = shutil.which("systemd-analyze")
    if verifier is None:
        pytest.skip("systemd-analyze is not on this machine; the parsed checks above still ran")
    # verify insists that ExecStart's program exists: stand-ins for vector and fluent-bit, which
    # are not installed here. Nothing else in the units is changed.
    stand_in = tmp_path / "bin" / "program"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    units = tmp_path / "system"
    (units / "vector.service.d").mkdir(parents=True)
    (units / "vector.service").write_text(VECTOR_SERVICE.read_text().replace("/usr/bin/vector", str(stand_in)))
    shutil.copy(DROP_IN, units / "vector.service.d" / DROP_IN.name)
    (units / FLUENT_BIT_UNIT.name).write_text(
        FLUENT_BIT_UNIT.read_text().replace("/opt/fluent-bit/bin/fluent-bit", str(stand_in)))
    (units / CHECK_UNIT.name).write_text(CHECK_UNIT.read_text().replace("/usr/bin/python3", str(stand_in)))
    shutil.copy(CHECK_TIMER, units / CHECK_TIMER.name)
    for name in ("vector.service", FLUENT_BIT_UNIT.name, CHECK_UNIT.name, CHECK_TIMER.name):
        done = subprocess.run([verifier, "verify", "--man=no", str(units / name)], capture_output=True, text=True,
                              check=False)
        # verify exits 0 on an unknown key or a bad value, and only says so: any word is a finding.
        assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    # ... and it does look: a misspelled key in the drop-in is reported.
    broken = units / "vector.service.d" / DROP_IN.name
    broken.write_text(broken.read_text().replace("StateDirectoryMode=", "StateDirectoryMod="))
    done = subprocess.run([verifier, "verify", "--man=no", str(units / "vector.service")], capture_output=True,
                          text=True, check=False)
    assert "Unknown key 'StateDirectoryMod'" in done.stderr
