"""ccl: the claude-compliance-logs tool (collect, simulate, normalize, validate, test, deploy).

Four concerns, each importing only those before it: content (the YAML and the catalogue), vector
(normalize.vrl in Python), detection (the engine), datadog (render, deploy, the emulator); simulator
builds on content alone. The verbs over all of them live here: cli, commands/, validate, demo, scaffold.
"""

import sys

# Imported by `ccl` but not by the collector's base install.
TOOL_DEPENDENCIES = {"click", "ruamel", "jsonschema", "vrl_python", "maxminddb"}


def main() -> None:
    """Console-script entry point; explains the missing extra instead of a traceback."""
    try:
        from ccl.cli import cli
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TOOL_DEPENDENCIES:
            raise
        sys.stderr.write(
            f"ccl needs the tool extra ({exc.name} is missing): install the wheel with it, "
            "pip install 'claude_compliance_logs-<version>-py3-none-any.whl[tool]' (make dist builds it), "
            "or pip install '.[tool]' in a clone (the package is not on PyPI yet)\n"
            "The collector alone runs as: python -m collector\n"
        )
        sys.exit(2)
    cli()
