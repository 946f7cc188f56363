"""The migration toolkit: compare the two schedulers on copies of the same workload, switch and
tune the active one, back up and restore, seed and clean test data, and report on the plan."""
