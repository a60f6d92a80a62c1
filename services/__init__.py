"""Async clients, one per backend system, and the runbook engine. No Textual here."""
