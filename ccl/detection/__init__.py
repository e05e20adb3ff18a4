"""The detection engine: Datadog's log search syntax (query/), rules and their case conditions, the engine
and its four methods (methods/), each rule's own tests, coverage, the actor matrix, and `ccl detect` over
inputs of any size (stream/). May import ccl.content and ccl.vector; never ccl.datadog nor the verbs.
"""
