"""The error answers of the API, documented in OpenAPI as they are sent: `{"detail": ...}` with a status.

Every route under `/api` may meet the guard in front of it (401 wrong key, 411/413 body, 429 too many
wrong keys) and the database being away (503); routes add their own (403 role or scope, 404, 409)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

WHY = {
    401: "missing or unknown API key",
    403: "the key's role or unit may not do this",
    404: "no such case, evidence, action, device, rule version, window or capture in the caller's scope",
    409: "the action does not apply in the case's present state",
    411: "a request body without a length",
    413: "request body over limits.max_body_bytes (sent unread)",
    415: "a file of a type the route does not read (see its request body types)",
    422: "the body is invalid: `detail` lists the reasons (a field, a sheet's row, the rule checker's lines)",
    429: "too many wrong keys from this client, or an edge key over its intake rate (see Retry-After)",
    503: "the database is out of reach; nothing was taken, retry after Retry-After",
}


class Problem(BaseModel):
    """What every refusal carries; a refusal of a case action also names its reason by `code` with `params`,
    so the board says it in the user's language."""

    detail: str | list[Any]
    code: str | None = None
    params: dict[str, Any] | None = None


class Refused(HTTPException):
    """An HTTP refusal with a reason code (see `Problem`)."""

    def __init__(self, http_status: int, message: str, code: str, /, **params: Any) -> None:
        super().__init__(http_status, message)
        self.code = code
        self.params = params


async def invalid_answer(request: Request, exc: Exception) -> JSONResponse:
    """422 for a request that does not fit its schema: where and why, never the value sent (no reflection of
    what a client or an attacker sent, and no password from a sign-in body echoed back)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def unencodable_answer(request: Request, exc: Exception) -> JSONResponse:
    """422 for text that is not Unicode a database can keep (an unpaired surrogate such as `\\ud800` in a JSON
    string): refused where it failed to be written, its transaction rolled back, the text not echoed."""
    return JSONResponse({"detail": [{"type": "unicode", "msg": "text with an unpaired surrogate (not valid "
                                     "Unicode) is not accepted"}]}, status_code=422)


async def refused_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return JSONResponse({"detail": exc.detail, "code": exc.code, "params": exc.params}, status_code=exc.status_code)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these status codes."""
    return {c: {"model": Problem, "description": WHY[c]} for c in codes}


GUARD = (401, 429, 503)
"""What any API route may answer before its handler runs."""
BODY = (411, 413)
