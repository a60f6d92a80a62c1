"""Pod logs: what each pod has written (generated on first read, in the style of its app),
lines appended by the scenario or a test, and the follows (`logs -f`) to tell."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

from console.sandbox.fake_kube.store import END
from console.sandbox.fake_kube.wire import now

LOG_KEEP = 5000  # lines kept per pod

Key = tuple[str, str]


class PodLogs:
    def __init__(self) -> None:
        self._lines: dict[Key, list[str]] = {}
        self.followers: dict[Key, set[asyncio.Queue]] = {}

    def lines(self, key: Key, app: str) -> list[str]:
        """The pod's log so far; a pod never read before has written 200 lines of `app`'s kind."""
        lines = self._lines.get(key)
        if lines is None:
            rng = random.Random(key[1])
            gaps = [timedelta(seconds=rng.uniform(0.5, 5.5)) for _ in range(200)]
            when = now() - sum(gaps, timedelta())  # the last line was written just now
            lines = []
            for gap in gaps:
                when += gap
                lines.append(log_line(rng, app, when))
            self._lines[key] = lines
        return lines

    def append(self, key: Key, app: str, line: str) -> None:
        lines = self.lines(key, app)
        lines.append(line)
        if len(lines) > LOG_KEEP:
            del lines[: len(lines) - LOG_KEEP]
        for queue in self.followers.get(key, ()):
            queue.put_nowait(line)

    def forget(self, key: Key) -> None:
        """The pod is gone: its log too, and every follow of it ends."""
        self._lines.pop(key, None)
        for queue in self.followers.pop(key, set()):
            queue.put_nowait(END)


_LOG_TEMPLATES: dict[str, tuple[tuple[int, str, str], ...]] = {
    "agis-bot": (
        (40, "INFO", "command /servers by user {user} in guild {guild} ({ms}ms)"),
        (14, "INFO", "command /status by user {user} in guild {guild} ({ms}ms)"),
        (8, "INFO", "command /order by user {user}: order #{order} created, awaiting payment"),
        (6, "INFO", "stripe webhook invoice.paid for order #{order}"),
        (6, "INFO", "provisioner: server srv-{hex} ready on gke-agis-pool-1-{node} in {sec}s"),
        (10, "DEBUG", "discord gateway heartbeat acknowledged in {ms}ms"),
        (4, "WARN", "discord rate limit on /channels/{guild}/messages, retrying in {sec}s"),
        (3, "ERROR", "database ping failed: dial tcp 10.4.2.17:5432: i/o timeout"),
        (4, "INFO", "metrics: {servers} game servers online, {players} players"),
    ),
    "postgres": (
        (50, "LOG", "checkpoint complete: wrote {ms} buffers; write={sec}.{ms} s, sync=0.0{sec} s"),
        (30, "LOG", "connection authorized: user=agis database=agis application_name=agis-bot"),
        (10, "LOG", 'automatic vacuum of table "agis.public.orders": index scans: 1'),
        (5, "WARNING", "there is already a transaction in progress"),
    ),
    "": (
        (60, "INFO", "job {order} done in {ms}ms"),
        (25, "INFO", "GET /healthz 200 {ms}us"),
        (10, "WARN", "job {order} retried after {sec}s"),
        (5, "ERROR", "job {order} failed: context deadline exceeded"),
    ),
}


def log_line(rng: random.Random, app: str, when: datetime) -> str:
    templates = _LOG_TEMPLATES.get(app, _LOG_TEMPLATES[""])
    _, level, text = rng.choices(templates, weights=[t[0] for t in templates])[0]
    message = text.format(user=rng.randint(10**17, 10**18), guild=rng.randint(10**17, 10**18), ms=rng.randint(2, 900),
                          order=rng.randint(4000, 9999), hex=f"{rng.getrandbits(24):06x}", node=rng.choice("abc"),
                          sec=rng.randint(1, 9), servers=rng.randint(15, 40), players=rng.randint(20, 400))  # fmt: skip
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {level:<5} {message}"
