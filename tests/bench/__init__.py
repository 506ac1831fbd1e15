"""Benchmarks: plain scripts that print figures (see docs/BENCHMARKS.md), not tests."""
