"""Settings: environment variables under the seeds' names, plus a TOML file for what env
cannot hold (environment name and colour, operators and roles, refresh intervals, keymap).
An invalid configuration raises ConfigError carrying one plain line per problem."""

from __future__ import annotations

import os
import pwd
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from console.keymap import BINDING_ID, Keys
from console.resolved import Resolved, Secret
from services.dsn import dsn_problems, shown
from services.text import mask_url

Role = Literal["viewer", "support", "oncall", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "support", "oncall", "admin")

NAMED_COLOURS = {
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "white",
    "orange",
    "purple",
    "grey",
    "gray",
}


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one line per problem, naming the key."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def default_config_path() -> Path:
    """The TOML file read when neither --config nor OPSCONSOLE_CONFIG names one."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("opsconsole")) / "config.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentConfig(_Strict):
    name: str = "development"
    colour: str | None = None

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        hex_ok = value.startswith("#") and len(value) in (4, 7)
        if hex_ok:
            try:
                int(value[1:], 16)
            except ValueError:
                hex_ok = False
        if not hex_ok and value not in NAMED_COLOURS:
            raise ValueError(f"not a colour name or #rrggbb: {shown(value)}")
        return value

    @property
    def is_production(self) -> bool:
        return self.name.lower() in ("production", "prod", "live")

    @property
    def resolved_colour(self) -> str:
        """The colour shown for this environment: production is always red unless set."""
        if self.colour:
            return self.colour
        if self.is_production:
            return "red"
        if self.name.lower() in ("staging", "stage"):
            return "yellow"
        return "green"


class OperatorEntry(_Strict):
    role: Role
    os_users: list[str] = Field(default_factory=list)


# Poll intervals: below half a second a poll loop is a busy loop (1e-9 spun a core at 100 %),
# above a day it is a typo for "never".
MIN_INTERVAL, MAX_INTERVAL = 0.5, 86400.0
Interval = Annotated[float, Field(ge=MIN_INTERVAL, le=MAX_INTERVAL, allow_inf_nan=False)]


class RefreshConfig(BaseModel):
    """Poll intervals in seconds, per area; `default` for areas not listed. Any area name is
    accepted (each new area polls under its own name), each value within 0.5 s to a day."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Interval] = Field(init=False)

    default: Interval = 10.0
    overview: Interval = 5.0
    health: Interval = 15.0
    orders: Interval = 5.0
    nodes: Interval = 10.0
    alerts: Interval = 10.0
    incidents: Interval = 10.0
    saves: Interval = 300.0  # each poll lists the whole saves bucket
    board: Interval = 5.0

    def for_area(self, area: str) -> float:
        return float(self.as_dict().get(area, self.default))

    def as_dict(self) -> dict[str, float]:
        """Every interval by area name, the ones only the TOML file names included."""
        return {k: float(v) for k, v in self.model_dump().items()}


# A host name (IDN letters too) or an IPv4 address, or an IPv6 address in brackets.
HOST = re.compile(r"[\w.-]+|\[[0-9A-Fa-f:.]+(%[\w.-]+)?\]")


def _secret(alias: str) -> Any:
    return Field(default=None, validation_alias=alias)


class Settings(BaseSettings):
    """Everything the console is configured with. Secrets are SecretStr and never printed."""

    # case_sensitive: env var names are matched exactly (DB_HOST), so an unrelated
    # ENVIRONMENT or REFRESH in the shell never lands on the TOML-only fields.
    model_config = SettingsConfigDict(extra="forbid", frozen=True, case_sensitive=True, env_ignore_empty=True)

    # PostgreSQL: DATABASE_URL, or its parts as the AGIS manual names them.
    database_url: SecretStr | None = _secret("DATABASE_URL")
    db_host: str | None = Field(None, validation_alias="DB_HOST")
    db_port: int = Field(5432, validation_alias="DB_PORT", gt=0, lt=65536)
    db_name: str | None = Field(None, validation_alias="DB_NAME")
    db_user: str | None = Field(None, validation_alias="DB_USER")
    db_password: SecretStr | None = _secret("DB_PASSWORD")
    db_read_host: str | None = Field(None, validation_alias="DB_READ_HOST")
    # S3 / Minio backups.
    s3_endpoint: str | None = Field(None, validation_alias="S3_ENDPOINT")
    s3_access_key: SecretStr | None = _secret("S3_ACCESS_KEY")
    s3_secret_key: SecretStr | None = _secret("S3_SECRET_KEY")
    s3_bucket: str | None = Field(None, validation_alias="S3_BUCKET")
    s3_use_ssl: bool = Field(True, validation_alias="S3_USE_SSL")
    backup_encryption_key: SecretStr | None = _secret("BACKUP_ENCRYPTION_KEY")
    backup_retention_days: int = Field(30, validation_alias="OPSCONSOLE_BACKUP_RETENTION_DAYS", ge=1, le=3650)
    # The login restore drills and restores create their scratch databases with (CREATEDB);
    # the console's own login may not: unset, the DATABASE_URL is used.
    restore_dsn: SecretStr | None = _secret("OPSCONSOLE_RESTORE_DSN")
    # The game servers' saves, in a bucket of the same S3 / Minio (same endpoint and keys).
    saves_bucket: str | None = Field(None, validation_alias="OPSCONSOLE_SAVES_BUCKET")
    # A game's price must be below this many credits per hour (a typo guard).
    price_ceiling: int = Field(10_000, validation_alias="OPSCONSOLE_PRICE_CEILING", ge=1, le=2_147_483_647)
    # Payments, panel, provisioning functions, cluster, metrics, bot.
    stripe_secret_key: SecretStr | None = _secret("STRIPE_SECRET_KEY")
    stripe_api_base: str | None = Field(None, validation_alias="OPSCONSOLE_STRIPE_API_BASE")
    panel_url: str | None = Field(None, validation_alias="PANEL_URL")
    ptero_app_key: SecretStr | None = _secret("PTERO_APP_KEY")
    provisioner_url: str | None = Field(None, validation_alias="PROVISIONER_URL")
    provisioner_key: SecretStr | None = _secret("OPSCONSOLE_PROVISIONER_KEY")
    kubeconfig: str | None = Field(None, validation_alias="KUBECONFIG")
    kube_context: str | None = Field(None, validation_alias="OPSCONSOLE_KUBE_CONTEXT")
    prometheus_url: str | None = Field(None, validation_alias="PROMETHEUS_URL")
    alertmanager_url: str | None = Field(None, validation_alias="ALERTMANAGER_URL")
    bot_url: str | None = Field(None, validation_alias="OPSCONSOLE_BOT_URL")
    # The console itself.
    environment_override: str | None = Field(None, validation_alias="OPSCONSOLE_ENV")
    read_only: bool = Field(False, validation_alias="OPSCONSOLE_READ_ONLY")
    # From the TOML file.
    environment: EnvironmentConfig = EnvironmentConfig()
    operators: dict[str, OperatorEntry] = {}
    refresh: RefreshConfig = RefreshConfig()
    keymap: dict[str, Keys] = {}  # binding id -> keys, e.g. { help = "f1", "area.orders" = "o" }

    @field_validator(
        "panel_url", "provisioner_url", "prometheus_url", "alertmanager_url", "bot_url",
        "s3_endpoint", "stripe_api_base",
    )  # fmt: skip
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            # The value may carry a password or a token: show it masked.
            raise ValueError(f"expected an http(s) URL, got {mask_url(value)!r}")
        return value.rstrip("/")

    @field_validator("keymap", mode="after")
    @classmethod
    def _binding_ids(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not BINDING_ID.match(name)]
        if bad:
            raise ValueError(f"{shown(bad[0])} is not a binding id (e.g. help, area.orders, quit)")
        return value

    @field_validator("operators", mode="before")
    @classmethod
    def _operators(cls, value: Any) -> Any:
        # `alice = "oncall"` is shorthand for `alice = { role = "oncall" }`.
        if isinstance(value, dict):
            return {k: {"role": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("database_url", "restore_dsn")
    @classmethod
    def _dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        # Every problem asyncpg would trip on at the first query (a port out of range, an
        # unknown sslmode), said now; the lines name parts, never the password.
        problems = dsn_problems(value.get_secret_value())
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("db_host", "db_read_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        # The DSN is built as user@HOST:DB_PORT/DB_NAME: anything but a host name or an
        # address would change what the other parts mean.
        if not HOST.fullmatch(value):
            raise ValueError(f"{shown(value)} is not a host name or address (the port goes in DB_PORT)")
        return value

    @model_validator(mode="after")
    def _built_dsn(self) -> Settings:
        if self.database_url is None and self.db_host:
            problems = dsn_problems(self.postgres_dsn() or "")
            if problems:  # from the PG* variables asyncpg falls back on (PGSSLMODE, ...)
                raise ValueError("DB_HOST: " + "; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init kwargs carry the TOML file (whose keys no env var can name) and, for the
        # demo and tests, explicit values that must win over the shell's environment.
        return (init_settings, env_settings)

    @classmethod
    def isolated(cls, **values: Any) -> Settings:
        """Settings from `values` alone: every environment variable is ignored (the demo
        must never reach a real backend because the shell has DATABASE_URL set)."""
        defaults = {
            f.validation_alias: f.default
            for f in cls.model_fields.values()
            if isinstance(f.validation_alias, str)
        }
        return cls(**{**defaults, **values})

    # ---- derived values -------------------------------------------------------------

    @property
    def environment_name(self) -> str:
        return self.environment_override or self.environment.name

    @property
    def environment_colour(self) -> str:
        if self.environment_override:
            return EnvironmentConfig(name=self.environment_override).resolved_colour
        return self.environment.resolved_colour

    def postgres_dsn(self) -> str | None:
        """The primary's DSN (secret: never print it), or None when Postgres is not configured."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if not self.db_host:
            return None
        user = quote(self.db_user or real_user(), safe="")
        password = self.db_password.get_secret_value() if self.db_password else ""
        auth = f"{user}:{quote(password, safe='')}" if password else user
        return f"postgresql://{auth}@{self.db_host}:{self.db_port}/{quote(self.db_name or '')}"

    def postgres_read_dsn(self) -> str | None:
        """The read replica's DSN when DB_READ_HOST is set: the primary's with the host swapped."""
        dsn = self.postgres_dsn()
        if dsn is None or not self.db_read_host:
            return None
        parts = urlsplit(dsn)
        userinfo, _, hostport = parts.netloc.rpartition("@")
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{userinfo}@{self.db_read_host}{port}" if userinfo else self.db_read_host + port
        del hostport
        return parts._replace(netloc=netloc).geturl()

    def resolved(self) -> Resolved:
        """Plain values for building the services and the shell (secrets stay masked)."""

        def secret(value: str | SecretStr | None) -> Secret | None:
            if value is None:
                return None
            return Secret(value.get_secret_value() if isinstance(value, SecretStr) else value)

        operator, role = self.resolve_operator()
        refresh = self.refresh.as_dict()
        return Resolved(
            environment_name=self.environment_name, environment_colour=self.environment_colour,
            operator=operator, role=role, read_only=self.read_only, refresh=refresh,
            postgres_dsn=secret(self.postgres_dsn()), postgres_read_dsn=secret(self.postgres_read_dsn()),
            kubeconfig=self.kubeconfig, kube_context=self.kube_context, prometheus_url=self.prometheus_url,
            alertmanager_url=self.alertmanager_url, stripe_secret_key=secret(self.stripe_secret_key),
            stripe_api_base=self.stripe_api_base, s3_endpoint=self.s3_endpoint,
            s3_access_key=secret(self.s3_access_key), s3_secret_key=secret(self.s3_secret_key),
            s3_bucket=self.s3_bucket, s3_use_ssl=self.s3_use_ssl, panel_url=self.panel_url,
            ptero_app_key=secret(self.ptero_app_key), provisioner_url=self.provisioner_url,
            provisioner_key=secret(self.provisioner_key), bot_url=self.bot_url,
            backup_encryption_key=secret(self.backup_encryption_key),
            backup_retention_days=self.backup_retention_days,
            restore_dsn=secret(self.restore_dsn or self.postgres_dsn()), saves_bucket=self.saves_bucket,
            price_ceiling=self.price_ceiling,
            keymap=dict(self.keymap),
        )  # fmt: skip

    def resolve_operator(self, os_user: str | None = None) -> tuple[str, Role]:
        """(operator name, role) for this OS user: mapped by [operators], else viewer. The
        OS user is the one of the process's real uid, from the kernel: never LOGNAME, USER or
        SUDO_USER, which anyone can set."""
        os_user = os_user or real_user()
        for name, entry in self.operators.items():
            if isinstance(entry, OperatorEntry) and os_user in entry.os_users:
                return name, entry.role
        entry = self.operators.get(os_user)
        return os_user, entry.role if entry else "viewer"


def real_user() -> str:
    """The login name of the real uid (over SSH: who logged in)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no passwd entry (a container): its number, never a name it chose
        return f"uid-{os.getuid()}"


SECRET_FIELDS = frozenset(
    name for name, f in Settings.model_fields.items() if "SecretStr" in repr(f.annotation)
)
URL_FIELDS = frozenset(("panel_url", "provisioner_url", "prometheus_url", "alertmanager_url", "bot_url",
                        "s3_endpoint", "stripe_api_base"))  # fmt: skip


def _key(part: object) -> str:
    """One part of a key's path as the TOML file would spell it, odd characters quoted."""
    text = str(part)
    return text if BARE_KEY.fullmatch(text) else shown(text)


BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _format_errors(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        key = ".".join(_key(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "literal_error":
            message = f"must be one of {', '.join(ROLES)}"
        elif item["loc"][:1] == ("refresh",) and item["type"] in (
            "greater_than_equal", "less_than_equal", "finite_number",
        ):  # fmt: skip
            message = f"a poll interval must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds (a day)"
        message = message.removeprefix("Value error, ")
        top = str(item["loc"][0]) if item["loc"] else ""
        field = next((n for n, f in Settings.model_fields.items() if top in (n, f.validation_alias)), top)
        given = item.get("input")
        if field in URL_FIELDS and isinstance(given, str):
            given = mask_url(given)
        if field not in SECRET_FIELDS and isinstance(given, str | int | float | bool):
            if item["type"] not in ("value_error", "extra_forbidden"):
                got = shown(given) if isinstance(given, str) else repr(given)[:40]
                message = f"{message} (got {got})"
        lines.append(f"{key}: {message}" if key else message)
    return lines


TOML_SECTIONS = ("environment", "operators", "refresh", "keymap")
MAX_CONFIG_BYTES = 1_000_000  # a config file is a few KB; more is the wrong file
MAX_PROBLEMS = 50


def _shown_path(path: Path) -> str:
    text = str(path)
    return text if text.isprintable() and len(text) <= 200 else shown(text, 120)


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML file's tables; raises ConfigError with one line saying why it cannot be read."""
    where = _shown_path(path)
    try:
        if not path.is_file():
            raise ConfigError([f"{where}: not a regular file"])
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot be read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{where}: larger than {MAX_CONFIG_BYTES:,} bytes: not a config file"])
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:  # TOML never holds a NUL
        raise ConfigError([f"{where}: is UTF-16 or binary, not UTF-8 text: save it as UTF-8"])
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is harmless
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}): save it as UTF-8"]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a={...}}
        raise ConfigError([f"{where}: nested too deeply to be a config file"]) from None


def load_settings(config_path: Path | None = None) -> Settings:
    """Settings from the environment and the TOML file.

    Raises ConfigError with one line per problem, every problem found at once (an unknown
    section does not hide a bad value elsewhere); an explicitly named file that does not
    exist is a problem, the default file missing is not.
    """
    explicit = config_path is not None or bool(os.environ.get("OPSCONSOLE_CONFIG"))
    path = config_path or Path(os.environ.get("OPSCONSOLE_CONFIG") or default_config_path())
    data: dict[str, Any] = {}
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long, a directory that cannot be searched
        raise ConfigError([f"{_shown_path(path)}: cannot be read: {exc.strerror or exc}"]) from None
    if exists:
        data = _read_toml(path)
    elif explicit:
        raise ConfigError([f"{_shown_path(path)}: no such config file"])
    known = ", ".join(TOML_SECTIONS)
    problems = [
        f"{_key(key)}: unknown {'section' if isinstance(value, dict) else 'key'} in "
        f"{shown(path.name, 60) if not path.name.isprintable() else path.name} (known: {known})"
        for key, value in data.items()
        if key not in TOML_SECTIONS
    ]
    try:
        settings = Settings(**{k: v for k, v in data.items() if k in TOML_SECTIONS})
    except ValidationError as exc:
        problems += _format_errors(exc)
    if len(problems) > MAX_PROBLEMS:  # a generated or wrong file: enough to see what is wrong
        more = len(problems) - MAX_PROBLEMS + 1
        problems = [*problems[: MAX_PROBLEMS - 1], f"… and {more:,} more problems"]
    if problems:
        raise ConfigError(problems)
    return settings
