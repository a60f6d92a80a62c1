"""Whatever is typed or configured, the console answers in plain lines and exit codes (0, 1
or 2), never with a Python traceback: the cases an on-call engineer tripped on, then
hypothesis over command lines and config files. Nothing here can change anything: no
backend is configured (except a local PostgreSQL where one case needs a server's answer),
and every refusal is checked to come before a single service is built."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import traceback
from datetime import timedelta

import pytest
import typer.main
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import console.wiring
from console.cli import cli
from console.settings import ConfigError, Settings, load_settings
from services.dsn import dsn_problems

TRACEBACK = "Traceback (most recent call last)"
# Commands that start servers and run until Ctrl+C: never run by the fuzz.
LONG_RUNNING = frozenset({"sandbox", "demo"})
# Every setting that could point the console at a backend, and the libpq variables asyncpg
# reads: all removed, so the only backend any example can reach is none.
BACKEND_VARIABLES = sorted(
    {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}
    | {"OPSCONSOLE_CONFIG", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE",
       "PGSERVICE", "PGTARGETSESSIONATTRS", "PGSSLNEGOTIATION", "PGPASSFILE", "PGSERVICEFILE"}
)  # fmt: skip


@pytest.fixture(scope="module")
def quiet_env(tmp_path_factory: pytest.TempPathFactory):
    """No backend settings, a fresh HOME and XDG dirs, and a scratch working directory (a
    stray file name in an example lands there)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name in BACKEND_VARIABLES:
            patch.delenv(name, raising=False)
        for name, sub in (("HOME", ""), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                          ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):  # fmt: skip
            (home / sub).mkdir(exist_ok=True)
            patch.setenv(name, str(home / sub))
        patch.chdir(home)
        yield home


def invoke(args: list[str], env: dict[str, str] | None = None):
    """Run the command line in-process (typer's CliRunner); stdin is empty, not a terminal."""
    return CliRunner().invoke(cli, args, input="", env=env)


def assert_plain(result, args: object) -> None:
    """No traceback printed, no exception escaped, and an exit code of 0, 1 or 2."""
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    detail = "".join(traceback.format_exception(result.exception)) if escaped else ""
    assert not escaped, f"{args!r} raised:\n{detail}"
    assert TRACEBACK not in result.output, f"{args!r} printed a traceback:\n{result.output}"
    assert result.exit_code in (0, 1, 2), f"{args!r} exited {result.exit_code}:\n{result.output}"


@pytest.fixture
def no_backend_built(monkeypatch: pytest.MonkeyPatch):
    """Fail the test if any service is built: a refusal must come before any backend."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("services were built: the refusal came too late")

    monkeypatch.setattr(console.wiring, "build_services", refuse)


def one_line_exit_2(result, *expected: str) -> str:
    assert_plain(result, expected)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


# ---- the reported cases -------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u@127.0.0.1:99999/db", "DATABASE_URL: port 99999 is out of range (1 to 65535)"),
        ("postgresql://u@127.0.0.1:notaport/db", "DATABASE_URL: port 'notaport' is not a port number"),
        ("postgresql://u:pw@db/x?target_session_attrs=readonly", "target_session_attrs 'readonly' is not"),
    ],
)
def test_a_dsn_asyncpg_cannot_use_is_one_line_and_exit_2(quiet_env, no_backend_built, dsn, expected):
    line = one_line_exit_2(invoke(["orders"], env={"DATABASE_URL": dsn}), expected)
    assert line.startswith("opsconsole: config: ")


def test_read_only_target_against_a_primary_is_the_servers_answer_in_one_line(quiet_env, pg_cluster):
    dsn = pg_cluster.dsn("postgres") + "?target_session_attrs=read-only"
    result = invoke(["orders"], env={"DATABASE_URL": dsn})
    assert_plain(result, dsn)
    assert result.exit_code == 1  # a valid setting the server refuses: the backend's answer
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("opsconsole: Postgres at 127.0.0.1:")
    assert "is not read-only: the DSN's target_session_attrs=read-only refuses it" in line


@pytest.mark.parametrize("replicas", ["2147483648", "-5", "-1", "201"])
def test_kube_scale_out_of_range_names_the_range_before_any_backend(quiet_env, no_backend_built, replicas):
    for name in ("minio", "X"):
        result = invoke(["kube", "scale", name, replicas, "--yes"])
        one_line_exit_2(result, "kube scale: replicas must be between 0 and 200", f"not {replicas}")
    assert "No such option" not in result.output


def test_kube_scale_still_refuses_an_unknown_option_next_to_a_negative_number(quiet_env, no_backend_built):
    result = invoke(["kube", "scale", "X", "-5", "--dryrun"])
    assert result.exit_code == 2 and "No such option: --dryrun" in result.output


CONFIGS = {
    "latin-1": ('[environment]\nname = "café"\n'.encode("latin-1"), "not UTF-8 (byte 0xe9 on line 2)"),
    "utf-16": ('[environment]\nname = "x"\n'.encode("utf-16"), "is UTF-16 or binary, not UTF-8 text"),
    "utf-16 without BOM": ('[environment]\nname = "x"\n'.encode("utf-16-le"), "is UTF-16 or binary"),
    "5,000 deep": (("a = " + "[" * 5000 + "]" * 5000).encode(), "nested too deeply to be a config file"),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_a_config_file_that_cannot_be_read_is_one_line_and_exit_2(quiet_env, no_backend_built, case):
    raw, expected = CONFIGS[case]
    path = quiet_env / "config.toml"
    path.write_bytes(raw)
    one_line_exit_2(invoke(["--config", str(path), "orders"]), f"config: {path}: {expected}")


def test_an_unknown_section_does_not_hide_the_other_bad_keys(quiet_env, no_backend_built):
    path = quiet_env / "config.toml"
    path.write_text('[bogus]\nx = 1\n[environment]\ncolour = "nope"\n[operators]\nbob = "wizard"\n')
    result = invoke(["--config", str(path), "orders"])
    assert_plain(result, path)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "opsconsole: config: bogus: unknown section in config.toml "
        "(known: environment, operators, refresh, keymap)",
        "opsconsole: config: environment.colour: not a colour name or #rrggbb: 'nope'",
        "opsconsole: config: operators.bob.role: must be one of viewer, support, oncall, admin "
        "(got 'wizard')",
    ]


def test_the_fast_tui_start_reports_an_unreadable_config_in_one_line(quiet_env):
    path = quiet_env / "deep.toml"
    path.write_bytes(CONFIGS["5,000 deep"][0])
    run = subprocess.run([sys.executable, "-m", "console", "--config", str(path)], capture_output=True,
                         text=True, timeout=60, env=os.environ.copy(), stdin=subprocess.DEVNULL)  # fmt: skip
    assert run.returncode == 2 and TRACEBACK not in run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line == f"opsconsole: config: {path}: nested too deeply to be a config file"


# ---- fuzz: command lines ------------------------------------------------------------


def _command_tree():
    """The real command line, long-running commands left out: {path: command}."""
    commands: dict[tuple[str, ...], object] = {}

    def walk(command, path: tuple[str, ...]) -> None:
        commands[path] = command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if name not in LONG_RUNNING:
                walk(sub, (*path, name))

    walk(typer.main.get_command(cli), ())
    return commands


COMMANDS = _command_tree()
COMMAND_PATHS = [list(path) for path in COMMANDS]
OPTION_NAMES = sorted({o for c in COMMANDS.values() for p in c.params for o in (*p.opts, *p.secondary_opts)
                       if o.startswith("-")})  # fmt: skip
WORDS = sorted({word for path in COMMANDS for word in path})
ODD_VALUES = [
    "", " ", "-", "--", "-5", "-0", "0", "2147483648", "-2147483649", "9" * 5000, "-" + "9" * 400, "1e308",
    "nan", "-inf", "0x1F", "١٢", "3.5", "minio", "agis-bot", "Bad NS", "ñ", "default", "\x1b[31mred",
    "a\nb", "\r", "\t", "\u202eevil", "\udcff", "x" * 10000, "--" + "a" * 300, "-n", "--help",
    "../../etc/passwd", "/nonexistent/dir/x.toml", ".", "replicas=3", "namespace=Bad NS", "=x",
    "scale_deployment", "cancel_order", "32b6f533", "00000000-0000-0000-0000-000000000000",
]  # fmt: skip
# Real argv cannot hold a NUL; every other character can reach the console.
odd_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40)
odd_value = st.one_of(
    st.sampled_from(ODD_VALUES), st.integers(min_value=-(10**30), max_value=10**30).map(str), odd_text
)
token = st.one_of(st.sampled_from(OPTION_NAMES), st.sampled_from(WORDS), odd_value)


NEGATIVE = re.compile(r"-\d+")  # an argument the parser reads as a number, not an option


@st.composite
def well_formed(draw) -> list[str]:
    """A command with its own options (odd values where they take one) and its arguments
    (odd values), so the example gets past the parser into the command's body."""
    path = draw(st.sampled_from(sorted(COMMANDS)))
    command = COMMANDS[path]
    words: list[str] = []
    for param in command.params:
        if param.param_type_name == "argument":
            words.append(draw(odd_value.filter(lambda v: not v.startswith("-") or NEGATIVE.fullmatch(v))))
        elif draw(st.booleans()):
            name = draw(st.sampled_from([*param.opts, *param.secondary_opts]))
            words += [name] if getattr(param, "is_flag", False) else [name, draw(odd_value)]
    return [*path, *draw(st.permutations(words))] if path else words


command_line = st.one_of(
    well_formed(),
    well_formed(),  # twice: most examples reach a command's body, the rest test the parser
    st.builds(
        lambda globals_, path, rest: [*globals_, *path, *rest],
        st.lists(st.sampled_from(["--read-only", "--dry-run", "--config", "-c"]), max_size=2),
        st.sampled_from(COMMAND_PATHS),
        st.lists(token, max_size=6),
    ),
)


@pytest.fixture(scope="module")
def warm(quiet_env):
    """Import what the commands import on first use, so one example's time is its own."""
    for path in COMMAND_PATHS:
        invoke([*path, "x"] if path in (["act"], ["kube", "restart"]) else path)
    invoke(["kube", "scale", "x", "1"])


FUZZ = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@FUZZ
@given(args=command_line)
def test_no_command_line_prints_a_traceback(quiet_env, warm, args):
    assume(not LONG_RUNNING & set(args))
    assert_plain(invoke(args), args)


# ---- fuzz: config files -------------------------------------------------------------

SECTIONS = ["environment", "operators", "refresh", "keymap"]
KEYS = ["name", "colour", "role", "os_users", "default", "orders", "overview", "help", "area.orders",
        "alice", "quit", "x", "", "a\nb", "ñ", "k" * 200]  # fmt: skip


def _toml_key(key: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in key) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, int | str):
        return str(value) if isinstance(value, int) else _toml_key(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(data: dict[str, object]) -> str:
    """`data` as TOML: each top-level dict a [section], everything else inline."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{_toml_key(name)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


ODD_SETTINGS = ["oncall", "admin", "wizard", "red", "#ff0000", "#zzz", "f1", "ctrl+", "question_mark",
                "production", "", "x" * 500, "\x1b[31m", "a\nb"]  # fmt: skip
scalar = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_SETTINGS),
    odd_text,
)
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
config_data = st.dictionaries(
    st.one_of(st.sampled_from(SECTIONS), st.sampled_from(KEYS)),
    st.one_of(st.dictionaries(st.one_of(st.sampled_from(KEYS), odd_text), value, max_size=4), value),
    max_size=5,
)
VALID = b'[environment]\nname = "staging"\n[operators]\nalice = "oncall"\n[refresh]\norders = 2.5\n'


def spliced(at: int, bad: bytes) -> bytes:
    """A valid config with a few bytes put in at `at`."""
    return VALID[:at] + bad + VALID[at:]


config_bytes = st.one_of(
    config_data.map(lambda data: toml_text(data).encode()),
    config_data.map(lambda data: toml_text(data).encode("utf-16")),
    st.binary(max_size=400),
    st.builds(spliced, st.integers(0, len(VALID)), st.binary(max_size=8)),
    st.integers(1, 6000).map(lambda depth: ("a = " + "[" * depth + "]" * depth).encode()),
    st.integers(1, 6000).map(lambda depth: ("a = " + "{b = " * depth + "1" + "}" * depth).encode()),
)


@FUZZ
@given(raw=config_bytes)
def test_no_config_file_prints_a_traceback(quiet_env, warm, raw):
    path = quiet_env / "fuzzed.toml"
    path.write_bytes(raw)
    try:
        expected = None
        load_settings(path).resolved().to_json()  # what the fast TUI start sends its parent
    except ConfigError as exc:
        expected = exc.problems
        assert expected and all(line and "\n" not in line and len(line) < 600 for line in expected), expected
    result = invoke(["--config", str(path), "orders", "--json"])
    assert_plain(result, raw)
    if expected is not None:
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == len(expected)


# ---- fuzz: DSNs: what the check passes, asyncpg reads -------------------------------

QUERY_PARTS = ["sslmode=require", "sslmode=on", "target_session_attrs=read-only", "target_session_attrs=no",
               "port=5432", "port=99999", "port=1,2", "host=h", "host=h1,h2", "application_name=x", "x",
               "gsslib=no"]  # fmt: skip
port = st.one_of(st.integers(0, 70000).map(str), st.sampled_from(["", "notaport", "-1", "٣", "5432"]))
host = st.one_of(st.sampled_from(["db", "127.0.0.1", "[::1]", "[::1", "", "/run/pg", "a b"]), odd_text)
host_port = st.builds(lambda h, p: f"{h}:{p}" if p else h, host, port)


def query_string(parts: list[str]) -> str:
    return "?" + "&".join(parts)


dsn = st.builds(
    lambda scheme, auth, hosts, db, query: f"{scheme}://{auth}{','.join(hosts)}/{db}{query}",
    st.sampled_from(["postgresql", "postgresql", "postgresql", "postgres", "mysql", ""]),
    st.sampled_from(["", "u@", "u:pw@", "u:p@ss@", "u:%40@"]),
    st.one_of(st.just([""]), st.lists(host_port, max_size=3)),
    st.sampled_from(["db", "", "a%20b"]),
    st.one_of(st.just(""), st.lists(st.sampled_from(QUERY_PARTS), min_size=1, max_size=3).map(query_string)),
)
# The libpq variables asyncpg reads for what the DSN leaves out.
pg_environ = st.fixed_dictionaries(
    {},
    optional={
        "PGPORT": st.sampled_from(["5432", "1,2", "notaport", "99999", "1,2,3,4,5", ""]),
        "PGHOST": st.sampled_from(["db", "h1,h2", "[::1", "h:x", "/run/pg"]),
        "PGSSLMODE": st.sampled_from(["prefer", "on"]),
        "PGTARGETSESSIONATTRS": st.sampled_from(["primary", "readonly"]),
    },
)


@FUZZ
@given(dsn=dsn, environ=pg_environ)
def test_a_dsn_the_check_passes_is_one_asyncpg_reads_and_can_dial(quiet_env, dsn, environ):
    from unittest import mock

    from asyncpg import connect_utils

    problems = dsn_problems(dsn, environ=environ)
    assert all("pw" not in line and "\n" not in line for line in problems), problems
    if problems:
        return
    with mock.patch.dict(os.environ, environ):
        addrs, _params = connect_utils._parse_connect_dsn_and_args(
            dsn=dsn, host=None, port=None, user=None, password=None, passfile=None, database=None, ssl=None,
            service=None, servicefile=None, direct_tls=None, server_settings=None, target_session_attrs=None,
            krbsrvname=None, gsslib=None,
        )  # fmt: skip
    for addr in addrs:
        if isinstance(addr, tuple):
            assert 1 <= addr[1] <= 65535, (dsn, environ, addr)
