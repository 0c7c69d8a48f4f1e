"""Renderings of a verify report (terminal table, JSON, JUnit XML, HTML) and the
picture of a lab (topology)."""
