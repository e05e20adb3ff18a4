"""One module per command: what the command does, without click.
Verbs over everything: may import any package of ccl; nothing under ccl/content, vector, detection
or datadog may import them.
"""
