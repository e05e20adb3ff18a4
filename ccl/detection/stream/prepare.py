"""From input lines to compact, time-keyed events for the engine (the part of `ccl detect` that runs in parallel).

- `LineFilter` decides from a line's bytes, without parsing it, that no rule can match it: on a
  normalized event by `evt.name`, on a raw activity by its `type` (normalize.vrl sets `evt.name`
  from `type`, so a raw activity of a type no rule names never needs the VRL).
- `Preparer` parses a line, normalizes it if it is raw, takes its time exactly as the engine does
  (`event_time`), matches the rules' queries, keeps only the top-level attributes the matching rules
  read, and serializes the result (orjson, or pickle for what JSON cannot carry): the sort holds
  ~0.3 KB per event instead of ~8 KB.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

from orjson import JSONEncodeError
from orjson import dumps as fast_dumps
from orjson import loads as fast_loads

from ccl.detection.engine import Engine
from ccl.detection.query import RESERVED, And, Cidr, MatchAll, Node, Not, Or, Range, Term
from ccl.detection.rules import Rule
from ccl.detection.signals import event_time
from ccl.vector.normalize import SOURCE, TOO_DEEP
from ccl.vector.normalize_memo import OCSF_KEY, RememberingNormalizer

# In a normalized event (keys sorted, as VRL writes them) `evt` starts with its name.
EVENT_NAME = re.compile(rb'"evt":\s*\{\s*"name":\s*"([a-z0-9_]+)"')
NORMALIZED = re.compile(rb'"ddsource":\s*"' + re.escape(SOURCE.encode()) + rb'"')
# Every string value of a "type" key: the activity's own type is one of them (the actor's is another).
TYPE_VALUE = re.compile(rb'"type"\s*:\s*"([^"\\]*)(["\\])')
# What the engine reads besides the rules' attributes: ids for signals, the name for dispatch, the
# time, and network.client.geoip for impossible travel.
ENGINE_KEYS = frozenset({"id", "evt", "timestamp", "created_at", "network"})
PICKLE_PROTOCOL = 5
PICKLED = 0x80  # first byte of a pickle (protocol 2 and later); orjson output starts with "[" or "{"

Prepared = tuple[float, bytes]  # (event time, serialized event)
# (lines, non-blank lines, of which no rule can match, [(line index, time, payload) or (line index, problem)])
BlockResult = tuple[int, int, int, list[tuple[Any, ...]]]


def is_normalized(event: dict[str, Any]) -> bool:
    return event.get("ddsource") == SOURCE and isinstance(event.get("evt"), dict)


class LineFilter:
    """`needed(line)` is False only for a line no rule can match; `skipped` counts them."""

    def __init__(self, wanted_names: set[str] | None):
        self.wanted = None if wanted_names is None else {name.encode() for name in wanted_names}
        self.skipped = 0

    def needed(self, line: bytes) -> bool:
        if self.wanted is None:
            return True
        if NORMALIZED.search(line):
            match = EVENT_NAME.search(line)
            if match is None or match.group(1) in self.wanted:
                return True
        else:
            found = TYPE_VALUE.findall(line)
            if not found:
                return True  # no type at all: parse it, so that a broken line is reported
            for value, end in found:
                if end == b"\\" or value in self.wanted:
                    return True  # an escaped value is decided after parsing
        self.skipped += 1
        return False


def attributes_read(rule: Rule) -> frozenset[str] | None:
    """The top-level attributes the rule and the engine read; None if that cannot be known."""
    keys = set(ENGINE_KEYS)
    for query in rule.queries:
        found = _query_keys(query.node)
        if found is None:
            return None
        keys |= found
        for attribute in [*query.group_by, *query.distinct, *([query.metric] if query.metric else [])]:
            keys.add(attribute.removeprefix("@").split(".")[0])
    return frozenset(keys)


def _query_keys(node: Node) -> set[str] | None:
    if isinstance(node, And | Or):
        keys: set[str] = set()
        for part in node.parts:
            found = _query_keys(part)
            if found is None:
                return None
            keys |= found
        return keys
    if isinstance(node, Not):
        return _query_keys(node.part)
    if isinstance(node, MatchAll):
        return set()
    if isinstance(node, Term):
        if node.field is None:
            return {"message"}
        if node.attribute:
            return {node.field.split(".")[0]}
        return {RESERVED[node.field]} if node.field in RESERVED else {"ddtags", "tags"}
    if isinstance(node, Range):
        return {RESERVED.get(node.field, node.field) if not node.attribute else node.field.split(".")[0]}
    if isinstance(node, Cidr):
        return {node.field.split(".")[0]}
    return None  # a kind of query this does not know: keep every attribute


def serialize(value: Any) -> bytes:
    try:
        return fast_dumps(value)
    except (JSONEncodeError, TypeError):
        return pickle.dumps(value, PICKLE_PROTOCOL)


def deserialize(payload: bytes) -> Any:
    return pickle.loads(payload) if payload[0] == PICKLED else fast_loads(payload)


class Preparer:
    """Turns lines into (time, serialized [matches, event]); one per process (it owns a VRL runtime).

    Matching the rules' queries happens here too (`Engine.matches`), so that the process running the
    detectors only feeds them; an event no query matches is dropped, as the engine would ignore it.
    """

    def __init__(self, engine: Engine, geoip_db: Path | None):
        self.engine, self.geoip_db = engine, geoip_db
        self._normalizer: RememberingNormalizer | None = None
        self._keys_by_rule = [attributes_read(rule) for rule in engine.rules]
        self._keys: dict[tuple[int, ...], frozenset[str] | None] = {}
        self._reads_ocsf: dict[str | None, bool] = {}  # per event name, whether a rule that can match it does

    def prepare_block(self, block: bytes | None, backwards: bool, line_filter: LineFilter) -> BlockResult:
        """A block of whole lines (see event_files.read_blocks; None for none), in reading order (last
        line first when `backwards`): its lines, its non-blank lines, of which no rule can match, and
        per line some rule may: (index, time, payload) or (index, problem), the index counting the
        block's lines from its first in the file, from 0 (the caller knows where the block starts)."""
        if block is None:
            return 0, 0, 0, []
        lines = block.split(b"\n")
        numbered = zip(range(len(lines) - 1, -1, -1), reversed(lines), strict=True) if backwards \
            else enumerate(lines)
        events, skipped_before, found = 0, line_filter.skipped, []
        needed, prepare_line = line_filter.needed, self.prepare_line
        for number, line in numbered:
            if not line.strip():
                continue
            events += 1
            if needed(line):
                result = prepare_line(number, line)
                if result is not None:
                    found.append(result if type(result[1]) is str else (number, *result))
        return len(lines), events, line_filter.skipped - skipped_before, found

    def prepare_line(self, number: int, line: bytes) -> Prepared | tuple[int, str] | None:
        try:
            return self._prepare(line)
        except RecursionError:  # parsing, normalizing or serializing a line nested beyond any activity
            return number, TOO_DEEP
        except _Unusable as problem:
            return number, str(problem)

    def _prepare(self, line: bytes) -> Prepared | None:
        try:
            event, exact = fast_loads(line), True
        except ValueError:
            event, problem = _parse_slowly(line)
            if problem is not None:
                raise _Unusable(problem) from None
            exact = False
        if not isinstance(event, dict):
            raise _Unusable(f"a JSON {type(event).__name__}, not an activity object")
        if not is_normalized(event):
            event = self._normalize(event)
        moment = event_time(event)
        matches = self.engine.matches(event) if moment is not None else None
        if not matches:
            return None
        keep = self._keys_for(tuple(position for position, _ in matches))
        if keep is not None:
            event = {key: value for key, value in event.items() if key in keep}
        # What only the stdlib parses (NaN, integers beyond 64 bits) would not survive orjson.
        return moment, serialize([matches, event]) if exact else pickle.dumps([matches, event], PICKLE_PROTOCOL)

    def _normalize(self, activity: dict[str, Any]) -> dict[str, Any]:
        """normalize.vrl's event; without `ocsf` where no rule that can match it reads `ocsf` (the
        event's name is its raw `type`, as normalize.vrl sets `evt.name`)."""
        kind = activity.get("type")
        name = kind if isinstance(kind, str) and kind else None
        reads_ocsf = self._reads_ocsf.get(name)
        if reads_ocsf is None:
            if len(self._reads_ocsf) >= 10_000:  # a hostile input's made-up types must not grow it forever
                self._reads_ocsf.clear()
            wanted = [self._keys_by_rule[position] for position in self.engine.candidates(name)]
            reads_ocsf = self._reads_ocsf[name] = any(keys is None or OCSF_KEY in keys for keys in wanted)
        normalizer = self.normalizer
        return normalizer.normalize(activity) if reads_ocsf else normalizer.normalize_without_ocsf(activity)

    def _keys_for(self, positions: tuple[int, ...]) -> frozenset[str] | None:
        if positions not in self._keys:
            wanted = [self._keys_by_rule[position] for position in positions]
            self._keys[positions] = None if None in wanted else frozenset().union(*wanted)  # type: ignore[arg-type]
        return self._keys[positions]

    @property
    def normalizer(self) -> RememberingNormalizer:
        if self._normalizer is None:
            self._normalizer = RememberingNormalizer(self.geoip_db)
        return self._normalizer


class _Unusable(ValueError):
    """A line that is no activity; the message says why."""


def _parse_slowly(line: bytes) -> tuple[Any, str | None]:
    """The stdlib accepts what orjson refuses (NaN, huge integers) and words errors well: (value, why not)."""
    try:
        return json.loads(line), None
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 ({error.reason} at byte {error.start})"
    except ValueError as error:
        return None, f"not JSON ({getattr(error, 'msg', error)} at column {getattr(error, 'colno', None)})"
