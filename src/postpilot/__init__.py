"""postpilot: publishes scheduled social-media posts fast and exactly once."""

__version__ = "0.1.0"
