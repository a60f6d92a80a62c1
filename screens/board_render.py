"""The board's text, as pure functions of a snapshot: a tile's state line (its data age, or
STALE / DOWN / not configured), its detail lines, and the header; every backend's word inert."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from screens.shown import plain
from services.board import BoardSnapshot, Tile
from services.polling import format_age

LEVEL_STYLE = {"crit": "bold red", "warn": "yellow", "ok": "green", "dim": "dim", "": ""}
LEVEL_CLASS = {"crit": "-crit", "warn": "-warn", "ok": "-good"}
STATE_GLYPH = {"ok": ("●", "green"), "stale": ("◐", "yellow"), "down": ("✕", "bold red"),
               "off": ("·", "dim"), "reading": ("…", "dim")}  # fmt: skip
PROBLEM_LIMIT = 160


def state_line(tile: Tile) -> Text:
    """What a tile's border says about its data: '4 s' when fresh, 'STALE 45 s', 'DOWN 3 min'
    (or 'DOWN' with no data), 'not configured', 'reading…'."""
    age = format_age(tile.age) if tile.age is not None else ""
    if tile.state == "ok":
        return Text(age, style="dim")
    if tile.state == "stale":
        return Text(f"STALE {age}".strip(), style="bold yellow")
    if tile.state == "down":
        return Text(f"DOWN {age}".strip(), style="bold red")
    if tile.state == "off":
        return Text("not configured", style="dim")
    return Text("reading…", style="dim")


def tile_detail(tile: Tile) -> Text:
    """The lines under a tile's figure: why it is stale or down first, then what its data says;
    each line cut to the tile's width by the widget (no_wrap, ellipsis)."""
    lines: list[Text] = []
    if tile.problem and tile.state in ("stale", "down"):
        style = "bold red" if tile.state == "down" else "yellow"
        lines.append(plain(tile.problem, style, limit=PROBLEM_LIMIT))
    elif tile.state == "off":
        lines.append(plain(tile.problem or "not configured", "dim", limit=PROBLEM_LIMIT))
    elif tile.state == "reading" and tile.body is None:
        lines.append(Text("reading…", style="dim"))
    if tile.body is not None:
        lines.extend(plain(line.text, LEVEL_STYLE.get(line.level, ""), limit=120) for line in tile.body.lines)
    return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)


def tile_value(tile: Tile) -> str:
    """The big figure; '-' while there is none."""
    return tile.body.value if tile.body is not None else "-"


def tile_caption(tile: Tile) -> Text:
    return plain(tile.body.caption if tile.body is not None else tile.title.lower(), "dim", limit=60)


def tile_classes(tile: Tile) -> dict[str, bool]:
    """The CSS classes a tile widget takes from its state (border) and level (figure colour)."""
    body = tile.body
    level = body.level if body is not None and body.value != "-" and tile.state in ("ok", "stale") else ""
    classes = {f"-{state}": tile.state == state for state in ("ok", "stale", "down", "off", "reading")}
    classes.update({name: LEVEL_CLASS.get(level) == name for name in LEVEL_CLASS.values()})
    return classes


def _colour(colour: str) -> str:
    try:
        Style.parse(colour)
    except Exception:  # a colour rich does not know (it came from the feed): still unmistakable
        return "red"
    return colour


def header_line(snapshot: BoardSnapshot | None, *, feed_problem: str | None = None) -> Text:
    """' PRODUCTION  incident board · viewer · 12:34:56 UTC   ● 7  ◐ 1  ✕ 0'."""
    line = Text(no_wrap=True, overflow="ellipsis")
    if snapshot is None:
        line.append(" incident board · reading…", style="dim")
        return line
    line.append_text(plain(f" {snapshot.environment.upper()} ", f"bold reverse {_colour(snapshot.colour)}",
                           limit=30))  # fmt: skip
    line.append(" incident board", style="bold")
    line.append(f" · viewer · {snapshot.as_of:%H:%M:%S} UTC ", style="dim")
    for state in ("ok", "stale", "down"):
        count = sum(1 for t in snapshot.tiles if t.state == state)
        glyph, style = STATE_GLYPH[state]
        line.append(f" {glyph} {count}", style=style if count else "dim")
    if feed_problem:
        line.append_text(plain(f"  {feed_problem}", "bold red", limit=100))
    return line


# A 5-row figure for tall tiles (Digits is 3 rows): each glyph 3 cells wide, drawn at twice
# that width when it fits; '-' and ':' too. Anything else falls back to Digits' size.
FONT = {
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
    "-": ("...", "...", "###", "...", "..."), ":": (".", "#", ".", "#", "."),
}  # fmt: skip
BIG_ROWS = 5


def big_figure(value: str, width: int) -> str | None:
    """`value` in the 5-row font, as wide as fits in `width` cells; None when it cannot."""
    if not value or any(c not in FONT for c in value):
        return None
    for scale in (2, 1):
        lines = []
        for r in range(BIG_ROWS):
            parts = ["".join(("█" if bit == "#" else " ") * scale for bit in FONT[c][r]) for c in value]
            lines.append(" ".join(parts))
        if len(lines[0]) <= width:
            return "\n".join(lines)
    return None
