"""The steps of `up`, as data (after molecule's sequences).

Each step is `ensure_*(ctx) -> bool`: it checks the machine, does only what is
missing, and returns whether it changed anything. A second `up` therefore only
looks, and an `up` after an interruption finishes what was left.
"""
