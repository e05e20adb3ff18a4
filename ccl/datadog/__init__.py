"""The Datadog side: YAML rendered to API payloads, the API client, plan and deploy with ownership, a fake
Datadog, and the pipeline emulator with the pipeline's tests on Datadog's own samples.
May import ccl.content, ccl.vector and ccl.detection; never the verbs (cli, commands, validate, demo).
"""
