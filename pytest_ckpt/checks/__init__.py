"""The checks themselves: round trip (model pair, loading process), optimizer state, resume,
comparison and outcomes.  Plain Python: no pytest."""
