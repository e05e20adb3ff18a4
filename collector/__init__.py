"""The collector: reads Anthropic's Compliance API Activity Feed and writes one activity per line.

It is what Vector's `exec` source runs (`python -m collector`). It depends on the standard
library and httpx only, and never imports `ccl`.
"""

__version__ = "0.1.0"
