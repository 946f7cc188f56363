"""One connector per platform: how a person connects an account of it (see connect/base.py)."""
