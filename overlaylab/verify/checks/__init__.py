"""Checks prove what the lab's networks really do. Each yields `CheckResult`s."""
