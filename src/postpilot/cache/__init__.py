"""Caches for what is costly and rarely changes, keyed so an edit is never served stale."""
