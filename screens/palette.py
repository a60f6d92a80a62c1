"""Command palette entries: go to each area, and the commands of the current screen."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from screens.base import AreaScreen


class AreaCommands(Provider):
    """'Go to <area>' for each area, and 'Refresh now' / 'Help' for the current one."""

    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        commands: list[tuple[str, str, object]] = []
        for area in getattr(app, "areas", ()):
            commands.append(
                (f"Go to {area.title}", f"{area.description} (key {area.key})",
                 partial(app.switch_mode, area.name))
            )  # fmt: skip
        screen = self.screen
        if isinstance(screen, AreaScreen):
            commands.append(
                ("Refresh now", "Poll every source of this screen now (r)", screen.action_refresh_now)
            )
            commands.extend(screen.palette_commands())
        commands.append(("Help: keys", "Every key of this screen (?)", partial(app.run_action, "help")))
        commands.append(("Quit", "Leave opsconsole (asks first)", partial(app.run_action, "quit")))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
