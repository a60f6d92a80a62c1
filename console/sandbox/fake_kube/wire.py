"""The API server's wire conventions the fake shares across handlers: Status errors (404,
409, 422 with causes), label and field selectors, timestamps."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from console.sandbox.fake_kube.kinds import Kind

TRUE = ("true", "1")


class Failure(Exception):
    """An API error, answered as a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status(code, reason, message, details)

    def response(self) -> web.Response:
        return web.json_response(self.status, status=self.status["code"])


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A Failure Status object as the API server writes it."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason}  # fmt: skip
    if details:
        body["details"] = details
    body["code"] = code
    return body


def details(kd: Kind, name: str, **extra: Any) -> dict:
    found = {"name": name, "group": kd.group, "kind": kd.plural, **extra}
    return {k: v for k, v in found.items() if v != ""}


def not_found(kd: Kind, name: str) -> Failure:
    return Failure(404, "NotFound", f'{kd.resource} "{name}" not found', details(kd, name))


def conflict(kd: Kind, name: str) -> Failure:
    message = (f'Operation cannot be fulfilled on {kd.resource} "{name}": the object has been modified; '
               "please apply your changes to the latest version and try again")  # fmt: skip
    return Failure(409, "Conflict", message, details(kd, name))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "number")


def check_replicas(qualified: str, group: str, kind: str, name: str, value: Any) -> int:
    """The replicas a write asks for; raises the 422 Invalid an API server answers."""
    if isinstance(value, bool) or not isinstance(value, int):
        shown = json.dumps(value)
        why = f'Invalid value: {shown}: spec.replicas in body must be of type integer: "{json_type(value)}"'
    elif value < 0:
        why = f"Invalid value: {value}: must be greater than or equal to 0"
    else:
        return value
    cause = {"reason": "FieldValueInvalid", "message": why, "field": "spec.replicas"}
    found = {"name": name, "group": group, "kind": kind, "causes": [cause]}
    raise Failure(422, "Invalid", f'{qualified} "{name}" is invalid: spec.replicas: {why}',
                  {k: v for k, v in found.items() if v != ""})  # fmt: skip


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC)


# ---- selectors ---------------------------------------------------------------------------

Predicate = Callable[[dict], bool]
_LABEL_KEY = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_./]*")


def _field(obj: dict, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _requirement(term: str, get: Callable[[dict, str], str | None], labels: bool) -> Predicate | None:
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (part.strip() for part in term.split(op, 1))
            if not _LABEL_KEY.fullmatch(key):
                return None
            if op == "!=":
                return lambda o: get(o, key) != value
            return lambda o: get(o, key) == value
    negate = term.startswith("!")
    key = term[1:].strip() if negate else term
    if labels and _LABEL_KEY.fullmatch(key):
        return lambda o: (get(o, key) is None) == negate
    return None


def _selector(text: str, get: Callable[[dict, str], str | None], *, labels: bool) -> list[Predicate]:
    """k=v, k==v, k!=v and (for labels) k and !k, comma-separated; raises a 400 for anything else."""
    predicates = []
    for term in (t.strip() for t in text.split(",")):
        if term:
            predicate = _requirement(term, get, labels)
            if predicate is None:
                raise Failure(400, "BadRequest", f"unable to parse requirement: {term!r}")
            predicates.append(predicate)
    return predicates


def selectors(query: Any) -> list[Predicate]:
    """The labelSelector and fieldSelector of a request as predicates; raises Failure 400."""

    def label(obj: dict, key: str) -> str | None:
        return (obj["metadata"].get("labels") or {}).get(key)

    predicates = _selector(query.get("labelSelector", ""), label, labels=True)
    return predicates + _selector(query.get("fieldSelector", ""), _field, labels=False)


def labels_match(obj: dict, match: dict) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in match.items())
