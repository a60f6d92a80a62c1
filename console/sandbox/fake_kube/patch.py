"""The three patch formats an API server accepts: JSON merge patch (RFC 7386), its strategic
flavour for built-in types (lists of named items merge by name) and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
import json
from typing import Any

from console.sandbox.fake_kube.wire import Failure, json_type

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any, *, by_name: bool = False) -> Any:
    """RFC 7386; with by_name (the strategic flavour) lists of named items merge item by item."""
    if isinstance(patch, list) and by_name and isinstance(target, list) and _named(patch) and _named(target):
        merged = {item["name"]: item for item in target}
        for item in patch:
            merged[item["name"]] = merge_patch(merged.get(item["name"]), item, by_name=True)
        return list(merged.values())
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, by_name=by_name)
    return result


def _named(items: list) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


class PatchError(ValueError):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} does not start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list, token: str, *, insert: bool = False) -> int:
    if insert and token == "-":
        return len(container)
    if not token.isdigit():
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not insert):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _walk(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, dict):
            if token not in doc:
                raise PatchError(f"path element {token!r} not found")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token)]
        else:
            raise PatchError(f"cannot descend into a {json_type(doc)} at {token!r}")
    return doc


def json_patch(doc: Any, operations: list) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test) on a copy of doc; raises PatchError."""
    doc = copy.deepcopy(doc)
    for op in operations:
        if (
            not isinstance(op, dict)
            or not isinstance(op.get("op"), str)
            or not isinstance(op.get("path"), str)
        ):
            raise PatchError(f"malformed operation {op!r}")
        name, tokens = op["op"], _pointer(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{name} operation at {op['path']} has no value")
        if name == "test":
            if _walk(doc, tokens) != op["value"]:
                raise PatchError(f"testing value {op['path']} failed")
        elif name == "remove":
            _remove(doc, tokens)
        elif name == "replace":
            _walk(doc, tokens)  # must exist
            doc = _add(doc, tokens, copy.deepcopy(op["value"]), replace=True)
        elif name == "add":
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, source))
            if name == "move":
                _remove(doc, source)
            doc = _add(doc, tokens, value)
        else:
            raise PatchError(f"unknown operation {name!r}")
    return doc


def _add(doc: Any, tokens: list[str], value: Any, *, replace: bool = False) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last)] = value
        else:
            parent.insert(_index(parent, last, insert=True), value)
    else:
        raise PatchError(f"cannot add to a {json_type(parent)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> None:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list):
        parent.pop(_index(parent, last))
    else:
        raise PatchError(f"path element {last!r} not found")


def apply_patch(content_type: str, doc: dict, body: bytes, *, builtin: bool) -> dict:
    """The document after the patch a request carries; raises Failure 400/415/422 as the API does."""
    accepted = [JSON_PATCH, MERGE, SMP] if builtin else [JSON_PATCH, MERGE]
    if content_type not in accepted:
        message = ("the body of the request was in an unknown format - accepted media types include: "
                   + ", ".join(accepted))  # fmt: skip
        raise Failure(415, "UnsupportedMediaType", message)
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise Failure(400, "BadRequest", f"error decoding patch: {exc}") from None
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise Failure(
                400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            )
        try:
            result = json_patch(doc, patch)
        except PatchError as exc:
            raise Failure(
                422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
            ) from None
    else:
        if not isinstance(patch, dict):
            raise Failure(
                400,
                "BadRequest",
                f"json: cannot unmarshal {json_type(patch)} into Go value of type map[string]interface {{}}",
            )
        result = merge_patch(doc, patch, by_name=content_type == SMP)
    if not isinstance(result, dict):
        raise Failure(422, "Invalid", "the patch does not leave an object")
    return result
