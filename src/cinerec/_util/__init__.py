"""Shared helpers with no domain knowledge: atomic writes, console/progress, validation."""
