"""Seeded synthetic star fields and sequences with known truth, for tests, benchmarks and simulators."""
