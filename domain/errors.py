"""Refusals the domain and the service can give, each with a stable `code`.

The web layer maps these onto the one JSON error shape; `status` is the HTTP status
a client sees. A refused command appends nothing.
"""

from __future__ import annotations

from typing import Any


class CasetrailError(Exception):
    """Base of every refusal: a stable machine `code` and a message a person reads."""

    status = 422
    code = "rule_violation"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class RuleViolation(CasetrailError):
    """A domain rule of DOMAIN.md forbids this event now (422)."""

    status = 422


class InvalidData(CasetrailError):
    """The event's data fails its schema; `details` names each field (422)."""

    status = 422
    code = "invalid_data"


class UnknownEventType(CasetrailError):
    status = 422
    code = "unknown_event_type"


class NotPermitted(CasetrailError):
    """The actor's role or jurisdiction does not allow this (403)."""

    status = 403
    code = "forbidden"


class CaseNotFound(CasetrailError):
    status = 404
    code = "case_not_found"


class VersionConflict(CasetrailError):
    """`expected_version` is behind the stream; `details.current_version` says where it is (409)."""

    status = 409
    code = "version_conflict"


class IdempotencyKeyReused(CasetrailError):
    """The same idempotency key came with another request body (422)."""

    status = 422
    code = "idempotency_key_reused"


class UnknownUnit(CasetrailError):
    status = 422
    code = "unknown_unit"


class ConfigError(CasetrailError):
    """Settings that cannot work, one line per problem: `CASETRAIL_X: what was wrong;
    expected ...` (the command line prints each as `error (bad_config): ...`, exit 2)."""

    code = "bad_config"

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
