"""One blueprint per domain."""
