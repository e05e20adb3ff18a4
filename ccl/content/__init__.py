"""The content model: the YAML assets (rules, pipelines, dashboards, monitors) loaded with bounds, the
activity catalogue, the actors it allows and the attributes a normalized event carries.
Imports nothing else from ccl; everything else builds on it.
"""
