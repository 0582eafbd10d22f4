"""Simulated neighbourhoods on the simulated radio, and their metrics (`pigeon sim`)."""
