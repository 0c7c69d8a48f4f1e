"""Renderings of a verify report: terminal table, JSON, JUnit XML."""
