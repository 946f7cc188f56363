"""The reference and optimized schedulers over one engine, the worker loop, and run-once."""
