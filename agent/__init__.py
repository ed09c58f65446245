"""Logbot edge agent."""

# Kept equal to [project] version in pyproject.toml (a test checks it); read
# from here because importlib.metadata costs the agent about 1 MB of memory.
__version__ = "0.1.0"
