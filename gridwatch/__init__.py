"""The `gridwatch` command line: one entry point for the edge, the hub and the simulators."""

__version__ = "0.1.0"
"""The one version source: the package metadata (pyproject.toml), the agent's heartbeat and the hub's API."""
