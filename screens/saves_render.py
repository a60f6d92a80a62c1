"""What the Server saves tab draws, as pure functions: a prefix's usage row, an object's
row, and the lines that head the tab. Keys and prefixes come from the bucket: inert."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from screens.shown import fill
from screens.widgets import short_age
from services.saves import PrefixUsage, SaveObject, SavesSummary
from services.text import ELLIPSIS, inert
from services.text import human_bytes as human_size

PREFIX_COLUMNS = ("prefix", "objects", "size", "share")
OBJECT_COLUMNS = ("age", "size", "key")
EXPIRED_STYLE = "yellow"


def middle_cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle left out: an object key's prefix
    and its file name (a save's date) both stay in sight."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def prefix_row(usage: PrefixUsage, total_bytes: int, width: int = 40) -> tuple:
    share = usage.bytes / total_bytes * 100 if total_bytes else 0.0
    label = Text(middle_cut(inert(usage.label), width), style="dim" if usage.loose else "")
    return (label, f"{usage.objects:,}", human_size(usage.bytes), f"{share:.0f}%")


def object_row(item: SaveObject, cutoff: datetime, now: datetime, width: int = 56) -> tuple:
    """(age, size, key); an object past retention (modified before `cutoff`) in yellow."""
    expired = item.modified is not None and item.modified < cutoff
    style = EXPIRED_STYLE if expired else ""
    return (
        Text(short_age(item.modified, now), style=style),
        human_size(item.size),
        Text(middle_cut(inert(item.key), width), style=style),
    )


def summary_lines(summary: SavesSummary, age: str) -> Text:
    """Two lines: the bucket, its size and the data's age; what is past retention."""
    where = f"s3://{summary.bucket}/{summary.prefix}"
    first = fill(
        "[b]{}[/]  {} objects · {}  [dim]listed {}[/]",
        middle_cut(inert(where), 40),
        f"{summary.objects:,}",
        human_size(summary.bytes),
        age,
    )
    days = summary.retention_days
    if summary.expired_objects:
        oldest = summary.oldest_expired[0].modified if summary.oldest_expired else None
        since = f", the oldest {short_age(oldest, summary.listed_at)} old" if oldest else ""
        second = Text(
            f"past the {days}-day retention: {summary.expired_objects:,} objects · "
            f"{human_size(summary.expired_bytes)}{since}",
            style=f"bold {EXPIRED_STYLE}",
        )
    else:
        second = Text(f"nothing past the {days}-day retention", style="green")
    return Text("\n").join([first, second])
