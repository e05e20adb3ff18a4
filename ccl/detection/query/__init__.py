"""Datadog's log search syntax: parsed to a tree (parser) and compiled to predicates over events (match).
Imports nothing else from ccl; the rest of ccl.detection, ccl.datadog (pipelines, the fake) and the verbs use it.
"""
