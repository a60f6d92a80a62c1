"""One JSON request over httpx with failures a person can act on (the provisioning
functions and the panel share it). Headers carry keys: they never reach a message."""

from __future__ import annotations

from typing import Any

from services.errors import BackendFailed, Unreachable


async def request_json(
    backend: str,
    label: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 20.0,
) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body or None). Raises Unreachable when nothing answers in
    time and BackendFailed for rejected credentials; other statuses are the caller's."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.request(method, url, headers=headers, json=body)
    except httpx.TimeoutException as exc:
        raise Unreachable(f"{label} did not answer within {timeout:g} s", backend=backend) from exc
    except httpx.HTTPError as exc:
        raise Unreachable(f"{label} cannot be reached ({type(exc).__name__})", backend=backend) from exc
    if response.status_code in (401, 403):
        raise BackendFailed(
            f"{label} rejected the credentials (HTTP {response.status_code})", backend=backend
        )
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return response.status_code, parsed


def error_text(status: int, body: Any) -> str:
    """The error a function or API answered with, as one line."""
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return body[key]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("detail") or errors[0].get("code") or f"HTTP {status}")
    return f"HTTP {status}"
