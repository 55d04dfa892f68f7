"""One module per resource; ``pages`` is the web UI."""
