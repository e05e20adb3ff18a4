"""`ccl vector-test`: Vector config unit tests through the harness."""

from __future__ import annotations

import sys
from pathlib import Path

from ccl.vector.harness import Config, HarnessError, format_results, run_tests
from ccl.vector.lint import VECTOR_VERSION, lint_file


def run_vector_test(configs: tuple[Path, ...], tables: tuple[str, ...], only: str | None) -> int:
    enrichment: dict[str, Path] = {}
    for spec in tables:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"error: --enrichment-table {spec!r}: expected NAME=PATH", file=sys.stderr)
            return 2
        enrichment[name] = Path(path)
    # Vector refuses to load a config with an option it does not know or a value of the wrong
    # type before it runs any test: so does this.
    problems = [problem for path in configs for problem in lint_file(path)]
    for problem in problems:
        if problem.unchecked:
            print(f"note: {problem}", file=sys.stderr)
    problems = [problem for problem in problems if not problem.unchecked]
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"error: {len(problems)} option problem(s) against Vector {VECTOR_VERSION}'s reference; "
              "Vector would not load this config", file=sys.stderr)
        return 2
    try:
        config = Config(configs, Path.cwd(), enrichment)
        if not config.tests:
            print(f"error: no [[tests]] in {', '.join(map(str, configs))}", file=sys.stderr)
            return 2
        results = run_tests(config, only)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_results(results))
    if not results:
        print(f"error: no test name contains {only!r}", file=sys.stderr)
        return 2
    return 0 if all(result.passed for result in results) else 1
