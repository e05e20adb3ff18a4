"""Categorizing processors: the category processor, and the OCSF schema processor with its mappers."""

from __future__ import annotations

from typing import Any

from ccl.datadog.pipeline_emulator.fields import MISSING, Emulator, Handler, UnsupportedProcessor, get, put
from ccl.datadog.pipeline_emulator.remappers import remap

CATEGORY_NAMES = {1: "System Activity", 2: "Findings", 3: "Identity & Access Management", 4: "Network Activity",
                  5: "Discovery", 6: "Application Activity"}


def category_processor(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    for category in processor["categories"]:
        if emulator.matches(category["filter"]["query"], event):
            put(event, processor["target"], category["name"])
            return


def schema_processor(emulator: Emulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    schema = processor["schema"]
    class_uid = int(schema["class_uid"])
    put(event, "ocsf.class_uid", class_uid)
    put(event, "ocsf.class_name", schema["class_name"])
    put(event, "ocsf.category_uid", class_uid // 1000)
    put(event, "ocsf.category_name", CATEGORY_NAMES.get(class_uid // 1000, "Other"))
    for mapper in processor["mappers"]:
        if mapper["type"] == "schema-remapper":
            remap(event, mapper)
        elif mapper["type"] == "schema-category-mapper":
            category_mapper(emulator, mapper, event)
        else:
            raise UnsupportedProcessor(f"schema mapper {mapper['type']!r} is not emulated")


def category_mapper(emulator: Emulator, mapper: dict[str, Any], event: dict[str, Any]) -> None:
    targets = mapper["targets"]
    fallback = mapper.get("fallback") or {}
    for category in mapper["categories"]:
        if not emulator.matches(category["filter"]["query"], event):
            continue
        name, identifier = category["name"], category["id"]
        values = fallback.get("values") or {}
        if values and name == values.get(targets["name"]) and str(identifier) == str(values.get(targets["id"])):
            for source in (fallback.get("sources") or {}).get(targets["name"], []):
                value = get(event, source)
                if value is not MISSING and value is not None:
                    name = value
                    break
        put(event, targets["name"], name)
        put(event, targets["id"], int(identifier))
        return


CATEGORIES: dict[str, Handler] = {"category-processor": category_processor, "schema-processor": schema_processor}
