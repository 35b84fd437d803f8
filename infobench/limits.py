"""Caps on what one command may ask of the machine (imported by the CLI, so nothing heavy here)."""

MAX_RUNS = 10_000  # runs one spec may expand into; --max-runs raises it
