"""Settings reduced to plain values: what the services and the shell are built from.
Free of pydantic, so the TUI's fast start (console.main) can receive it from a child
process that validated the settings while the parent imported Textual."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class Secret:
    """A secret value that never shows itself in a repr, a log line or a traceback."""

    value: str = field(repr=False)

    def get_secret_value(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return "Secret('**********')"


SECRETS = ("postgres_dsn", "postgres_read_dsn", "stripe_secret_key", "s3_access_key", "s3_secret_key",
           "ptero_app_key", "provisioner_key", "backup_encryption_key", "restore_dsn")  # fmt: skip


@dataclass(frozen=True)
class Resolved:
    environment_name: str
    environment_colour: str
    operator: str
    role: str
    read_only: bool
    refresh: dict[str, float]  # per area, plus "default" and "health"
    postgres_dsn: Secret | None = None
    postgres_read_dsn: Secret | None = None
    kubeconfig: str | None = None
    kube_context: str | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    stripe_secret_key: Secret | None = None
    stripe_api_base: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: Secret | None = None
    s3_secret_key: Secret | None = None
    s3_bucket: str | None = None
    s3_use_ssl: bool = True
    panel_url: str | None = None
    ptero_app_key: Secret | None = None
    provisioner_url: str | None = None
    provisioner_key: Secret | None = None
    bot_url: str | None = None
    backup_encryption_key: Secret | None = None
    backup_retention_days: int = 30
    restore_dsn: Secret | None = None  # OPSCONSOLE_RESTORE_DSN, else the primary's DSN
    saves_bucket: str | None = None  # OPSCONSOLE_SAVES_BUCKET, on the S3_* endpoint
    price_ceiling: int = 10_000  # OPSCONSOLE_PRICE_CEILING: a price must be below it (credits/hour)
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys, for App.set_keymap

    def urls(self) -> tuple[str | None, ...]:
        """Every URL setting: what may carry a credential to mask in messages and logs."""
        return (self.prometheus_url, self.alertmanager_url, self.stripe_api_base, self.s3_endpoint,
                self.panel_url, self.provisioner_url, self.bot_url)  # fmt: skip

    def refresh_for(self, area: str) -> float:
        return self.refresh.get(area, self.refresh.get("default", 10.0))

    def plain(self, name: str) -> str | None:
        """The secret `name` in clear, for the one client that needs it."""
        secret = getattr(self, name)
        return secret.get_secret_value() if secret is not None else None

    def to_json(self) -> str:
        data = asdict(self)
        for name in SECRETS:
            data[name] = self.plain(name)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Resolved:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in SECRETS:
            if values.get(name) is not None:
                values[name] = Secret(values[name])
        return cls(**values)
