"""The agent's and the ComfyUI node's version: the one place it is written (the node's
pyproject.toml and PROTOCOL.md are checked against it by the tests)."""

__version__ = "0.6.0"
