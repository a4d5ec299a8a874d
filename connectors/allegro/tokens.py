"""Where the Allegro client gets an account's access token, and what it does on a 401.

An access token can die in the middle of a sync for reasons that are not "log in again": its
12 h ran out during a long read, or another process (a second worker, a second install, a
reconnect) rotated the pair. So a call made with a :class:`TokenSource` that answers 401 asks
the source to `renew` the rejected token and sends the same request again, as often as it
happens; only when freshly renewed tokens are refused :data:`MAX_RENEWALS` times in a row does
the call end with :class:`~connectors.errors.AccessTokenRejected`. A plain token (``str`` or
``SecretStr``) has nobody to renew it: its 401 is
:class:`~connectors.errors.CredentialsRejected`.

The connector knows nothing about where tokens are kept: the caller's source does (the sync's
reads and renews the shop's pair in the database, under the shop's refresh lock).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

from pydantic import SecretStr

from connectors import errors

T = TypeVar("T")

# 401s on renewed tokens, in a row, that end one request (the first 401 is on whatever token the
# source had: it may just have expired).
MAX_RENEWALS = 3


@runtime_checkable
class TokenSource(Protocol):
    async def current(self) -> str:
        """The access token to use now."""
        ...

    async def renew(self, rejected: str) -> str:
        """A token other than `rejected` (which the API just refused): one another request or
        process already obtained, or a new one. Raises ReauthRequired when the login is gone."""
        ...


Token = str | SecretStr | TokenSource


def _plain(token: str | SecretStr) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


async def with_token(token: Token, send: Callable[[str], Awaitable[T]]) -> T:
    """`send(access_token)`; on a 401 with a source, renew the token and send the same request again."""
    if not isinstance(token, TokenSource):
        return await send(_plain(token))
    value = await token.current()
    renewals = 0
    while True:
        try:
            return await send(value)
        except errors.CredentialsRejected as exc:
            if renewals >= MAX_RENEWALS:
                raise errors.AccessTokenRejected(
                    f"the Allegro API refused {renewals} freshly renewed access tokens in a row",
                    status=exc.status,
                    path=exc.path,
                ) from exc
            renewals += 1
            value = await token.renew(value)
