"""One module per command: what the command does, without click."""
