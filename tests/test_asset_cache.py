"""What a YAML file parsed to is kept per user (ccl/content/asset_cache.py): the next `ccl` gets the same data,
the same lines in its problems, and any change to the file, or any problem in it, is parsed again."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from ccl.content import asset_cache
from ccl.content.assets import Asset, load, load_all
from tests.conftest import CCL, ROOT


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "claude-compliance-logs" / "assets"


def key_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every key path of the data, down to the leaves, plus one that does not exist under each mapping."""
    paths = [path]
    if isinstance(value, dict):
        paths.append((*path, "no-such-key"))
        for key, item in value.items():
            paths += key_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += key_paths(item, (*path, index))
    return paths


def test_every_repository_asset_loads_from_the_cache_as_it_parses(cache):
    parsed, problems = load_all([], ROOT)
    assert not problems and len(parsed) >= 70
    assert len(list(cache.glob("*/*.json"))) == len({asset.path.read_text() for asset in parsed})
    cached, _ = load_all([], ROOT)
    for fresh, again in zip(parsed, cached, strict=True):
        assert again._tree is None, f"{again.path} was parsed again"  # it came from the cache
        assert (again.kind, again.path, again.data) == (fresh.kind, fresh.path, fresh.data)
        assert again.data is not fresh.data
    # Lines (found by parsing the cached text again) at every key of the largest asset of each kind.
    largest: dict[str, tuple[Asset, Asset]] = {}
    for fresh, again in sorted(zip(parsed, cached, strict=True), key=lambda pair: pair[0].path.stat().st_size):
        largest[fresh.kind] = (fresh, again)
    for fresh, again in largest.values():
        paths = key_paths(fresh.data)
        assert [again.line(*keys) for keys in paths] == [fresh.line(*keys) for keys in paths], again.path


def test_an_edited_file_is_parsed_again(cache, tmp_path):
    path = tmp_path / "monitors" / "m.yaml"
    path.parent.mkdir()
    path.write_text("id: m\nname: first\n")
    assert load("monitor", path).data == {"id": "m", "name": "first"}
    path.write_text("id: m\nname: second\n")
    edited = load("monitor", path)
    assert edited.data == {"id": "m", "name": "second"} and edited._tree is not None
    assert load("monitor", path)._tree is None  # now this text is cached too


@pytest.mark.parametrize("text", ["id: m\nname: [unclosed\n", "- a list\n", "x: &a [1, *a]\n"],
                         ids=["not-yaml", "not-a-mapping", "recursive"])
def test_a_file_with_a_problem_is_never_cached(cache, tmp_path, text):
    path = tmp_path / "monitors" / "m.yaml"
    path.parent.mkdir()
    path.write_text(text)
    first, second = load("monitor", path), load("monitor", path)
    assert not isinstance(first, Asset) and first == second
    assert not list(cache.glob("*/*.json"))


def test_a_corrupt_entry_or_an_unwritable_cache_is_parsed_around(cache, tmp_path, monkeypatch):
    path = tmp_path / "monitors" / "m.yaml"
    path.parent.mkdir()
    path.write_text("id: m\nname: kept\n")
    load("monitor", path)
    (entry,) = cache.glob("*/*.json")
    for garbage in (b"{not json", b'{"data": [1]}', b"\xff\xfe"):
        entry.write_bytes(garbage)
        assert load("monitor", path).data == {"id": "m", "name": "kept"}
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # a file where the directory should be
    assert load("monitor", path).data == {"id": "m", "name": "kept"}
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")  # what pathlib raises without HOME or passwd

    monkeypatch.setattr(Path, "home", no_home)
    assert load("monitor", path).data == {"id": "m", "name": "kept"}


def test_entries_of_another_ruamel_are_not_used(cache, tmp_path, monkeypatch):
    import ruamel.yaml

    path = tmp_path / "monitors" / "m.yaml"
    path.parent.mkdir()
    path.write_text("id: m\n")
    load("monitor", path)
    monkeypatch.setattr(ruamel.yaml, "__version__", "0.0.0")
    asset_cache._fingerprint.cache_clear()
    try:
        assert load("monitor", path)._tree is not None
        assert len(list(cache.iterdir())) == 2
    finally:
        asset_cache._fingerprint.cache_clear()


def test_validate_reports_the_same_problems_at_the_same_lines_from_the_cache(tmp_path):
    for directory in ("detections", "monitors"):
        subprocess.run(["cp", "-r", str(ROOT / directory), str(tmp_path / directory)], check=True)
    rule = tmp_path / "detections" / "sso-disabled.yaml"
    rule.write_text(rule.read_text().replace("@evt.name:org_sso_toggled", "@evt.name:org_sso_togled"))
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [subprocess.run([*CCL, "validate"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
            for _ in range(2)]
    assert runs[0].returncode == runs[1].returncode == 2
    assert "detections/sso-disabled.yaml:" in runs[0].stderr and "org_sso_togled" in runs[0].stderr
    assert runs[0].stderr == runs[1].stderr
    files = list(tmp_path.glob("detections/*.yaml")) + list(tmp_path.glob("monitors/*.yaml"))
    assert len(list((tmp_path / "cache").rglob("*.json"))) == len(files)  # kept by the first run, used by the second
