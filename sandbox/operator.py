"""Operator endpoints under `/_sandbox/` (never faulted, never rate-limited,
not part of any marketplace surface). JSON in, JSON out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from sandbox.faults import FaultSpecError
from sandbox.latency import LatencySpecError
from sandbox.responses import json_response
from sandbox.timefmt import parse_iso_utc, to_dt, utc_z
from sandbox.world import World


def _world(request: Request) -> World:
    return request.app.state.world


async def _body(request: Request) -> dict[str, Any]:
    import json

    raw = await request.body()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {}


def _err(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _shop_or_404(world: World, shop: str) -> Response | None:
    return None if shop in world.shop_names() else _err(404, f"unknown shop {shop!r}")


def operator_router() -> APIRouter:
    r = APIRouter(prefix="/_sandbox")

    @r.get("/info")
    async def info(request: Request) -> Response:
        w = _world(request)
        return json_response(
            {
                "scenario": w.scenario.name,
                "seed": w.seed,
                "now": utc_z(w.now()),
                "speed": w.clock.speed,
                "shops": [
                    {"name": s.name, "marketplace": s.marketplace, "orders": s.orders, "live": s.live}
                    for s in w.scenario.shops
                ],
                "faults": w.faults.plan.to_spec(),
                "latency": w.latency.report()["spec"],
                "rate_limits": {"enabled": w.limiter.enabled, "scale": w.limiter.scale},
                "event_retention_s": w.event_retention(),
                "allegro_token_requests": w.allegro_token_requests,
            }
        )

    @r.get("/credentials")
    async def credentials(request: Request) -> Response:
        """Secrets, for local tools only: the sandbox is the issuer."""
        w = _world(request)
        return json_response(credentials_env(w))

    @r.get("/clock")
    async def clock(request: Request) -> Response:
        return json_response({"now": utc_z(_world(request).now())})

    @r.post("/clock/advance")
    async def advance(request: Request) -> Response:
        body = await _body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or seconds < 0:
            return _err(400, "seconds: a number >= 0")
        return json_response({"now": utc_z(_world(request).advance(float(seconds)).timestamp())})

    @r.get("/truth/{shop}")
    async def truth(shop: str, request: Request) -> Response:
        w = _world(request)
        return _shop_or_404(w, shop) or json_response(w.ground_truth(shop))

    @r.get("/truth/{shop}/transitions")
    async def transitions(shop: str, request: Request) -> Response:
        w = _world(request)
        missing = _shop_or_404(w, shop)
        if missing:
            return missing
        try:
            since = _dt(request.query_params.get("since"))
            until = _dt(request.query_params.get("until"))
        except ValueError:
            return _err(400, "since/until: ISO 8601 date-times")
        return json_response({"transitions": [t.to_dict() for t in w.transitions(shop, since, until)]})

    @r.get("/requests")
    async def requests(request: Request) -> Response:
        w = _world(request)
        q = request.query_params
        rows = w.log.entries(host=q.get("host"), shop=q.get("shop"), since_seq=int(q.get("since_seq", "0")))
        return json_response({"requests": [{**e.to_dict(), "at": utc_z(e.at, millis=True)} for e in rows]})

    @r.post("/allegro/device/approve")
    async def approve(request: Request) -> Response:
        return await _decide(request, True)

    @r.post("/allegro/device/deny")
    async def deny(request: Request) -> Response:
        return await _decide(request, False)

    @r.post("/allegro/revoke")
    async def revoke(request: Request) -> Response:
        body = await _body(request)
        if not body.get("shop") and not body.get("token_id"):
            return _err(400, "give shop or token_id")
        n = _world(request).revoke_allegro(body.get("shop"), body.get("token_id"))
        return json_response({"revoked": n})

    @r.post("/allegro/rotate")
    async def rotate(request: Request) -> Response:
        """Refresh a shop's live pair as another process would: the old access token dies and
        the old refresh token is spent (accepted again only within the grace)."""
        body = await _body(request)
        if not body.get("shop") and not body.get("token_id"):
            return _err(400, "give shop or token_id")
        try:
            pair = _world(request).rotate_allegro(body.get("shop"), body.get("token_id"))
        except KeyError:
            return _err(404, "no live Allegro token pair for that shop or token id")
        return json_response({**pair.token_response(), "shop": pair.shop, "token_id": pair.jti})

    @r.put("/allegro/token-requests")
    async def token_requests(request: Request) -> Response:
        body = await _body(request)
        n = body.get("requests")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            return _err(400, "requests: an integer >= 1, or null for no limit")
        _world(request).allegro_token_requests = n
        return json_response({"requests": n})

    @r.post("/allegro/event-retention")
    async def retention(request: Request) -> Response:
        body = await _body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            return _err(400, "seconds: a number > 0")
        _world(request).event_retention_s = float(seconds)
        return json_response({"event_retention_s": float(seconds)})

    @r.post("/allegro/merge")
    async def merge(request: Request) -> Response:
        """`{"shop", "forms": [id, id, ...]}`: the buyer pays these unpaid forms together now."""
        w = _world(request)
        body = await _body(request)
        shop, forms = body.get("shop"), body.get("forms")
        if shop not in w.allegro:
            return _err(404, f"unknown Allegro shop {shop!r}")
        if not isinstance(forms, list) or not all(isinstance(f, str) for f in forms):
            return _err(400, "forms: a list of checkout-form ids")
        try:
            return json_response(w.merge_allegro(shop, forms))
        except ValueError as exc:
            return _err(409, str(exc))

    @r.post("/wb/tokens")
    async def wb_token(request: Request) -> Response:
        w = _world(request)
        body = await _body(request)
        shop = body.get("shop")
        if shop not in w.wb:
            return _err(404, f"unknown WB shop {shop!r}")
        try:
            token = w.mint_wb_token(
                shop,
                body.get("categories") or ("content", "analytics", "marketplace", "statistics", "feedbacks"),
                float(body.get("ttl_seconds", 180 * 86400)),
                kind=str(body.get("kind") or "personal"),
            )
        except KeyError as exc:
            return _err(400, f"unknown category {exc}")
        except ValueError as exc:
            return _err(400, str(exc))
        return json_response({"token": token})

    @r.get("/faults")
    async def get_faults(request: Request) -> Response:
        return json_response({"spec": _world(request).faults.plan.to_spec()})

    @r.put("/faults")
    async def put_faults(request: Request) -> Response:
        body = await _body(request)
        try:
            spec = _world(request).set_faults(body.get("spec") or "")
        except FaultSpecError as exc:
            return _err(400, str(exc))
        return json_response({"spec": spec})

    @r.get("/latency")
    async def get_latency(request: Request) -> Response:
        return json_response(_world(request).latency.report())

    @r.put("/latency")
    async def put_latency(request: Request) -> Response:
        """`{"spec": "allegro-api=150"}`; an empty spec switches latency off. Resets the peak."""
        body = await _body(request)
        spec = body.get("spec")
        if spec is not None and not isinstance(spec, str):
            return _err(400, "spec: a latency spec such as 'allegro-api=150,wb-statistics=400'")
        w = _world(request)
        try:
            w.latency.set_spec(spec)
        except LatencySpecError as exc:
            return _err(400, str(exc))
        return json_response(w.latency.report())

    @r.get("/response-cache")
    async def response_cache(request: Request) -> Response:
        """Bodies answered from the response cache (hits) and generated (misses); off unless asked."""
        return json_response(_world(request).responses.report())

    @r.get("/rate-limits")
    async def rate_limit_report(request: Request) -> Response:
        """Requests the sandbox's buckets refused (limit violations; injected 429s not counted)."""
        w = _world(request)
        refused = w.limiter.refused()
        rows = [{"owner": o, "bucket": b, "refused": n} for (o, b), n in sorted(refused.items())]
        return json_response(
            {"enabled": w.limiter.enabled, "scale": w.limiter.scale, "refused": sum(refused.values()), "buckets": rows}
        )

    @r.put("/rate-limits")
    async def rate_limits(request: Request) -> Response:
        body = await _body(request)
        enabled, scale = body.get("enabled", True), body.get("scale")
        if not isinstance(enabled, bool) or (scale is not None and (not isinstance(scale, (int, float)) or scale <= 0)):
            return _err(400, "enabled: bool, scale: number > 0")
        w = _world(request)
        w.set_rate_limits(enabled, scale)
        return json_response({"enabled": w.limiter.enabled, "scale": w.limiter.scale})

    return r


async def _decide(request: Request, approve: bool) -> Response:
    body = await _body(request)
    code = body.get("code")
    if not isinstance(code, str) or not code:
        return _err(400, "code: the user code or device code")
    w = _world(request)
    try:
        if approve:
            shop = w.approve_device(code, body.get("shop"))
            return json_response({"approved": True, "shop": shop})
        w.deny_device(code)
        return json_response({"denied": True})
    except KeyError:
        return _err(404, "unknown, used or expired code")
    except ValueError as exc:
        return _err(400, str(exc))


def _dt(raw: str | None) -> datetime | None:
    return to_dt(parse_iso_utc(raw)) if raw else None


def credentials_env(w: World) -> dict[str, str]:
    """Settings (minus base URLs) that point sellerpulse at this sandbox."""
    env = {"ALLEGRO_CLIENT_ID": w.client_id, "ALLEGRO_CLIENT_SECRET": w.client_secret}
    for name in w.wb:
        env[f"WB_TOKEN_{name.upper()}"] = w.wb_token(name)
    for name in w.allegro:
        pair = w.allegro_pair(name)
        env[f"ALLEGRO_ACCESS_TOKEN_{name.upper()}"] = pair.access_token
        env[f"ALLEGRO_REFRESH_TOKEN_{name.upper()}"] = pair.refresh_token
    return env
