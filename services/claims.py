"""ClaimsService: one change at a time per target (an order, a node, a deployment), across
every console. A claim lives while its console heart-beats, so a console that dies frees
its target within seconds; whoever next finds the dead claim records its intent as
abandoned, with the last progress line the dead console reported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.postgres import PostgresService

CLAIM_SECONDS = 10.0  # a claim not heart-beaten for this long is dead
HEARTBEAT_SECONDS = 3.0


@dataclass(frozen=True)
class Claim:
    action: str
    target_kind: str
    target: str
    operator: str
    console_id: str
    started_at: datetime
    seconds: float


@dataclass(frozen=True)
class DeadClaim:
    """A claim whose console stopped heart-beating while its action ran."""

    target_kind: str
    target: str
    action: str
    operator: str
    console_id: str
    intent_id: int | None
    progress: str


def _claim(row) -> Claim:
    values = dict(row)
    names = ("action", "target_kind", "target", "operator", "console_id", "started_at")
    return Claim(**{k: values[k] for k in names}, seconds=float(values.get("seconds") or 0.0))


class ClaimsService:
    def __init__(self, postgres: PostgresService, seconds: float = CLAIM_SECONDS):
        self.postgres = postgres
        self.seconds = seconds

    async def take(
        self,
        target_kind: str,
        target: str,
        action: str,
        operator: str,
        console_id: str,
        intent_id: int | None,
    ) -> tuple[Claim | None, DeadClaim | None]:
        """Claim the target; (None, None) when another console's live claim holds it. The
        second item is the dead claim this one took over, if any (its intent is abandoned)."""
        row = await self.postgres.run(
            "claim_take", read=False, target_kind=target_kind, target=target, action=action,
            operator=operator, console_id=console_id, intent_id=intent_id, seconds=self.seconds,
        )  # fmt: skip
        if row is None:
            return None, None
        dead = None
        if row["abandoned_intent"] is not None:
            dead = DeadClaim(target_kind, target, row["abandoned_action"], row["abandoned_operator"], "",
                             row["abandoned_intent"], row["abandoned_progress"] or "")  # fmt: skip
        return _claim(row), dead

    async def heartbeat(self, target_kind: str, target: str, console_id: str, progress: str | None) -> bool:
        """Keep the claim alive; False when it is no longer this console's."""
        row = await self.postgres.run(
            "claim_heartbeat", read=False, target_kind=target_kind, target=target,
            console_id=console_id, progress=progress, seconds=self.seconds,
        )  # fmt: skip
        return row is not None

    async def holder(self, target_kind: str, target: str) -> Claim | None:
        row = await self.postgres.run("claim_holder", read=False, target_kind=target_kind, target=target)
        return None if row is None else _claim(row)

    async def release(self, target_kind: str, target: str, console_id: str) -> None:
        await self.postgres.run(
            "claim_release", read=False, target_kind=target_kind, target=target, console_id=console_id
        )

    async def live(self) -> list[Claim]:
        """Every live claim, oldest first (what other consoles are doing right now)."""
        return [_claim(r) for r in await self.postgres.run("live_claims", read=False)]

    async def dead(self) -> list[DeadClaim]:
        rows = await self.postgres.run("dead_claims", read=False)
        return [DeadClaim(**dict(r)) for r in rows]

    async def drop_dead(self, claim: DeadClaim) -> None:
        await self.postgres.run(
            "claim_drop_dead", read=False, target_kind=claim.target_kind, target=claim.target,
            console_id=claim.console_id,
        )  # fmt: skip

    async def open_intent(self, intent_id: int):
        """The intent row when it still has no outcome, else None."""
        return await self.postgres.run("intent_without_outcome", read=False, intent_id=intent_id)
