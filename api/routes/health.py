"""Liveness (the process answers) and readiness (database reachable, schema at head)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, database_unavailable, is_database_down
from api.schemas import ErrorDetail, HealthOut, HealthUnavailableOut
from storage.migrate import head_revision, schema_status

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=HealthOut)
async def live() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/ready",
    response_model=HealthOut,
    responses={503: {"model": HealthUnavailableOut, "description": "not ready (see Retry-After)"}},
)
async def ready(request: Request) -> JSONResponse:
    head = head_revision()
    state = request.app.state
    try:
        async with state.db_slots():
            status = await run_in_threadpool(schema_status, state.engine)
    except ApiError:  # every slot busy past the pool timeout: not ready either
        return _unavailable(HealthOut(status="unavailable", database=True, schema_head=head), "the API is busy")
    except Exception as exc:
        if not (isinstance(exc, SQLAlchemyError) or is_database_down(exc)):
            raise
        return _unavailable(HealthOut(status="unavailable", database=False, schema_head=head))
    body = HealthOut(
        status="ok" if status.at_head else "unavailable",
        database=True,
        schema_revision=status.current,
        schema_head=head,
    )
    if not status.at_head:
        return _unavailable(body, "the database schema is not at this version's head; run the migrations")
    return JSONResponse(body.model_dump(), status_code=200)


def _unavailable(body: HealthOut, message: str | None = None) -> JSONResponse:
    error = database_unavailable()
    detail = ErrorDetail(code=error.code, message=message or error.message)
    out = HealthUnavailableOut(**body.model_dump(), error=detail)
    return JSONResponse(out.model_dump(), status_code=503, headers=error.headers)
