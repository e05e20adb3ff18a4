"""The command lines: `ccl collect` is `python -m collector`; the collector stays standalone."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from tests.conftest import CCL, ROOT


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), capture_output=True, text=True, cwd=ROOT, timeout=60)


def option_names(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text))


def test_ccl_collect_and_python_m_collector_take_the_same_options():
    ccl_help = run(*CCL, "collect", "--help")
    module_help = run(sys.executable, "-m", "collector", "--help")
    assert ccl_help.returncode == module_help.returncode == 0
    names = option_names(module_help.stdout)
    assert names == option_names(ccl_help.stdout)
    for required in ("--key-file", "--api-url", "--state-dir", "--once", "--interval", "--since", "--overlap",
                     "--reconcile-every", "--organization-id", "--activity-type", "--exclude-activity-type",
                     "--max-rpm", "--replay-on-start"):
        assert required in names
    assert "exit codes" in ccl_help.stdout


def test_backfill_and_status_are_reachable_from_both():
    for command in ([*CCL, "backfill", "--help"], [sys.executable, "-m", "collector", "backfill", "--help"]):
        assert "--until" in run(*command).stdout
    for command in ([*CCL, "status", "--help"], [sys.executable, "-m", "collector", "status", "--help"]):
        assert "--json" in run(*command).stdout


def test_the_key_is_never_an_option():
    help_text = run(sys.executable, "-m", "collector", "--help").stdout
    assert "--key " not in help_text and "--api-key" not in help_text
    refused = run(sys.executable, "-m", "collector", "--key", "sk-ant-api01-" + "x" * 20, "--once")
    assert refused.returncode == 2


def test_simulate_lists_faults_and_rejects_a_bad_spec():
    listing = run(*CCL, "simulate", "--list-faults")
    assert listing.returncode == 0
    assert "not-enabled" in listing.stdout and "sso-brute-force" in listing.stdout
    bad = run(*CCL, "simulate", "--faults", "teapot", "--port", "0")
    assert bad.returncode == 2
    assert "cannot read fault 'teapot'" in bad.stderr


def test_the_collector_imports_only_the_standard_library_and_httpx():
    allowed = set(sys.stdlib_module_names) | {"httpx", "collector"}
    for path in (ROOT / "collector").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{path.name} imports {roots}"
    loaded = run(sys.executable, "-c", "import sys, collector.cli, collector.runner, collector.backfill;"
                 "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ccl'))")
    assert loaded.stdout.strip() == "[]"


def test_ccl_without_its_tool_extra_says_how_to_install_it_without_a_traceback():
    # The collector's base install has no click: `ccl` must explain instead of crashing.
    blocked = "import sys; sys.modules['click'] = None; import ccl; ccl.main()"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "ccl needs the tool extra (click is missing)" in done.stderr
    assert "not on PyPI yet" in done.stderr and "make dist" in done.stderr
