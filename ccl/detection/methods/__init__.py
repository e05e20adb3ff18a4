"""The four detection methods of a rule (`method:` in its YAML), one module each, as Datadog documents them.
Each detector is fed events in time order and raises signals; may import ccl.detection.rules, signals and query.
"""

from ccl.detection.methods.impossible_travel import ImpossibleTravelDetector
from ccl.detection.methods.new_value import NewValueDetector
from ccl.detection.methods.sequence import SequenceDetector
from ccl.detection.methods.threshold import ThresholdDetector

DETECTORS = {"threshold": ThresholdDetector, "new_value": NewValueDetector,
             "impossible_travel": ImpossibleTravelDetector, "sequence": SequenceDetector}
