"""A backend's text as the screens show it: inert (control characters visible, see
services.text.inert) and never read as markup. Escaping is not enough for the second:
a '[' in a customer's text (`\\x1b[2J`) reads differently to Rich's markup and to
Textual's, and no escape survives both, so values go in as plain text, never as markup."""

from __future__ import annotations

from rich.text import Span, Text

from services.text import inert


def plain(value: object, style: str = "", *, limit: int | None = None) -> Text:
    """`value` as a table cell, a line or a title that is never read as markup."""
    return Text(inert(value, limit), style=style)


def fill(template: str, *values: object, limit: int | None = None) -> Text:
    """Our own markup `template` with each `{}` filled by a value shown as plain text:
    inert, cut at `limit`, and styled by the markup around it. A `Text` value (from
    `plain`) keeps its own style too. `fill("[b red]error {}[/]", message)`."""
    slots = [f"\ue000{n}\ue001" for n in range(len(values))]  # no '[' or '\\' in a slot
    text = Text.from_markup(template.format(*slots))
    cuts: list[int] = []
    for slot in slots:
        at = text.plain.find(slot)
        cuts += [at, at + len(slot)]
    pieces = list(text.divide(cuts)) if cuts else [text]
    for n, value in enumerate(values):
        around = pieces[2 * n + 1]  # the slot, carrying the template's styles at that place
        inner = value.copy() if isinstance(value, Text) else Text(inert(value, limit))
        size = len(inner.plain)
        spans = [Span(0, size, s.style) for s in around.spans]
        if inner.style:
            spans.append(Span(0, size, inner.style))
        pieces[2 * n + 1] = Text(inner.plain, spans=[*spans, *inner.spans])
    return Text("").join(pieces)
