"""Datadog's pipeline test samples (its `_tests.yaml` format), loaded with one clear error per problem.

`ccl validate` checks that each samples file exists; `ccl test` loads them (ccl/pipeline_tests.py)
and reports an unusable one as a failed test that says what is wrong, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from ruamel.yaml.error import YAMLError

from ccl.assets import Asset
from ccl.bounded_yaml import YamlLimitError, bounded_yaml


class SampleError(ValueError):
    """A pipeline test's samples file is unusable; the message names the file and what is wrong."""


def load_samples(asset: Asset, entry: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(raw activity, Datadog's expected result) of each sample of one `tests:` entry."""
    if not isinstance(entry, dict) or not isinstance(entry.get("datadog_samples"), str):
        raise SampleError("each pipeline test is `- datadog_samples: <path to Datadog's _tests.yaml>`")
    path = asset.path.parent / entry["datadog_samples"]
    try:
        document = bounded_yaml("safe").load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SampleError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SampleError(f"{path}: not UTF-8 text") from None
    except YamlLimitError as error:
        raise SampleError(f"{path}:{error.line}: {error.message}") from None
    except YAMLError as error:
        raise SampleError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    samples = document.get("tests") if isinstance(document, dict) else None
    if not isinstance(samples, list) or not samples:
        raise SampleError(f"{path}: expected Datadog's pipeline test format, a mapping with a non-empty `tests:` list")
    loaded = []
    for number, sample in enumerate(samples, start=1):
        where = f"{path}: tests[{number - 1}]"
        if not isinstance(sample, dict) or not isinstance(sample.get("sample"), str) \
                or not isinstance(sample.get("result"), dict) or not isinstance(sample["result"].get("custom"), dict):
            raise SampleError(f"{where}: needs `sample` (the raw log, JSON text) and `result: {{custom: ...}}`")
        try:
            raw = json.loads(sample["sample"])
        except (ValueError, RecursionError) as error:
            raise SampleError(f"{where}.sample: not JSON ({error})") from None
        if not isinstance(raw, dict):
            raise SampleError(f"{where}.sample: a JSON {type(raw).__name__}, not an activity object")
        loaded.append((raw, sample["result"]))
    return loaded


def missing_sample_files(asset: Asset) -> list[str]:
    """Samples files named by a pipeline's tests that are not there (`ccl test` reads them in full)."""
    missing = []
    for entry in asset.data.get("tests", []):
        if isinstance(entry, dict) and isinstance(entry.get("datadog_samples"), str):
            path = asset.path.parent / entry["datadog_samples"]
            if not path.is_file():
                missing.append(f"{entry['datadog_samples']}: no such file (relative to {asset.path.parent}/)")
    return missing
