"""A small offline emulation of the Datadog log pipeline processors our pipeline uses.

Enough to prove, without a Datadog org, that pipelines/claude-compliance-logs.yaml produces
Datadog's attributes on raw activities and leaves already-normalized events unchanged. Semantics
follow docs.datadoghq.com/logs/log_configuration/processors and the API reference:
- attribute and schema remappers take the first source that exists; `preserve_source` keeps it,
  `override_on_conflict` lets them replace an existing target; `target_format` converts;
- a category processor (and a schema category mapper) applies the first category whose query
  matches; a schema category mapper whose match is its fallback ("Other") takes the name from the
  fallback's source attribute, which is what Datadog's expected output shows;
- a string builder writes its template; with a missing attribute it is skipped unless
  `is_replace_missing`;
- the date remapper sets the official date (epoch ms) from the first parsable source; the grok
  parser supports the `%{date("...")}` rules the pipeline uses;
- the GeoIP parser writes Datadog's geoip attributes (an empty object when nothing is found); the
  user-agent parser writes Datadog's useragent_details (via the production VRL);
- a nested pipeline runs its processors when its filter matches.
Any other processor type is refused, never silently skipped. Each family's handlers are a module
beside this one: parsers.py, remappers.py, categories.py.
"""

from __future__ import annotations

import copy
from typing import Any

from ccl.datadog.pipeline_emulator.categories import CATEGORIES
from ccl.datadog.pipeline_emulator.fields import Handler, UnsupportedProcessor
from ccl.datadog.pipeline_emulator.parsers import PARSERS
from ccl.datadog.pipeline_emulator.remappers import REMAPPERS
from ccl.detection.query.match import compile_query
from ccl.vector.geoip import GeoIpTable
from ccl.vector.normalize import _program


class PipelineEmulator:
    """Runs one pipeline's JSON (as `ccl render` writes it) over events."""

    def __init__(self, pipeline: dict[str, Any], geoip: GeoIpTable | None = None):
        self.pipeline = pipeline
        self.geoip = geoip
        self._queries: dict[str, Any] = {}
        self.normalize = _program("normalize.vrl")
        self.geoip_map = _program("geoip.vrl")
        self.handlers: dict[str, Handler] = {"pipeline": _nested_pipeline, **PARSERS, **REMAPPERS, **CATEGORIES}

    def matches(self, query: str, event: dict[str, Any]) -> bool:
        if query not in self._queries:
            self._queries[query] = compile_query(query)
        return self._queries[query](event)

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event after the pipeline (a copy), if its filter matches."""
        event = copy.deepcopy(event)
        if self.matches(self.pipeline["filter"]["query"], {**event, "ddsource": event.get("ddsource", "")}):
            self.run_processors(self.pipeline["processors"], event)
        return event

    def run_processors(self, processors: list[dict[str, Any]], event: dict[str, Any]) -> None:
        """Each enabled processor in turn, by its type's handler (parsers, remappers, categories, nested pipelines)."""
        for processor in processors:
            if processor.get("is_enabled") is False:
                continue
            handler = self.handlers.get(processor["type"])
            if handler is None:
                raise UnsupportedProcessor(f"the emulator does not run {processor['type']!r} ({processor['name']})")
            handler(self, processor, event)


def _nested_pipeline(emulator: PipelineEmulator, processor: dict[str, Any], event: dict[str, Any]) -> None:
    if emulator.matches((processor.get("filter") or {}).get("query", "*"), event):
        emulator.run_processors(processor.get("processors", []), event)
