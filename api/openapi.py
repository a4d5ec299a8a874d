"""The OpenAPI document as FastAPI builds it, plus what FastAPI cannot say by itself:

- `telegram_id` is a required query parameter of `POST /notifications/ack` (the route also
  takes it from the body, for bots built for the first version: accepted, not documented);
- every operation with a request body can answer 413 (api.limits), and every one with a path
  parameter 404 (integer ids are part of the path: `/shops/abc` is no route);
- links: which response feeds which request (a new shop's `id` into its dashboard, a poll's
  `next_cursor` into the ack...), so clients and stateful testers (schemathesis) can follow
  a person's way through the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

P = "/api/v1"
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}

PERSON = {"telegram_id": "$request.path.telegram_id"}  # from PUT/GET /people/{telegram_id}
CALLER = {"telegram_id": "$request.query.telegram_id"}  # the same person, from a person-scoped call


def _shop_links(shop_id: str, telegram_id: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Links into every operation on one shop, naming it and the person by these expressions."""
    ids = {"path.shop_id": shop_id, "query.telegram_id": telegram_id}
    shop = f"{P}/shops/{{shop_id}}"
    operations = {
        "GetShop": ("get", shop),
        "RenameShop": ("patch", shop),
        "RemoveShop": ("delete", shop),
        "Dashboard": ("get", f"{shop}/dashboard"),
        "Orders": ("get", f"{shop}/orders"),
        "CriticalStocks": ("get", f"{shop}/stocks/critical"),
        "ReviewsSummary": ("get", f"{shop}/reviews/summary"),
        "Analytics": ("get", f"{shop}/analytics"),
        "AnalyticsChart": ("get", f"{shop}/analytics.png"),
        "SyncRuns": ("get", f"{shop}/sync-runs"),
        "StartSync": ("post", f"{shop}/sync"),
        "StartBackfill": ("post", f"{shop}/sync/backfill"),
        "Invite": ("post", f"{shop}/members"),
        "Leave": ("delete", f"{shop}/members/me"),
        "PauseNotifications": ("post", f"{shop}/pause"),
        "ResumeNotifications": ("post", f"{shop}/resume"),
        "CreateInvite": ("post", f"{shop}/invites"),
    }
    return {name: (method, path, ids) for name, (method, path) in operations.items()}


def _person_links() -> dict[str, tuple[str, str, dict[str, str]]]:
    query = {"query.telegram_id": PERSON["telegram_id"]}
    return {
        "GetPerson": ("get", f"{P}/people/{{telegram_id}}", {"path.telegram_id": PERSON["telegram_id"]}),
        "ListShops": ("get", f"{P}/shops", query),
        "GetSettings": ("get", f"{P}/settings", query),
        "ChangeSettings": ("put", f"{P}/settings", query),
        "Poll": ("get", f"{P}/notifications", query),
        "ConnectWb": ("post", f"{P}/shops/wb", query),
        "StartAllegroLogin": ("post", f"{P}/shops/allegro/login", query),
    }


# (method, path, status) of a source -> {link name: (method, path, parameters[, requestBody])}
LINKS: dict[tuple[str, str, str], dict[str, tuple[Any, ...]]] = {
    ("put", f"{P}/people/{{telegram_id}}", "200"): _person_links(),
    ("put", f"{P}/people/{{telegram_id}}", "201"): _person_links(),
    ("post", f"{P}/shops/wb", "201"): _shop_links("$response.body#/id", CALLER["telegram_id"]),
    ("get", f"{P}/shops", "200"): _shop_links("$response.body#/items/0/id", CALLER["telegram_id"]),
    ("post", f"{P}/shops/allegro/login", "202"): {
        "LoginStatus": (
            "get",
            f"{P}/shops/allegro/login/{{ticket_id}}",
            {"path.ticket_id": "$response.body#/id", "query.telegram_id": CALLER["telegram_id"]},
        )
    },
    ("get", f"{P}/notifications", "200"): {
        "Ack": (
            "post",
            f"{P}/notifications/ack",
            {"query.telegram_id": CALLER["telegram_id"]},
            {"cursor": "$response.body#/next_cursor"},
        )
    },
    ("post", f"{P}/shops/{{shop_id}}/sync", "202"): {
        "SyncStatus": (
            "get",
            f"{P}/shops/{{shop_id}}/sync/{{run_id}}",
            {
                "path.shop_id": "$request.path.shop_id",
                "path.run_id": "$response.body#/run_id",
                "query.telegram_id": CALLER["telegram_id"],
            },
        )
    },
}
LINKS[("post", f"{P}/shops/{{shop_id}}/sync/backfill", "202")] = LINKS[("post", f"{P}/shops/{{shop_id}}/sync", "202")]

# Query parameters FastAPI must take as optional (another place may carry them) but that
# clients are to send: documented as required.
REQUIRED_QUERY = {("post", f"{P}/notifications/ack"): ("telegram_id",)}


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    paths = spec.get("paths", {})
    for path, item in paths.items():
        for method, operation in item.items():
            if "{" in path:  # an id that is not one (/shops/abc) names no route
                operation["responses"].setdefault("404", _error("no such route, or no such resource"))
            if "requestBody" in operation:
                operation["responses"].setdefault("413", _error("the request body is too large"))
            for name in REQUIRED_QUERY.get((method, path), ()):
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "query" and parameter["name"] == name:
                        parameter["required"] = True
                        schema = parameter["schema"]
                        kinds = [k for k in schema.pop("anyOf", ()) if k.get("type") != "null"]
                        schema.update(kinds[0] if kinds else {})
    for (method, path, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue  # a route this build does not have
        out = response.setdefault("links", {})
        for name, (target_method, target_path, parameters, *body) in links.items():
            target = paths.get(target_path, {}).get(target_method)
            if target is None:
                continue
            link: dict[str, Any] = {"operationId": target["operationId"], "parameters": parameters}
            if body:
                link["requestBody"] = body[0]
            out[name] = link
    app.openapi_schema = spec
    return spec


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def install(app: FastAPI) -> None:
    app.openapi = lambda: build(app)  # type: ignore[method-assign]
