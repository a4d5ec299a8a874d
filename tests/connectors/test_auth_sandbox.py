"""Allegro device flow and refresh rotation against the sandbox.

The sandbox clock is frozen; the poller's injected sleep advances it, so an hour of
polling takes a second and the sandbox still judges every poll's timing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors import errors
from connectors.allegro import AllegroAuth, DeviceAuthorization
from tests.connectors.sandbox_harness import Sandbox, make_sandbox

TOKEN_PATH = "/auth/oauth/token"


@pytest.fixture
def sb() -> Sandbox:
    return make_sandbox(scenario="tiny", rate_limits=False)


class SandboxTime:
    """Sleep = advance the sandbox clock (by `factor` x what was asked); run a hook after."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.asked: list[float] = []
        self.factor: Callable[[int], float] = lambda n: 1.0
        self.after: Callable[[float], None] = lambda now: None

    def clock(self) -> float:
        return self.sb.world.now()

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.sb.world.advance(seconds * self.factor(len(self.asked)))
        self.after(self.sb.world.now())


def auth_with(sb: Sandbox, st: SandboxTime) -> AllegroAuth:
    return sb.auth(sleep=st.sleep, clock=st.clock)


async def start(auth: AllegroAuth) -> DeviceAuthorization:
    device = await auth.start_device_flow()
    assert device.interval == 5 and device.expires_in == 3600
    assert len(device.user_code_display.replace(" ", "")) == 9
    return device


async def test_pending_then_approval_yields_a_working_pair(sb: Sandbox) -> None:
    st = SandboxTime(sb)
    async with auth_with(sb, st) as auth, sb.allegro() as api:
        device = await start(auth)
        t0 = st.clock()
        st.after = lambda now: sb.world.approve_device(device.user_code) if now - t0 >= 30 else None
        pair = await auth.poll_device_flow(device)
        stats = await api.event_stats(pair.access_token)
    polls = sb.requests("allegro-auth", TOKEN_PATH)
    assert [r.status for r in polls] == [400] * 5 + [200]  # pending x5 (every 5 s), then the pair
    assert st.asked == [5.0] * 6
    assert pair.expires_in == 43199 and stats.latest_event_id is not None


async def test_slow_down_adds_five_seconds_and_polling_recovers(sb: Sandbox) -> None:
    st = SandboxTime(sb)
    st.factor = lambda n: 0.5 if n == 2 else 1.0  # the second wait wakes early (clock skew)
    async with auth_with(sb, st) as auth:
        device = await start(auth)
        t0 = st.clock()
        st.after = lambda now: sb.world.approve_device(device.user_code) if now - t0 >= 40 else None
        pair = await auth.poll_device_flow(device)
    assert st.asked[:3] == [5.0, 5.0, 10.0]  # slow_down answered by interval + 5
    assert set(st.asked[2:]) == {10.0}
    assert pair.access_token.get_secret_value()


async def test_denied_flow_raises_access_denied(sb: Sandbox) -> None:
    st = SandboxTime(sb)
    async with auth_with(sb, st) as auth:
        device = await start(auth)
        st.after = lambda now: sb.world.deny_device(device.user_code) if len(st.asked) == 2 else None
        with pytest.raises(errors.AccessDenied):
            await auth.poll_device_flow(device)


async def test_unapproved_code_expires_after_expires_in_not_before(sb: Sandbox) -> None:
    st = SandboxTime(sb)
    async with auth_with(sb, st) as auth:
        device = await start(auth)
        t0 = st.clock()
        with pytest.raises(errors.DeviceCodeExpired):
            await auth.poll_device_flow(device)
    assert 3590 <= st.clock() - t0 <= 3600
    assert len(sb.requests("allegro-auth", TOKEN_PATH)) >= 700  # kept polling for the whole hour


async def test_a_used_device_code_is_invalid(sb: Sandbox) -> None:
    st = SandboxTime(sb)
    async with auth_with(sb, st) as auth:
        device = await start(auth)
        sb.world.approve_device(device.user_code)
        await auth.poll_device_flow(device)
        with pytest.raises(errors.InvalidDeviceCode):
            await auth.poll_device_flow(device)


async def test_refresh_rotates_and_the_old_pair_dies(sb: Sandbox) -> None:
    old = sb.allegro_pair()
    async with sb.auth() as auth, sb.allegro() as api:
        new = await auth.refresh(old.refresh_token)
        assert new.refresh_token.get_secret_value() != old.refresh_token
        await api.event_stats(new.access_token)
        with pytest.raises(errors.CredentialsRejected):
            await api.event_stats(old.access_token)
        # Within ~60 s the spent refresh token still answers (a retry after a lost response)...
        again = await auth.refresh(old.refresh_token)
        assert again.access_token == new.access_token
        sb.world.advance(61)
        # ...after that, reuse means someone else rotated it: log in again.
        with pytest.raises(errors.ReauthRequired):
            await auth.refresh(old.refresh_token)
        newer = await auth.refresh(new.refresh_token)
        await api.event_stats(newer.access_token)


async def test_revoked_refresh_token_requires_reauth(sb: Sandbox) -> None:
    pair = sb.allegro_pair()
    sb.world.revoke_allegro("allegro1")
    async with sb.auth() as auth:
        with pytest.raises(errors.ReauthRequired) as info:
            await auth.refresh(pair.refresh_token)
    assert not isinstance(info.value, errors.TransientError)


async def test_refresh_survives_a_lost_response_by_retrying_within_the_grace() -> None:
    sb = make_sandbox(scenario="tiny", rate_limits=False, faults="allegro-auth:reuse=0.5")
    refresh_token = sb.allegro_pair().refresh_token
    async with sb.auth() as auth, sb.allegro() as api:
        for _ in range(4):
            fresh = await auth.refresh(refresh_token)
            await api.event_stats(fresh.access_token)
            refresh_token = fresh.refresh_token.get_secret_value()
    assert any(r.fault == "reuse" for r in sb.requests("allegro-auth", TOKEN_PATH))


async def test_wrong_client_secret_is_credentials_rejected(sb: Sandbox) -> None:
    settings = sb.settings
    from pydantic import SecretStr

    settings.allegro_client_secret = SecretStr("not-the-secret")
    auth = AllegroAuth.from_settings(settings, transport=sb.transport)
    async with auth:
        with pytest.raises(errors.CredentialsRejected):
            await auth.start_device_flow()
