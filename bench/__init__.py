"""Benchmarks: the reference and the optimized scheduler against each other and against the bare
HTTP limit. Run `python bench/run.py --help`; results go to bench/results/ (not committed)."""
