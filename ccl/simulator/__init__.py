"""A faithful fake of the Compliance API, for the demo, the tests and the benchmarks.
May import ccl.content (the activity catalogue) and nothing else from ccl.
"""

from ccl.simulator.faults import FaultPlan, FaultSpecError
from ccl.simulator.server import Simulator

__all__ = ["FaultPlan", "FaultSpecError", "Simulator"]
