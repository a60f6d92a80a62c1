"""Timestamps as the APIs send them (Kubernetes, Alertmanager: RFC 3339 with a Z)."""

from __future__ import annotations

from datetime import datetime


def parse_iso(text: str | None) -> datetime | None:
    """The aware datetime in `text` ("2026-11-23T10:00:00Z"), or None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
