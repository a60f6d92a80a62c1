"""The board's resting state as SVG snapshots, at 80x24 (an SSH window) and 120x40, from a
fixed snapshot: six tiles fresh (one critical, one warning), one stale, one down."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.board_app import BoardApp
from services.board import BoardSnapshot, Body, Line, Tile
from tests.conftest import wait_until

AT = datetime(2025, 3, 14, 3, 12, 45, tzinfo=UTC)


def sample() -> BoardSnapshot:
    def tile(tile_id, title, value, caption, level, lines, *, state="ok", age=3.0, problem=None):
        body = Body(value, caption, level, tuple(Line(*line) for line in lines))
        return Tile(tile_id, title, state, age, problem, body)

    return BoardSnapshot("production", "red", AT, (
        tile("alerts", "Alerts", "3", "firing", "crit", [("2 crit · 1 warn", "crit"),
             ("OrdersStuckInPaid 38m", "crit"), ("OrdersInError 2h", "crit"), ("NodeCapacityHigh", "warn")]),
        tile("incidents", "Incidents", "1", "open", "crit", [("1 clock missed", "crit"),
             ("INC-12 P0 Payments not credited", "crit"), ("resp took 4:10", "dim"),
             ("update LATE 3:05", "crit")]),
        tile("orders", "Orders", "4", "stuck > 10 min", "crit", [("oldest 38 min", "crit"),
             ("3 in error", "crit"), ("62 new in 24 h", "dim")]),
        tile("nodes", "Node headroom", "584", "GB free", "warn", [("7/8 open, 1 hot", "warn"),
             ("fits 292 x 2 GB", "dim"), ("88% fsn1-node-01 16 GB", "warn"), ("69% hel1-node-01 32 GB", "")]),
        tile("webhooks", "Webhooks", "70", "% delivered 24 h", "crit",
             [("3/10 undelivered", "crit"), ("oldest 17h ago", "warn")],
             state="stale", age=75.0, problem="Stripe at 127.0.0.1:9 refused the connection"),
        tile("backups", "Backups", "21:12", "h:mm since good", "ok",
             [("RPO 24 h: ok", "ok"), ("at 03-13 06:00 UTC", "dim"), ("drill 9d ago", "dim")], age=41.0),
        Tile("database", "Database", "down", None, "Postgres at db:5432 refused the connection", None),
        tile("consoles", "Consoles", "1", "actions running", "warn",
             [("bob 12 s", "warn"), (" retrying order 8f3c2a11", "")]),
    ))  # fmt: skip


class Fixed:
    async def read(self) -> BoardSnapshot:
        return sample()

    def trigger(self) -> None:
        pass


async def shown(pilot) -> None:
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "snapshot", None) is not None)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_board(snap_compare, size):
    assert snap_compare(BoardApp(Fixed()), terminal_size=size, run_before=shown)
