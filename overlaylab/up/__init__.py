"""`invoke up`: the pipeline (pipeline.py), its steps (steps/), and what the steps share."""
