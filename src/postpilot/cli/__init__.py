"""The `postpilot` command: thin wrappers that parse, call the layers, and render."""
