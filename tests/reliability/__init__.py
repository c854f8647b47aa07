"""Reliability suite (issue 10): one test per failure class, each failing before its fix, plus the fuzz suite."""
