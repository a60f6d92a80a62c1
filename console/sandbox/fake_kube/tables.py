"""The Table form of a list (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which
kubectl asks for and prints: the columns `kubectl get` shows for each kind."""

from __future__ import annotations

from aiohttp import web

from console.sandbox.fake_kube.kinds import Kind


def wanted(request: web.Request) -> bool:
    return False


def table(kd: Kind, objects: list[dict], meta: dict, request: web.Request) -> dict:
    raise NotImplementedError
