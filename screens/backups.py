"""The backups area: the database's backups in S3 (ours and the legacy cron script's), the
RPO and the monthly restore drill, the selected backup's manifest, verification and drill
evidence, the backup runbook actions with a progress bar while one runs, and the server
saves bucket as a second tab."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static, TabbedContent, TabPane

from screens.backups_render import (
    COLUMNS,
    Row,
    about_rows,
    backup_row,
    checks_rows,
    failing_text,
    grid,
    list_title,
    status_text,
)
from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.saves import SavesPane
from screens.shown import plain
from screens.widgets import ActionProgress, ClaimsBar, Panel, ShellHeader
from services.backup_actions import BACKUP_ACTIONS
from services.backup_model import BackupEntry, BackupsStatus
from services.errors import NotConfigured, ServiceError
from services.runbook import Action


class BackupsScreen(AreaScreen):
    AREA = "backups"
    AUTO_FOCUS = "#backups-table"

    DEFAULT_CSS = """
    BackupsScreen TabbedContent { height: 1fr; }
    BackupsScreen TabPane { padding: 0; }
    BackupsScreen #backups-status { height: auto; padding: 0 1; }
    BackupsScreen #list-panel { height: auto; max-height: 45%; min-height: 5; }
    BackupsScreen #backups-table { height: auto; max-height: 100%; }
    BackupsScreen #detail-panel { height: 1fr; min-height: 5; }
    BackupsScreen #detail-scroll { height: auto; }
    BackupsScreen #detail { height: auto; }
    BackupsScreen #detail > Static { width: 1fr; height: auto; }
    BackupsScreen #detail-about { margin: 0 2 0 0; }
    BackupsScreen.-narrow #detail { layout: vertical; }
    BackupsScreen.-narrow #detail-about { margin: 0 0 1 0; }
    """
    ACTIONS = BACKUP_ACTIONS
    BINDINGS = [
        *AreaScreen.action_bindings(BACKUP_ACTIONS),
        Binding("b", "tab('backups')", "Backups", show=False),
        Binding("s", "tab('saves')", "Server saves", show=False),
    ]

    def on_resize(self, event) -> None:
        # The list takes the width (every column on screen), the selected backup's detail is
        # below it: in two columns when they fit, one above the other under 110 columns.
        self.set_class(event.size.width < 110, "-narrow")

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield ClaimsBar()
        with TabbedContent(initial="backups"):
            with TabPane("b Backups", id="backups"):
                yield Static("…", id="backups-status")
                yield ActionProgress(id="progress")
                with Panel(title="Backups, newest first", id="list-panel"):
                    yield LiveTable(COLUMNS, id="backups-table")
                with (
                    Panel(title="Backup", id="detail-panel"),
                    VerticalScroll(id="detail-scroll", can_focus=True),
                ):
                    with Horizontal(id="detail"):
                        yield Static("select a backup", id="detail-about")
                        yield Static("", id="detail-checks")
            with TabPane("s Server saves", id="saves"):
                # The bundle's saves service; a console built without one shows "not configured".
                saves = getattr(self.shell.services, "saves", None)
                yield SavesPane(saves, interval=self.shell.context.refresh("saves"), id="saves-pane")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.status: BackupsStatus | None = None
        self.selected: str | None = None
        self.problems: list[str] = []
        self.error: ServiceError | None = None
        self._detail_shown: tuple[list[Row], list[Row]] | str = ""
        backups = self.shell.services.backups
        self._list = None
        if not backups.storage.configured:
            self.error = NotConfigured("S3 is not configured (S3_ENDPOINT and S3_BUCKET)")
            self._show_status()
        else:
            self._list = self.poll("list", self._fetch, self._show_list, on_error=self._list_failed)
        self.poll_claims()
        self.set_interval(1.0, self._show_age)

    # -- data ---------------------------------------------------------------------------

    async def _fetch(self) -> tuple[BackupsStatus, list[str]]:
        backups = self.shell.services.backups
        return await backups.status(), backups.problems()

    def _show_list(self, result: tuple[BackupsStatus, list[str]]) -> None:
        status, self.problems = result
        self.status, self.error = status, None
        table = self.query_one("#backups-table", LiveTable)
        rows = {e.id: backup_row(e, status.now) for e in status.entries}
        keep = self.selected
        kept = [key for key in table.shown if key in rows]
        if kept != list(rows)[: len(kept)]:  # a new backup at the top: refilled in order
            table.clear()
        table.sync(rows)
        if keep in rows:
            if table.cursor_row != table.get_row_index(keep):
                table.move_cursor(row=table.get_row_index(keep))
        elif rows:  # the backup left the list (pruned): act on what the cursor shows
            table.move_cursor(row=0)
            self.selected = table.selected_key
        else:
            self.selected = None
        self.query_one("#list-panel", Panel).border_title = list_title(status)
        self._show_status()
        self._show_detail()
        self._show_age()
        self.app.post_message(DataShown())

    def _list_failed(self, error: ServiceError) -> None:
        self.error = error
        self._show_status()

    def _show_status(self) -> None:
        shown = self.query_one("#backups-status", Static)
        if self.error is not None:
            age = self._list.freshness().age if self._list is not None else None
            shown.update(failing_text(str(self.error), age, isinstance(self.error, NotConfigured)))
        elif self.status is not None:
            shown.update(status_text(self.status, self.problems))

    def _entry(self, backup_id: str | None) -> BackupEntry | None:
        if self.status is None or backup_id is None:
            return None
        return next((e for e in self.status.entries if e.id == backup_id), None)

    def _show_detail(self) -> None:
        entry = self._entry(self.selected)
        shown: tuple[list[Row], list[Row]] | str
        if self.status is None:
            shown = "select a backup"
        elif not self.status.entries:
            bucket = self.shell.services.backups.storage.bucket
            shown = f"no backups in s3://{bucket}/ yet: K backs the database up now"
        elif entry is None:
            shown = "select a backup"
        else:
            now, bucket = self.status.now, self.shell.services.backups.storage.bucket
            shown = (about_rows(entry, now, bucket), checks_rows(entry, now))
        if shown == self._detail_shown:  # a poll that changes nothing draws nothing
            return
        self._detail_shown = shown
        about, checks = (plain(shown), "") if isinstance(shown, str) else (grid(shown[0]), grid(shown[1]))
        self.query_one("#detail-about", Static).update(about)
        self.query_one("#detail-checks", Static).update(checks)

    def _show_age(self) -> None:
        if self._list is None:
            return
        freshness = self._list.freshness()
        for panel in self.query(Panel):
            panel.show_freshness(freshness)
        if self.error is not None:
            self._show_status()  # the age of the list still shown moves on

    @on(LiveTable.Highlighted, "#backups-table")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        if event.key is not None:
            self.selected = event.key
            self._show_detail()

    # -- progress of a running action ---------------------------------------------------

    def on_area_screen_action_progressed(self, message: AreaScreen.ActionProgressed) -> None:
        self.query_one(ActionProgress).show(message.action.name, message.action.title, message.line)

    def on_area_screen_action_ended(self, message: AreaScreen.ActionEnded) -> None:
        self.query_one(ActionProgress).end(message.action.name)

    # -- navigation and actions ---------------------------------------------------------

    def shows(self, action: Action) -> bool:
        return self.active_tab() in (None, "backups")

    def action_refresh_now(self) -> None:
        """`r` polls the list, and lists the saves bucket again when its tab is shown."""
        super().action_refresh_now()
        if self.query_one(TabbedContent).active == "saves":
            self.query_one("#saves-pane", SavesPane).action_refresh_now()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one("#backups-table" if tab == "backups" else "#saves-prefixes", LiveTable).focus()

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        if action.selection_kind != "backup":
            return "", {}  # the database, the bucket: the action finds its own target
        if self.selected is None or self._entry(self.selected) is None:
            self.action_tab("backups")
            self.notify("select a backup first", severity="warning")
            return None
        return self.selected, {}
