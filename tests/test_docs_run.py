"""Every command the docs show works.

Each ```sh block of README.md and docs/*.md says, in the HTML comment just above it, how it is
checked. `<!-- runnable -->` blocks are run, page by page and in order, in a scratch copy of the
content, as a reader who followed the page would: `ccl` on PATH, the simulator and the fake Datadog
serving, and the collector's environment set (collector.md exports it). The addresses the docs show
(127.0.0.1:8900 for `ccl simulate`, 127.0.0.1:8901 for `ccl simulate --datadog`) are replaced by
the servers this test started on free ports. `<!-- help-checked: why -->` blocks need what this
machine has not (Vector, Docker, a host, an account): every `ccl`, collector and `make` command in
them is checked against its `--help` (each option it uses must be listed) or the Makefile, and
every repository file they name must exist. Links between the pages must land on a heading.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from ccl.commands.simulate import FAKE_DD_API_KEY, FAKE_DD_APP_KEY
from ccl.datadog.fake import FakeDatadog
from ccl.simulator import Simulator
from ccl.vector.maxmind_testdb import city_test_database
from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- (runnable|help-checked)(?::\s*(.+?))? -->$")
SHELL_FENCES = ("```sh", "```bash", "```shell")
# What the reader's shell holds after collector.md's "try it by hand" (its key is a made-up one
# the simulator accepts); the Datadog variables are exported by the deploy page's own block.
READER_KEY = "sk-ant-api01-demo-key-not-real"
CONTENT = ("pipelines", "dashboards", "monitors", "detections", "vector", "vector.toml")
REPOSITORY_ROOTS = ("bench", "ccl", "collector", "dashboards", "deploy", "detections", "docs", "monitors",
                    "pipelines", "tests", "tools", "vector", "vector.toml", "Makefile", "pyproject.toml")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    how: str | None  # runnable, help-checked, or None when unmarked
    why: str | None
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def shell_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        fence = lines[index].strip()
        if fence.startswith("```") and fence != "```":
            end = next(n for n in range(index + 1, len(lines)) if lines[n].strip() == "```")
            if fence in SHELL_FENCES:
                above = next((lines[n].strip() for n in range(index - 1, -1, -1) if lines[n].strip()), "")
                marker = MARKER.match(above)
                blocks.append(Block(page, index + 1, marker and marker.group(1), marker and marker.group(2),
                                    "\n".join(lines[index + 1:end])))
            index = end
        index += 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in shell_blocks(page)]


def test_every_shell_block_says_how_it_is_checked():
    unmarked = [str(block) for block in ALL_BLOCKS if block.how is None]
    assert not unmarked, f"shell blocks without <!-- runnable --> or <!-- help-checked: why -->: {unmarked}"
    unexplained = [str(block) for block in ALL_BLOCKS if block.how == "help-checked" and not block.why]
    assert not unexplained, f"help-checked blocks must say why they are not run: {unexplained}"
    assert sum(block.how == "runnable" for block in ALL_BLOCKS) >= 9  # what the pages had when this was written


def test_the_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "```mermaid" in readme
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", readme))
    assert linked == {page.name for page in (ROOT / "docs").glob("*.md")}, "the README links every docs page"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text, inside_fence, found = page.read_text(encoding="utf-8"), False, set()
    for line in text.splitlines():
        if line.startswith("```"):
            inside_fence = not inside_fence
        elif not inside_fence and line.startswith("#"):
            found.add(github_anchor(line.lstrip("#")))
    return found


def test_links_between_pages_land_on_a_file_and_a_heading():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


# --- help-checked (and runnable) blocks: the options and files they name exist -----------------

def command_lines(text: str) -> list[list[str]]:
    """Each simple command of a block, as words, with environment assignments dropped."""
    joined = text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in [*words, ";"]:
            if word in ("&&", "||", "|", ";", "&") or word.endswith(";"):
                if word.endswith(";") and word != ";":
                    current.append(word[:-1])
                while current and re.match(r"^[A-Z_]+=", current[0]):
                    current.pop(0)
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


def program_of(words: list[str]) -> tuple[list[str], list[str]] | None:
    """(the command that prints the help, the words after it) for ccl and the collector, else None."""
    if words[0] == "ccl":
        return [sys.executable, "-m", "ccl"], words[1:]
    if words[0].startswith("python") and words[1:3] == ["-m", "collector"]:
        return [sys.executable, "-m", "collector"], words[3:]
    if words[0].startswith("python") and len(words) > 1 and words[1].endswith(".pyz"):
        return [sys.executable, "-m", "collector"], words[2:]
    return None


@cache
def help_text(program: tuple[str, ...], subcommand: str | None) -> str:
    command = [*program, *([subcommand] if subcommand else []), "--help"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, f"{' '.join(command[2:])}: {done.stderr}"
    return done.stdout


def subcommands(program: tuple[str, ...]) -> set[str]:
    if program[-1] == "collector":
        return {"backfill", "status"}
    listed = help_text(program, None).split("Commands:")[-1]
    return set(re.findall(r"^\s{2}([a-z][\w-]+)\s", listed, re.M))


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def option_problems(words: list[str]) -> list[str]:
    if words[0] == "make":
        return [f"make {target}: no such target" for target in words[1:] if target not in makefile_targets()]
    found = program_of(words)
    if found is None:
        return []
    program, rest = tuple(found[0]), found[1]
    subcommand = rest[0] if rest and rest[0] in subcommands(program) else None
    if program[-1] == "ccl" and subcommand is None and rest and not rest[0].startswith("-"):
        return [f"ccl {rest[0]}: no such command"]
    listed = help_text(program, subcommand)
    options = [word.split("=")[0] for word in rest if word.startswith("--")]
    shown = " ".join([*words[:len(words) - len(rest)], *([subcommand] if subcommand else [])])
    return [f"{shown}: {option} is not in its --help" for option in options
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", listed)]


def repository_paths(words: list[str]) -> list[str]:
    if words[0] == "helm":  # `helm install NAME vector/vector`: a chart of a chart repository, not a path
        words = [word for before, word in zip(["", *words[:-1]], words, strict=True) if before == "-f"]
    paths = []
    for word in words:
        value = word.split("=", 1)[-1]
        if value.split("/")[0] in REPOSITORY_ROOTS and not value.startswith(("/", "-", "$")):
            paths.append(value)
    return paths


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=str)
def test_the_commands_of_a_block_name_real_options_and_files(block):
    problems = []
    for words in command_lines(block.text):
        problems += option_problems(words)
        problems += [f"{path}: no such file in the repository" for path in repository_paths(words)
                     if not list(ROOT.glob(path))]
    assert not problems, f"{block}: {problems}"


# --- runnable blocks: run against the simulator and the fake Datadog -----------------------------

RUNNABLE_PAGES = sorted({block.page for block in ALL_BLOCKS if block.how == "runnable"})


@pytest.fixture(scope="module")
def servers():
    simulator = Simulator(seed=1, rate=0.5, history=3600, scenarios=["sso-brute-force", "bulk-chat-access"]).start()
    datadog = FakeDatadog(FAKE_DD_API_KEY, FAKE_DD_APP_KEY).start()
    city_test_database()  # the pages use the test database `make demo` caches
    yield simulator, datadog
    simulator.stop()
    datadog.stop()


def reader_environment(simulator: Simulator) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DD_", "CCL_", "ANTHROPIC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CCL_API_URL"] = simulator.url
    env["ANTHROPIC_COMPLIANCE_KEY"] = READER_KEY
    return env


def with_our_servers(text: str, simulator: Simulator, datadog: FakeDatadog) -> str:
    return (text.replace("http://127.0.0.1:8900", simulator.url)
                .replace("http://127.0.0.1:8901", datadog.url))


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_runnable_blocks_of_a_page_run(page, servers, tmp_path):
    simulator, datadog = servers
    scratch = tmp_path / "repository"
    scratch.mkdir()
    for name in CONTENT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, scratch / name)
        else:
            shutil.copy2(source, scratch / name)
    blocks = [block for block in shell_blocks(page) if block.how == "runnable"]
    script = ["set -euo pipefail"]
    for block in blocks:  # one shell, so that what a block exports holds for the next, as for a reader
        script += [f'cd "{scratch}"', f"echo '>>> block {block}' >&2",
                   with_our_servers(block.text, simulator, datadog)]
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=scratch, env=reader_environment(simulator),
                          capture_output=True, text=True, timeout=600)
    last_block = re.findall(r">>> block (\S+)", done.stderr)[-1:] or ["?"]
    assert done.returncode == 0, (f"{last_block[0]} failed (exit {done.returncode}):\n"
                                  f"{done.stderr[-3000:]}\n{done.stdout[-1500:]}")
    assert READER_KEY not in done.stdout + done.stderr
