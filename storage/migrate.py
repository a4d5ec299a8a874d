"""Schema migrations (Alembic), driven from code so no alembic.ini has to carry a URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from sellerpulse.errors import UserError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaNotAtHead(UserError):
    """The database schema is older (or newer) than this code."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        # '%' would be read as interpolation by configparser.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def schema_status(engine: Engine) -> SchemaStatus:
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current=current, head=head_revision())


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def require_head(engine: Engine) -> None:
    """Refuse to run against a schema this code does not match."""
    status = schema_status(engine)
    if not status.at_head:
        raise SchemaNotAtHead(
            f"database schema is at {status.current or 'nothing (empty database)'}, "
            f"this version needs {status.head}: run `sellerpulse db upgrade`"
        )
