"""Connecting accounts: each platform's flow, and the service that runs them."""
