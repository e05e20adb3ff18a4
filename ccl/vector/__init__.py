"""The Vector side: normalize.vrl and geoip.vrl run in Python (vrl-python), GeoIP tables, MaxMind's test
databases, Vector's own unit tests run offline (harness) and its config checked against its options (lint).
Imports nothing else from ccl; detection, datadog and the verbs build on it.
"""
