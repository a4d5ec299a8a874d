"""Liveness (the process answers) and readiness (database reachable, schema at head)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.schemas import HealthOut
from storage.migrate import head_revision, schema_status

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=HealthOut)
def live() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/ready", response_model=HealthOut, responses={503: {"model": HealthOut, "description": "not ready"}})
def ready(request: Request) -> JSONResponse:
    head = head_revision()
    try:
        status = schema_status(request.app.state.engine)
    except SQLAlchemyError:
        body = HealthOut(status="unavailable", database=False, schema_head=head)
        return JSONResponse(body.model_dump(), status_code=503)
    ok = status.at_head
    body = HealthOut(
        status="ok" if ok else "unavailable", database=True, schema_revision=status.current, schema_head=head
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
