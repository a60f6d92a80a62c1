"""The node runbook actions on Postgres (runbook 4, node capacity): take a game node out of
the pool new orders are placed on, or put it back. Live servers on it keep running."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.nodes import lock_node
from services.postgres import named_queries, query_text
from services.runbook import Action, ActionEnv, Confirmation, Preview, Progress, Result


def _preview(enable: bool):
    async def preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
        if enable:
            summary = f"Enable node {target}: new orders may be placed on it again."
            warnings: tuple[str, ...] = ()
        else:
            summary = (
                f"Disable node {target}: new orders are no longer placed on it. Servers already on it "
                "keep running."
            )
            capacity = await env.services.nodes.capacity()
            others = [n for n in capacity.nodes if n.enabled and n.name != target]
            room = sum(max(n.available_ram_gb, 0) for n in others)
            warnings = (f"the other enabled nodes have {room} GB left between them",)
        return Preview(summary, (query_text("set_node_enabled", name=target, enabled=enable),), warnings)

    return preview


def _check(enable: bool):
    async def check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
        row = await lock_node(conn, target)
        if row is None:
            return f"there is no node {target}"
        if row.enabled == enable:
            return f"node {target} is already {'enabled' if enable else 'disabled'}"
        return None

    return check


def _run(enable: bool):
    async def run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
        progress(f"{'enabling' if enable else 'disabling'} {target}")
        await named_queries().set_node_enabled(conn, name=target, enabled=enable)
        row = await lock_node(conn, target)
        state = "enabled" if enable else "disabled"
        return Result(f"node {target} {state} ({row.live_servers} live servers on it)",
                      {"live_servers": row.live_servers})  # fmt: skip

    return run


ENABLE_NODE = Action(
    name="enable_node",
    short="Enable",
    title="Enable node",
    key="E",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="put a game node back in the pool new orders are placed on",
    target_kind="node",
    preview=_preview(True),
    check=_check(True),
    run=_run(True),
    in_transaction=True,
    verb="enabling",
)

DISABLE_NODE = Action(
    name="disable_node",
    short="Disable",
    title="Disable node",
    key="D",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="take a game node out of the pool new orders are placed on (its servers keep running)",
    target_kind="node",
    preview=_preview(False),
    check=_check(False),
    run=_run(False),
    in_transaction=True,
    verb="disabling",
)

NODE_ACTIONS = (ENABLE_NODE, DISABLE_NODE)
