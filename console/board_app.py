"""BoardApp: the board on its own, read-only. Run locally it owns a BoardFeed (the services
it polls are opened and closed with it); served, each browser tab's process reads the one
data process's snapshot (`python -m console.board_app`, configured only by its environment)."""

from __future__ import annotations

import os
import sys

from textual.app import App

from screens.board import BoardScreen, BoardSource
from services.board import BoardFeed, RemoteBoard
from services.bundle import Services

FEED_ENV = "OPSCONSOLE_BOARD_FEED"  # the data process's snapshot URL (loopback)
FEED_TOKEN_ENV = "OPSCONSOLE_BOARD_FEED_TOKEN"  # its token: read once, then dropped from the environment


class BoardApp(App):
    TITLE = "opsconsole board"
    ENABLE_COMMAND_PALETTE = False  # nothing to run from here

    def __init__(self, source: BoardSource, *, services: Services | None = None) -> None:
        super().__init__()
        self.source = source
        self.services = services

    async def on_mount(self) -> None:
        self.theme = "textual-dark"
        if self.services is not None:
            await self.services.open()
        if isinstance(self.source, BoardFeed):
            self.run_worker(self.source.run(), group="board-feed", exit_on_error=False)
        await self.push_screen(BoardScreen(self.source))

    async def on_unmount(self) -> None:
        if isinstance(self.source, RemoteBoard):
            await self.source.close()
        if self.services is not None:
            await self.services.close()


def served_viewer() -> None:
    """A served tab's process: the board reading the data process named by the environment
    (no settings, no secrets: it could read no database if it tried)."""
    url = os.environ.get(FEED_ENV)
    token = os.environ.pop(FEED_TOKEN_ENV, "")
    if not url or not token:
        print(f"opsconsole: a served board needs {FEED_ENV} and {FEED_TOKEN_ENV}", file=sys.stderr)
        sys.exit(2)
    BoardApp(RemoteBoard(url, token)).run()


if __name__ == "__main__":
    served_viewer()
