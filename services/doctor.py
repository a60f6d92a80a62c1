"""The doctor: every backend checked once, concurrently, one finding per backend."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.errors import ServiceError
from services.health import Ping, Probe


@dataclass(frozen=True)
class Finding:
    backend: str
    state: str  # "ok", "failing", "not configured"
    ping: Ping | None = None
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.state != "failing"


async def check(probe: Probe, timeout: float = 10.0) -> Finding:
    """One backend's finding; never raises."""
    if not probe.configured:
        return Finding(probe.name, "not configured", reason=probe.hint)
    try:
        ping = await asyncio.wait_for(probe.ping(), timeout)
    except TimeoutError:
        return Finding(probe.name, "failing", reason=f"no answer within {timeout:g} s")
    except ServiceError as exc:
        return Finding(probe.name, "failing", reason=str(exc))
    except Exception as exc:  # an unexpected failure is still a finding, not a crash
        return Finding(probe.name, "failing", reason=f"{type(exc).__name__}: {exc}")
    return Finding(probe.name, "ok", ping=ping)


async def run_doctor(probes: list[Probe], timeout: float = 10.0) -> list[Finding]:
    """Findings for every probe, in the probes' order."""
    return list(await asyncio.gather(*(check(p, timeout) for p in probes)))
