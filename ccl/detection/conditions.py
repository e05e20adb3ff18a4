"""Case conditions of detection rules: `a > 5 && b >= 1`, `(x > 0 || y > 2) && z == 0`.

Datadog refers to queries by name (or `a`, `b`, ... by position when unnamed); operators are the
comparisons `>`, `>=`, `<`, `<=`, `==`, `!=`, and `&&`, `||` with parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>>=|<=|==|!=|&&|\|\||[<>()]))")
Values = dict[str, float]
# ccl's own bounds: far above any real case, low enough that evaluation never exhausts the recursion.
MAX_CONDITION_LENGTH = 1000
MAX_NESTING = 32


class ConditionError(ValueError):
    pass


def compile_condition(text: str, known: set[str]) -> tuple[Callable[[Values], bool], set[str]]:
    """(evaluator, names used); raises ConditionError naming the problem."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"{len(text):,} characters; ccl accepts conditions of at most {MAX_CONDITION_LENGTH:,}")
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise ConditionError(f"cannot read {text[position:].strip()!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    names = {value for kind, value in tokens if kind == "name"}
    unknown = sorted(names - known)
    if unknown:
        raise ConditionError(f"names no query: {', '.join(unknown)} (queries: {', '.join(sorted(known))})")
    index = depth = 0

    def peek() -> tuple[str, str] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal index
        if index >= len(tokens):
            raise ConditionError("ends too early")
        index += 1
        return tokens[index - 1]

    # Each part becomes Python source, and the whole one function: evaluated for every event a
    # threshold rule counts, a tree of closures cost a call per operator and per comparison.
    def parse_or() -> str:
        parts = [parse_and()]
        while peek() == ("op", "||"):
            take()
            parts.append(parse_and())
        return f"({' or '.join(parts)})"  # flat: long chains must not nest beyond what Python compiles

    def parse_and() -> str:
        parts = [parse_comparison()]
        while peek() == ("op", "&&"):
            take()
            parts.append(parse_comparison())
        return f"({' and '.join(parts)})"

    def parse_comparison() -> str:
        nonlocal depth
        if peek() == ("op", "("):
            take()
            depth += 1
            if depth > MAX_NESTING:
                raise ConditionError(f"parentheses nested deeper than {MAX_NESTING} levels")
            inner = parse_or()
            if take() != ("op", ")"):
                raise ConditionError("missing )")
            depth -= 1
            return inner
        left = operand()
        kind, op = take()
        if kind != "op" or op not in (">", ">=", "<", "<=", "==", "!="):
            raise ConditionError(f"expected a comparison after an operand, found {op!r}")
        return f"({left} {op} {operand()})"

    def operand() -> str:
        """A query's value (0 when the values lack it), or a number; as Python source."""
        kind, value = take()
        if kind == "number":
            return repr(float(value))
        if kind == "name":
            return f"v.get({value!r}, 0.0)"
        raise ConditionError(f"expected a query name or a number, found {value!r}")

    source = parse_or()
    if index != len(tokens):
        raise ConditionError(f"unexpected {tokens[index][1]!r}")
    # Only what the tokens allow reaches the source: names (checked against the queries' names above,
    # written as string literals), numbers (written as floats), comparisons, `and`, `or`, parentheses.
    evaluator = eval(f"lambda v: bool({source})", {"__builtins__": {"bool": bool}})
    return evaluator, names
