"""The backend's HTTP API (FastAPI): push, the change feed with long-poll, who am I, health.

Request models are strict (no `false` for a number, no string for a number, no unknown fields);
every refusal is a 4xx with a `detail` that says why, and each is in the OpenAPI description.
"""


import asyncio
import json
import math
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from dataclasses import dataclass
from typing import Annotated, Any, AsyncIterator, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from opconsole.server.service import Backend, Gone, Unauthorized
from opconsole.sync.ops import OP_NAMES, User

MAX_INT = 2**53 - 1  # exact in every JSON parser
ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
INSTANT = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$",
                               json_schema_extra={"format": "date-time"}),
                    AfterValidator(lambda text: datetime.fromisoformat(text.replace("Z", "+00:00")) and text)]


@dataclass(frozen=True)
class Limits:
    max_ops: int = 500  # operations in one push
    max_bytes: int = 4 * 1024 * 1024  # bytes in one request body
    rate: float = 50.0  # requests per second per token, on average
    burst: int = 200  # requests one token may make at once
    max_wait: float = 30.0  # seconds a long-poll may hold


def whole(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3. `false` and "3" stay wrong."""
    return int(value) if isinstance(value, float) and value.is_integer() else value



class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EventIn(Strict):
    id: ID
    at: INSTANT
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    changes: dict[str, Any]
    note: Annotated[str, Field(max_length=20_000)] | None = None


class OpIn(Strict):
    seq: int = Field(ge=1, le=MAX_INT)
    op_id: ID
    name: Literal[tuple(OP_NAMES)]  # type: ignore[valid-type]
    entity: Literal["ticket", "contact"]
    entity_id: ID
    args: dict[str, Any]
    base: dict[str, Any]
    event: EventIn

    _whole_seq = field_validator("seq", mode="before")(whole)


class PushIn(Strict):
    client_id: ID
    ops: list[OpIn]

    @model_validator(mode="before")
    @classmethod
    def valid_unicode(cls, data: Any) -> Any:
        """Text with lone surrogate escapes ("\\ud800") cannot be stored or sent on to other consoles."""
        try:
            json.dumps(data, ensure_ascii=False, default=repr).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the body holds a lone surrogate escape, which is not Unicode text") from None
        return data


class ChangesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: int = Field(0, ge=0, le=MAX_INT, description="The cursor of the last change already seen.")
    limit: int = Field(1000, ge=1, le=5000)
    wait: float = Field(0, ge=0, le=60, description="Seconds to hold the request until a change arrives.")
    client_id: ID | None = Field(None, description="This console's client id: the answer then says the "
                                                   "last seq of it the server has processed.")
    since_event: ID | None = Field(None, description="The `cursor_event` of the page that gave `since`: if "
                                                     "this server's history differs there, the answer is 410.")


class Result(BaseModel):
    seq: int
    outcome: Literal["applied", "duplicate", "conflict", "rejected"]
    original: Literal["applied", "conflict", "rejected"] | None = Field(
        None, description="For a duplicate: the outcome recorded when the operation was first received.")
    detail: Any = Field(None, description="Why it was rejected, or {field: [server value, this value]} of a conflict.")
    cursor: int | None = Field(None, description="The change-log entry this operation made.")
    doc: dict[str, Any] | None = Field(None, description="The record as the server has it after the operation.")


class PushOut(BaseModel):
    results: list[Result]
    last_seq: int = Field(description="The highest seq of this client the server has processed.")
    gap: int | None = Field(None, description="The seq the server expected when the batch skipped some.")


class ChangesOut(BaseModel):
    changes: list[dict[str, Any]]
    cursor: int
    cursor_event: str | None = Field(description="Send it back as `since_event` with this cursor.")
    has_more: bool
    client_last_seq: int | None


class Me(BaseModel):
    login: str
    role: str
    groups: list[str]


class Problem(BaseModel):
    detail: Any


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The body is not valid JSON text.",
        401: "No token, or an unknown, expired or revoked one.",
        410: "The cursor is beyond the server's history (the server was restored from an older backup).",
        413: "The request body or the batch is larger than the server accepts.",
        422: "The request does not match the schema: wrong types, unknown fields, malformed JSON.",
        429: "Too many requests for this token; retry after the seconds in Retry-After.",
        503: "The database is busy or down; retry after the seconds in Retry-After.",
    }
    return {code: {"model": Problem, "description": described[code]} for code in codes}


class Notifier:
    """Wakes long-polls when a push commits. Pushes run in worker threads, long-polls on the loop."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event = asyncio.Event()

    def notify(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.event.set()
        self.event = asyncio.Event()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


class RateLimiter:
    """A token bucket per API token."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """0 if a request may go now (and counts it), else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            tokens, then = self.buckets.get(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class BodyLimit:
    """Refuses request bodies over `max_bytes` (413), whether or not they declare their length."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(self.max_bytes)(scope, receive, send)
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await too_large(self.max_bytes)(scope, receive, send)


class BodyTooLarge(Exception):
    pass


def too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse({"detail": f"the request body is over {max_bytes} bytes"}, status_code=413)


def json_response(content: dict[str, Any]) -> Response:
    """The answer as JSON, without validating it against its model again: it was built to match."""
    return Response(json.dumps(content, ensure_ascii=False), media_type="application/json")


def database_errors() -> list[type[Exception]]:
    """Errors of a busy or unreachable database: transient, so 503 and the client retries."""
    errors: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:
        return errors
    return errors + [psycopg.OperationalError]


def create_app(backend: Backend, limits: Limits = Limits()) -> FastAPI:
    notifier = Notifier()
    limiter = RateLimiter(limits.rate, limits.burst)
    bearer = HTTPBearer(auto_error=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        notifier.loop = asyncio.get_running_loop()
        yield

    app = FastAPI(title="opconsole server", version="1", lifespan=lifespan,
                  description="Offline-first sync for opconsole consoles (SYNC.md).")

    def user(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
        token = credentials.credentials if credentials else None
        try:
            found = backend.authenticate(token)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        wait = limiter.retry_after(token or "")
        if wait:
            raise HTTPException(429, f"over {limits.rate:g} requests a second for this token",
                                headers={"Retry-After": str(math.ceil(wait))})
        return found

    @app.exception_handler(Gone)
    async def gone(request: Request, exc: Gone) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=410)

    for busy in database_errors():
        @app.exception_handler(busy)
        async def unavailable(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": f"the database is unavailable: {exc}"}, status_code=503,
                                headers={"Retry-After": "1"})

    @app.get("/healthz", responses=problems(503))
    def healthz() -> dict[str, Any]:
        try:
            cursor = backend.latest_cursor()
        except Exception as exc:  # any failure of the database is what this endpoint reports
            raise HTTPException(503, f"database unavailable: {exc}", headers={"Retry-After": "5"}) from None
        return {"status": "ok", "database": backend.db.kind, "cursor": cursor}

    @app.get("/v1/me", responses=problems(401, 429))
    def me(who: User = Depends(user)) -> Me:
        return Me(login=who.login, role=who.role.value, groups=list(who.groups))

    @app.post("/v1/push", responses=problems(400, 401, 413, 429, 503))
    def push(body: PushIn, who: User = Depends(user)) -> PushOut:
        """Process operations in seq order; each answer says applied, duplicate, conflict or rejected."""
        if len(body.ops) > limits.max_ops:
            raise HTTPException(413, f"{len(body.ops)} operations in one push; at most {limits.max_ops} are accepted")
        ops = [op.model_dump() for op in body.ops]
        result = backend.push(who, body.client_id, ops)
        if result.results:
            notifier.notify()
        return json_response({"results": result.results, "last_seq": result.last_seq, "gap": result.gap})

    @app.get("/v1/changes", responses=problems(401, 410, 429, 503))
    async def changes(who: Annotated[User, Depends(user)], query: Annotated[ChangesQuery, Query()]) -> ChangesOut:
        """Changes after cursor `since` that this user may see; with `wait`, held until one arrives."""
        since, since_event, wait = query.since, query.since_event, min(query.wait, limits.max_wait)
        deadline = time.monotonic() + wait
        while True:
            waiting = notifier.event
            page = await run_in_threadpool(backend.changes, who, since, query.limit, query.client_id, since_event)
            left = deadline - time.monotonic()
            if page.changes or left <= 0:
                # the entries go out as the change log stores them, without a parse and a re-serialisation
                return Response(f'{{"changes":[{",".join(page.changes)}],"cursor":{page.cursor},'
                                f'"cursor_event":{json.dumps(page.cursor_event)},'
                                f'"has_more":{json.dumps(page.has_more)},'
                                f'"client_last_seq":{json.dumps(page.client_last_seq)}}}', media_type="application/json")
            since, since_event = page.cursor, page.cursor_event
            await notifier.wait(waiting, left)

    app.add_middleware(BodyLimit, max_bytes=limits.max_bytes)
    return app
