"""The pricing area: every game's hourly price, whether it is on sale, its live servers and
what they bring in per hour; the selected game's last change and history (or every game's);
the prices `as of` a moment; the pricing runbook actions (set a price, on/off sale)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static

from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.pricing_render import (
    AS_OF_COLUMNS,
    COLUMNS,
    detail_rows,
    game_row,
    grid,
    history_text,
    status_text,
    then_row,
    when_text,
)
from screens.shown import fill
from screens.widgets import ClaimsBar, Panel, ShellHeader
from services.errors import ServiceError
from services.pricing import AS_OF_FORMATS, PriceChange, PriceThen, Pricing, parse_as_of
from services.pricing_actions import PRICING_ACTIONS
from services.runbook import Action


@dataclass(frozen=True)
class PricingView:
    """One poll's answer: the games, the recorded changes (newest first) and, when an `as of`
    moment is chosen, the prices then."""

    pricing: Pricing
    history: list[PriceChange]
    as_of: datetime | None = None
    then: list[PriceThen] | None = None


def _as_of_or_now(text: str) -> datetime | str:
    """The operator's answer to `as of`: a moment, or "now" for an empty answer."""
    return "now" if not text.strip() or text.strip().lower() == "now" else parse_as_of(text)


class PricingScreen(AreaScreen):
    AREA = "pricing"
    AUTO_FOCUS = "#games-table"

    DEFAULT_CSS = """
    PricingScreen #pricing-status { height: auto; padding: 0 1; }
    PricingScreen #pricing-body { height: 1fr; }
    PricingScreen #games-panel { width: 66; height: 1fr; }
    PricingScreen #games-table, PricingScreen #asof-table { height: auto; max-height: 100%; }
    PricingScreen #asof-table { display: none; }
    PricingScreen.-as-of #asof-table { display: block; }
    PricingScreen.-as-of #games-table { display: none; }
    PricingScreen #detail-panel { width: 1fr; height: 1fr; }
    PricingScreen #detail-scroll { height: 1fr; }
    PricingScreen #detail-about, PricingScreen #detail-history { height: auto; }
    PricingScreen #detail-history { margin: 1 0 0 0; }
    PricingScreen.-narrow #pricing-body { layout: vertical; }
    PricingScreen.-narrow #games-panel { width: 1fr; height: auto; max-height: 55%; }
    """
    ACTIONS = PRICING_ACTIONS
    BINDINGS = [
        *AreaScreen.action_bindings(PRICING_ACTIONS),
        Binding("a", "as_of", "As of", tooltip="The prices at a moment: a date, a time, or 3d / 12h ago"),
        Binding("n", "now", "Now", show=False, tooltip="Back to the prices now"),
        Binding("h", "history_scope", "History", tooltip="Every game's history, or the selected one's"),
    ]  # fmt: skip

    def on_resize(self, event) -> None:
        # The games and the selected game's detail side by side when both fit, else stacked.
        self.set_class(event.size.width < 110, "-narrow")

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield ClaimsBar()
        yield Static("…", id="pricing-status")
        with Horizontal(id="pricing-body"):
            with Panel(title="Games", id="games-panel"):
                yield LiveTable(COLUMNS, id="games-table")
                yield LiveTable(AS_OF_COLUMNS, id="asof-table")
            with Panel(title="Game", id="detail-panel"), VerticalScroll(id="detail-scroll", can_focus=True):
                yield Static("select a game", id="detail-about")
                yield Static("", id="detail-history")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.view: PricingView | None = None
        self.error: ServiceError | None = None
        self.selected: str | None = None
        self.as_of: datetime | None = None
        self.all_history = False
        self._games = self.poll("games", self._fetch, self._show, on_error=self._failed)
        self.poll_claims()
        self.set_interval(1.0, self._show_age)

    # -- data ---------------------------------------------------------------------------

    async def _fetch(self) -> PricingView:
        pricing = self.shell.services.pricing
        as_of = self.as_of  # read once: the answer says which moment it is for
        games, history = await pricing.games(), await pricing.history()
        then = await pricing.as_of(as_of) if as_of is not None else None
        return PricingView(games, history, as_of, then)

    def _show(self, view: PricingView) -> None:
        self.view, self.error = view, None
        now = view.pricing.now
        games = self.query_one("#games-table", LiveTable)
        games.sync({g.game_type: game_row(g, now) for g in view.pricing.games})
        asof = self.query_one("#asof-table", LiveTable)
        showing_then = view.then is not None and view.as_of == self.as_of
        if showing_then:
            asof.sync({t.game_type: then_row(t, view.pricing.game(t.game_type)) for t in view.then or []})
        switched = showing_then != self.has_class("-as-of")
        self.set_class(showing_then, "-as-of")
        table = asof if showing_then else games
        if self.selected is None or self.selected not in table.shown:
            self.selected = table.selected_key
        if switched:  # the other table is shown now: the cursor and the focus go along once it is laid out
            self.call_after_refresh(self._follow, table)
        elif table.selected_key != self.selected:
            table.move_cursor(row=table.get_row_index(self.selected))
        panel = self.query_one("#games-panel", Panel)
        panel.border_title = f"As of {when_text(view.as_of)}" if showing_then and view.as_of else "Games"
        self._show_status()
        self._show_detail()
        self._show_age()
        self.app.post_message(DataShown())

    def _follow(self, table: LiveTable) -> None:
        if self.selected in table.shown:
            table.move_cursor(row=table.get_row_index(self.selected))
        table.focus()

    def _failed(self, error: ServiceError) -> None:
        self.error = error
        self._show_status()

    def _show_status(self) -> None:
        shown = self.query_one("#pricing-status", Static)
        if self.view is not None:
            text = status_text(self.view.pricing, self.as_of if self.view.then is not None else None)
        else:
            text = fill("[dim]reading the prices…[/]")
        if self.error is not None:
            held = (
                "nothing shown yet" if self.view is None else "the figures below are from the last good read"
            )
            text = fill("[bold red]{}[/] [dim]({}; tried again with every poll)[/]", str(self.error), held,
                        limit=300)  # fmt: skip
        shown.update(text)

    def _show_detail(self) -> None:
        about = self.query_one("#detail-about", Static)
        history = self.query_one("#detail-history", Static)
        panel = self.query_one("#detail-panel", Panel)
        view = self.view
        game = view.pricing.game(self.selected) if view and self.selected else None
        if view is None:
            return
        now = view.pricing.now
        if self.all_history:
            panel.border_title = "History · every game · newest first"
            about.update(grid(detail_rows(game, now, self._then(game.game_type))) if game else "")
            history.update(history_text(view.history, now, with_game=True))
            return
        if game is None:
            about.update("select a game")
            history.update("")
            panel.border_title = "Game"
            return
        panel.border_title = f"{game.display_name} · history newest first"
        about.update(grid(detail_rows(game, now, self._then(game.game_type))))
        changes = [c for c in view.history if c.game_type == game.game_type]
        history.update(history_text(changes, now))

    def _then(self, game_type: str) -> PriceThen | None:
        if self.view is None or self.view.then is None:
            return None
        return next((t for t in self.view.then if t.game_type == game_type), None)

    def _show_age(self) -> None:
        freshness = self._games.freshness()
        for panel in self.query(Panel):
            panel.show_freshness(freshness)

    @on(LiveTable.Highlighted)
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        if event.key is not None:
            self.selected = event.key
            self._show_detail()

    # -- as of, history scope -----------------------------------------------------------

    @work(exclusive=True, group="as-of", exit_on_error=False)
    async def action_as_of(self) -> None:
        current = when_text(self.as_of).removesuffix(" UTC") if self.as_of else ""
        answer = await self.ask_value(f"Prices as of when? {AS_OF_FORMATS}; empty: now", current,
                                      _as_of_or_now)  # fmt: skip
        if answer is None:
            return
        self._set_as_of(None if answer == "now" else answer)

    def action_now(self) -> None:
        self._set_as_of(None)

    def key_escape(self) -> None:
        if self.as_of is not None:
            self._set_as_of(None)

    def _set_as_of(self, when: datetime | None) -> None:
        self.as_of = when
        if when is None:
            self.set_class(False, "-as-of")
            self._show_status()
            self._show_detail()
            self.query_one("#games-panel", Panel).border_title = "Games"
            self.call_after_refresh(self._follow, self.query_one("#games-table", LiveTable))
        else:
            self.tell(f"reading the prices as of {when_text(when)}…", timeout=2)
        self._games.trigger()

    def action_history_scope(self) -> None:
        self.all_history = not self.all_history
        self._show_detail()

    # -- actions ------------------------------------------------------------------------

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        if self.selected is None or self.view is None or self.view.pricing.game(self.selected) is None:
            self.notify("select a game first", severity="warning")
            return None
        return self.selected, {}
