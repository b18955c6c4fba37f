"""Per-token rate limits (flask-limiter): `CASETRAIL_RATE_LIMIT` requests per bearer
token (e.g. `600/minute`; empty: none), counted in the Redis every web process shares,
so the limit holds across processes. Over it: 429 `rate_limited` with `Retry-After`.

Each read of personal data is a permanent access event; the limit keeps one client from
flooding the log. Requests without a token count per client address. The counters' keys
are hashes of the tokens, never the tokens.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded

from casetrail.config import Settings
from web.auth import PUBLIC_ENDPOINTS
from web.errors import error_response
from workers.redis_conn import redis_url

log = logging.getLogger("casetrail.web")
EXTENSION = "casetrail.limiter"


def caller_key() -> str:
    """The bearer token's hash, else the client's address."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    return "address:" + (request.remote_addr or "unknown")


def storage_uri(settings: Settings) -> str:
    """The shared Redis as flask-limiter (the `limits` package) names it."""
    url = redis_url(settings)
    return "redis+" + url if url.startswith("unix://") else url


def install(app: Flask, settings: Settings, *, shared: bool) -> Limiter | None:
    """With `shared`, counts in Redis (the service's processes); else in this process
    (an app handed its casetrail: tests, benchmarks)."""
    if not settings.rate_limit:
        return None
    limiter = Limiter(
        caller_key,
        app=app,
        default_limits=[settings.rate_limit],
        default_limits_exempt_when=lambda: request.endpoint in PUBLIC_ENDPOINTS,
        storage_uri=storage_uri(settings) if shared else "memory://",
        # A Redis that does not answer must not stop the service: requests pass, unlimited.
        swallow_errors=True,
        key_prefix=f"{settings.queue_name}:limits",
    )
    app.extensions[EXTENSION] = limiter

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        reset_at = current.reset_at if current is not None else time.time() + 1
        retry_after = max(1, int(reset_at - time.time()))
        response = error_response(
            429,
            "rate_limited",
            f"Too many requests with this token (at most {error.limit.limit}); "
            f"retry in {retry_after} s.",
            {"retry_after": retry_after, "limit": str(error.limit.limit)},
        )
        response.headers["Retry-After"] = str(retry_after)
        return response

    return limiter
