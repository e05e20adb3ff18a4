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

    def parse_or():
        left = parse_and()
        while peek() == ("op", "||"):
            take()
            right = parse_and()
            left = (lambda a, b: lambda v: a(v) or b(v))(left, right)
        return left

    def parse_and():
        left = parse_comparison()
        while peek() == ("op", "&&"):
            take()
            right = parse_comparison()
            left = (lambda a, b: lambda v: a(v) and b(v))(left, right)
        return left

    def parse_comparison():
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
        right = operand()
        compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
                   "==": float.__eq__, "!=": float.__ne__}[op]
        # Evaluated for every event a threshold rule counts: the usual `name > number` is one lookup.
        if isinstance(left, str) and isinstance(right, float):
            return lambda v: compare(float(v.get(left, 0.0)), right)
        return lambda v: compare(_operand_value(left, v), _operand_value(right, v))

    def operand() -> str | float:
        """A query's name, or a number."""
        kind, value = take()
        if kind == "number":
            return float(value)
        if kind == "name":
            return value
        raise ConditionError(f"expected a query name or a number, found {value!r}")

    evaluator = parse_or()
    if index != len(tokens):
        raise ConditionError(f"unexpected {tokens[index][1]!r}")
    return evaluator, names


def _operand_value(operand: str | float, values: Values) -> float:
    return float(values.get(operand, 0.0)) if isinstance(operand, str) else operand
