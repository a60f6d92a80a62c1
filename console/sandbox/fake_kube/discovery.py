"""API discovery as kubectl and the client read it: /version, /api, /apis and each
group-version's resource list (with the scale and log subresources)."""

from __future__ import annotations

from aiohttp import web

from console.sandbox.fake_kube.kinds import KINDS, POD, Kind

VERSION = {"major": "1", "minor": "29", "gitVersion": "v1.29.4-fake", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2024-04-16T00:00:00Z", "goVersion": "go1.21.9",
           "compiler": "gc", "platform": "linux/amd64"}  # fmt: skip
_VERBS = ["get", "list", "patch", "watch"]


def group_versions() -> list[tuple[str, str]]:
    return sorted({(k.group, k.version) for k in KINDS})


def api_versions(address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}  # fmt: skip


def api_groups() -> dict:
    groups = []
    for group in sorted({k.group for k in KINDS if k.group}):
        versions = [
            {"groupVersion": f"{group}/{v}", "version": v}
            for v in sorted({k.version for k in KINDS if k.group == group})
        ]
        groups.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource(kd: Kind) -> dict:
    entry = {"name": kd.plural, "singularName": kd.kind.lower(), "namespaced": kd.namespaced, "kind": kd.kind,
             "verbs": _VERBS, "shortNames": list(kd.short)}  # fmt: skip
    if kd.categories:
        entry["categories"] = list(kd.categories)
    return entry


def resource_list(group: str, version: str) -> dict:
    resources: list[dict] = []
    for kd in KINDS:
        if (kd.group, kd.version) != (group, version):
            continue
        resources.append(_resource(kd))
        if kd.scalable:
            resources.append({"name": f"{kd.plural}/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
                              "version": "v1", "kind": "Scale", "verbs": ["get", "patch"]})  # fmt: skip
        if kd is POD:
            resources.append(
                {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]}
            )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}  # fmt: skip


def add_routes(app: web.Application) -> None:
    """GET /version, /api, /apis and each group-version's resources on `app`."""

    def constant(body: dict):
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(body)

        return handler

    add = app.router.add_route
    add("GET", "/version", constant(VERSION))
    add("GET", "/version/", constant(VERSION))  # where kubernetes_asyncio's VersionApi asks

    async def api(request: web.Request) -> web.Response:
        return web.json_response(api_versions(request.host))

    add("GET", "/api", api)
    add("GET", "/apis", constant(api_groups()))
    for group, version in group_versions():
        add(
            "GET", f"/apis/{group}/{version}" if group else "/api/v1", constant(resource_list(group, version))
        )
