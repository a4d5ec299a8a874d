"""Per-person notification settings: created with the schema's defaults when a person registers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from storage.models import NotificationSettings

# What a person may change (everything but the key and the timestamp).
EDITABLE = tuple(c.name for c in NotificationSettings.__table__.columns if c.name not in {"person_id", "updated_at"})


def ensure_settings(session: Session, *, person_id: int) -> NotificationSettings:
    """The person's settings, inserted with the defaults if missing (safe against a concurrent insert)."""
    session.execute(insert(NotificationSettings).values(person_id=person_id).on_conflict_do_nothing())
    return session.scalars(select(NotificationSettings).where(NotificationSettings.person_id == person_id)).one()


def get_settings(session: Session, *, person_id: int) -> NotificationSettings:
    return ensure_settings(session, person_id=person_id)


def update_settings(session: Session, *, person_id: int, values: dict[str, Any]) -> NotificationSettings:
    """Apply `values` (already validated against the CHECK ranges); unknown keys are refused."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    row = ensure_settings(session, person_id=person_id)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = datetime.now(UTC)
    session.flush()
    return row
