"""Kubernetes-shaped API errors, shared by the store, the API server and the client."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class StateDirError(Exception):
    """The state directory cannot be used safely (not the user's own, not a directory)."""


class ManifestError(Exception):
    """A manifest cannot be applied; the message names file, document and field."""


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_status(cls, code: int, body: Any) -> ApiError:
        if isinstance(body, dict) and body.get("kind") == "Status":
            return cls(code, body.get("message", ""), body.get("reason"), body.get("details"))
        return cls(code, str(body)[:500])


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, f'{qualified} "{name}" not found', details={"name": name, "group": group, "kind": resource})


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        409,
        f'{qualified} "{name}" already exists',
        "AlreadyExists",
        details={"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, name: str, group: str, field_errors: list[Any]) -> ApiError:
    causes = [{"reason": e.cause_type, "message": e.message, "field": e.field} for e in field_errors]
    text = "; ".join(str(e) for e in field_errors)
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{qualified} "{name}" is invalid: [{text}]'
        if len(field_errors) > 1
        else f'{qualified} "{name}" is invalid: {text}',
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )
