"""The Datadog samples a pipeline's tests run on: a file next to the pipeline, or one shipped with ccl.

`datadog_samples: ccl:datadog-pipeline-tests.yaml` names Datadog's own 29 samples for this source
(with their expected output), shipped inside the package so that `ccl test` works in any
detections repository; any other value is a path relative to the pipeline file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

PACKAGED = "ccl:"


class SamplesError(Exception):
    """The samples file is missing or not in the shape of Datadog's `_tests.yaml`; the message says which."""


def packaged_names() -> list[str]:
    return sorted(entry.name for entry in resources.files("ccl").joinpath("data").iterdir()
                  if entry.name.endswith("-tests.yaml"))


def load_samples(pipeline_path: Path, reference: str) -> list[dict[str, Any]]:
    """The samples (`sample` JSON text and `result`) that `reference` names, or SamplesError."""
    text, where = _read(pipeline_path, reference)
    try:
        document = YAML(typ="safe").load(text)
    except YAMLError as error:
        raise SamplesError(f"{where} is not valid YAML: {str(error).splitlines()[0]}") from None
    samples = document.get("tests") if isinstance(document, dict) else None
    if not isinstance(samples, list) or not samples:
        raise SamplesError(f"{where} has no `tests:` list; it must have the shape of Datadog's "
                           "<integration>_tests.yaml (tests: - sample: ..., result: ...)")
    for number, sample in enumerate(samples, start=1):
        if not isinstance(sample, dict) or not isinstance(sample.get("sample"), str) \
                or not isinstance(sample.get("result"), dict):
            raise SamplesError(f"{where}: sample {number} needs `sample` (the raw log as JSON text) and `result`")
    return samples


def _read(pipeline_path: Path, reference: str) -> tuple[str, str]:
    if reference.startswith(PACKAGED):
        name = reference[len(PACKAGED):]
        resource = resources.files("ccl").joinpath("data", name)
        if "/" in name or not name.endswith("-tests.yaml") or not resource.is_file():
            shipped = ", ".join(PACKAGED + known for known in packaged_names())
            raise SamplesError(f"{reference!r} is not shipped with ccl; shipped: {shipped}")
        return resource.read_text(encoding="utf-8"), reference
    path = (pipeline_path.parent / reference).resolve()
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        raise SamplesError(f"{reference} does not exist (looked for {path}); Datadog's samples for this source "
                           f"ship with ccl: write `datadog_samples: {PACKAGED}datadog-pipeline-tests.yaml`") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SamplesError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
