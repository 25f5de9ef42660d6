"""The `gridwatch` command line: one entry point for the edge, the hub and the simulators."""

__version__ = "0.1.0"
