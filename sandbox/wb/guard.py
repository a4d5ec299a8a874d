"""WB request guard: token (401 shapes), category bit, token bucket."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sandbox.ratelimit import Decision, wb_owner, wb_rate
from sandbox.responses import wb_429, wb_problem
from sandbox.wb import tokens as wbtokens
from sandbox.world import WbShop, World


class Guarded:
    def __init__(self, shop: WbShop, decision: Decision, kind: str = "personal") -> None:
        self.shop = shop
        self.decision = decision
        self.kind = kind  # the token's type: its buckets and rates

    def headers(self) -> dict[str, str]:
        return {"X-Ratelimit-Remaining": str(self.decision.remaining)}


def wb_guard(world: World, request: Request, category: str, bucket: str) -> Guarded | Response:
    now = world.now()
    origin = f"s2s-api-auth-{category}"
    raw = request.headers.get("authorization", "").strip()
    if raw.lower().startswith("bearer "):  # unconfirmed on WB; accepted
        raw = raw[7:].strip()
    if not raw:
        return wb_problem(401, "unauthorized", "empty Authorization header", now, origin)
    try:
        claims = wbtokens.verify(world.wb_key, raw)
    except wbtokens.TokenError as exc:
        return wb_problem(401, "unauthorized", str(exc), now, origin)
    ctx = request.scope.get("sandbox_ctx", {})
    ctx["token_id"] = claims.token_id
    shop = world.wb_shop_for_seller(claims.seller_id)
    if shop is None:
        return wb_problem(401, "unauthorized", "token is malformed: unknown seller", now, origin)
    ctx["shop"] = shop.spec.name
    if claims.exp <= now:
        return wb_problem(401, "unauthorized", "token is expired", now, origin)
    if not claims.allows(category):
        return wb_problem(401, "unauthorized", "token scope not allowed", now, origin)
    rate = wb_rate(bucket, claims.kind)
    decision = world.limiter.take(wb_owner(shop.spec.name, claims.kind), bucket, rate, now)
    if not decision.allowed:
        return wb_429(decision, now, origin)
    return Guarded(shop, decision, claims.kind)


def charge_4xx(world: World, g: Guarded, bucket: str) -> None:
    """WB marketplace: each 4xx counts as 10 requests (1 already taken)."""
    rate = wb_rate(bucket, g.kind)
    world.limiter.charge(wb_owner(g.shop.spec.name, g.kind), bucket, rate, world.now(), rate.penalty_4xx - 1)
