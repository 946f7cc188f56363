"""One router per platform, mounted under /{platform} by the sandbox app."""
