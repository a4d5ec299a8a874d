"""Exceptions raised by the connectors.

Every failure that leaves a connector is one of these; httpx and JSON errors are
translated at the boundary (``raise X(...) from exc``). No message carries a token,
key, device code or Authorization header: only status codes, paths and the
marketplace's own error codes/descriptions.

    ConnectorError
    ├── TransientError          try again later; never means the credentials are bad
    │   ├── RateLimited         429 (``retry_after`` seconds, when the host said so)
    │   │   └── RetryLater      a 429 asking for longer than a run waits (a WB Base token: hours)
    │   ├── ServerError         5xx
    │   ├── NetworkError        connect/read timeout, reset, truncated or undecodable body
    │   └── RetryBudgetSpent    a stream spent its retry budget on failures: fail it now, try next sync
    ├── AuthError
    │   ├── CredentialsRejected 401: token/key missing, expired, revoked or wrong category
    │   ├── AccessTokenRejected Allegro: 401 on several freshly renewed access tokens in a row;
    │   │                       the login still works (refreshes succeed): fail this run, try later
    │   └── ReauthRequired      the person must log in again (invalid_grant, revoked refresh)
    ├── DeviceFlowError         the device-flow attempt is over; start a new one
    │   ├── AccessDenied        the user refused
    │   ├── DeviceCodeExpired   expires_in passed (or any undocumented 400)
    │   └── InvalidDeviceCode   used or unknown device code
    ├── BadRequest              any other 4xx: our request is wrong; retrying will not help
    │   └── NotFound            404
    └── PayloadError            a 2xx body that is not the shape we expect
        └── PagingStalled       WB statistics: a full page at one lastChangeDate (flag=0 cannot page past it)
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every connector error."""

    def __init__(self, message: str, *, status: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.path = path

    def __str__(self) -> str:
        where = f" [{self.status} {self.path}]" if self.status is not None and self.path else ""
        return f"{self.message}{where}"


class TransientError(ConnectorError):
    """Try again later; says nothing about the credentials."""


class RateLimited(TransientError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RetryLater(RateLimited):
    """A 429 whose retry time (`retry_after`, always set) is longer than a run waits
    (`connectors.http.RetryPolicy.max_rate_limit_wait`): this token's limit on this method is far
    below the usual one (a WB Base token: 1 request per 3 hours on statistics and the order feed).
    Not worth retrying in this run: the caller should not ask again until then."""


class ServerError(TransientError):
    pass


class NetworkError(TransientError):
    pass


class RetryBudgetSpent(TransientError):
    """A stream's total retry time (connectors.http.RetryBudget) is used up. Still transient (the
    next sync tries again, the credentials are not in doubt), but not worth retrying now.
    `url` is the request that kept failing: scheme, host and path only."""

    def __init__(self, message: str, *, url: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.url = url


class AuthError(ConnectorError):
    pass


class CredentialsRejected(AuthError):
    """401. For WB: mark the connection broken. For the Allegro API: renew the access token and
    send the request again (connectors.allegro.tokens does it for a TokenSource)."""


class AccessTokenRejected(AuthError):
    """Allegro answered 401 to several freshly renewed access tokens in a row. Not a lost login
    (only invalid_grant on a refresh says that): the run fails and the next one tries again."""


class ReauthRequired(AuthError):
    """The refresh token is spent or revoked: the person must log in again."""


class DeviceFlowError(ConnectorError):
    pass


class AccessDenied(DeviceFlowError):
    pass


class DeviceCodeExpired(DeviceFlowError):
    pass


class InvalidDeviceCode(DeviceFlowError):
    pass


class BadRequest(ConnectorError):
    def __init__(self, message: str, *, codes: tuple[str, ...] = (), **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.codes = codes


class NotFound(BadRequest):
    pass


class PayloadError(ConnectorError):
    pass


class PagingStalled(PayloadError):
    """WB statistics `flag=0`: a full page whose rows all share the last `lastChangeDate`, so the
    next request would return the same page. Read the days concerned with `flag=1` instead."""

    def __init__(self, message: str, *, at: object = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.at = at  # the lastChangeDate the paging is stuck at (aware UTC)
