"""The Datadog samples a pipeline's tests run on: a file next to the pipeline, or one shipped with ccl.

`datadog_samples: ccl:datadog-pipeline-tests.yaml` names Datadog's own 29 samples for this source
(with their expected output), shipped inside the package so that `ccl test` works in any
detections repository; any other value is a path relative to the pipeline file. `ccl validate`
only checks that the file is there (`check_reference`); `ccl test` reads it in full (`load_samples`)
and reports an unusable one as a failed test that says what is wrong, never a traceback.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ruamel.yaml.error import YAMLError

from ccl.content.bounded_yaml import YamlLimitError, bounded_yaml

PACKAGED = "ccl:"


class SamplesError(ValueError):
    """The samples file is missing or not in the shape of Datadog's `_tests.yaml`; the message says which."""


def packaged_names() -> list[str]:
    return sorted(entry.name for entry in resources.files("ccl").joinpath("data").iterdir()
                  if entry.name.endswith("-tests.yaml"))


def check_reference(pipeline_path: Path, reference: str) -> None:
    """SamplesError unless `reference` names a samples file that exists."""
    _locate(pipeline_path, reference)


def load_samples(pipeline_path: Path, reference: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(raw activity, Datadog's expected result) of each sample `reference` names, or SamplesError."""
    source, where = _locate(pipeline_path, reference)
    try:
        document = bounded_yaml("safe").load(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise SamplesError(f"{where}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SamplesError(f"{where}: not UTF-8 text") from None
    except YamlLimitError as error:
        raise SamplesError(f"{where}:{error.line}: {error.message}") from None
    except YAMLError as error:
        raise SamplesError(f"{where}: not valid YAML: {str(error).splitlines()[0]}") from None
    samples = document.get("tests") if isinstance(document, dict) else None
    if not isinstance(samples, list) or not samples:
        raise SamplesError(f"{where}: expected Datadog's pipeline test format (<integration>_tests.yaml), "
                           "a mapping with a non-empty `tests:` list")
    return [_sample(f"{where}: tests[{index}]", sample) for index, sample in enumerate(samples)]


def _sample(where: str, sample: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(sample, dict) or not isinstance(sample.get("sample"), str) \
            or not isinstance(sample.get("result"), dict) or not isinstance(sample["result"].get("custom"), dict):
        raise SamplesError(f"{where}: needs `sample` (the raw log, JSON text) and `result: {{custom: ...}}`")
    try:
        raw = json.loads(sample["sample"])
    except (ValueError, RecursionError) as error:
        raise SamplesError(f"{where}.sample: not JSON ({error})") from None
    if not isinstance(raw, dict):
        raise SamplesError(f"{where}.sample: a JSON {type(raw).__name__}, not an activity object")
    return raw, sample["result"]


def _locate(pipeline_path: Path, reference: str) -> tuple[Path | Traversable, str]:
    if reference.startswith(PACKAGED):
        name = reference[len(PACKAGED):]
        resource = resources.files("ccl").joinpath("data", name)
        if "/" in name or not name.endswith("-tests.yaml") or not resource.is_file():
            shipped = ", ".join(PACKAGED + known for known in packaged_names())
            raise SamplesError(f"{reference!r} is not shipped with ccl; shipped: {shipped}")
        return resource, reference
    path = (pipeline_path.parent / reference).resolve()
    if not path.is_file():
        raise SamplesError(f"{reference} does not exist (looked for {path}); Datadog's samples for this source "
                           f"ship with ccl: write `datadog_samples: {PACKAGED}datadog-pipeline-tests.yaml`")
    return path, str(path)
