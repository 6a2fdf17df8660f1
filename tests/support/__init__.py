"""Helpers that run as real processes during tests (fake agents and the like)."""
