"""Offline operator tools, run from the CLI only: compare the two schedulers on copies of the same
workload, back up and restore, seed and clean test data, and write the migration report."""
