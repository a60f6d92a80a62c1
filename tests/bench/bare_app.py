"""A bare Textual app that paints one line and records when it did: the floor to compare with."""

import os
import time

from textual.app import App
from textual.widgets import Static


class Bare(App):
    def compose(self):
        yield Static("hello")

    def on_mount(self) -> None:
        self.call_after_refresh(self.done)

    def done(self) -> None:
        with open(os.environ["OPSCONSOLE_STARTUP_PROBE"], "w") as handle:
            handle.write(f"{time.time():.6f}")
        self.exit()


if __name__ == "__main__":
    Bare().run()
