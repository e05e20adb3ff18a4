"""The Datadog log pipeline emulated offline: the emulator and its processors by family (parsers,
remappers, categories). May import ccl.content, ccl.vector and ccl.detection (queries).
"""

from ccl.datadog.pipeline_emulator.emulator import PipelineEmulator
from ccl.datadog.pipeline_emulator.fields import UnsupportedProcessor

__all__ = ["PipelineEmulator", "UnsupportedProcessor"]
