"""Set-based upsert: COPY a batch into a temporary table, then two statements for the whole batch.

For one shop and one batch:
1. lock the existing rows of the batch's keys and read their tracked columns (the "old" side
   of a RowChange);
2. one `INSERT ... ON CONFLICT DO UPDATE` (of one staged row per natural key, the newest by
   `source_updated_at`) that skips rows whose payload did not change and refuses rows older than
   what is stored (stale writes are counted, never applied), returning what it wrote.

The lock comes first because PostgreSQL cannot lock and upsert the same rows in one
statement; with it, two overlapping writers of the same rows serialise, and the second sees
the first one's values as "old", so a change is reported once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.orm import Session

from storage.changes import RowChange

_stage_counter = itertools.count()
# The merge also stamps our own `updated_at` on these tables.
_TABLES_WITH_UPDATED_AT = frozenset({"orders", "wb_sales", "reviews", "products"})


@dataclass(frozen=True)
class MergeSpec:
    table: str
    key: str
    # Columns written from the batch (besides shop_id); `raw` must be one of them when present.
    columns: tuple[str, ...]
    # Columns returned as the old side of a change (what the notification rules look at).
    tracked: tuple[str, ...]
    # Column that orders versions of a row; None: last write wins.
    version: str | None = "source_updated_at"
    # Column compared to decide "unchanged" (the payload).
    payload: str = "raw"
    json_columns: frozenset[str] = frozenset({"raw"})


@dataclass
class MergeResult:
    changes: list[RowChange] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # key -> row id, for written rows
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0

    def add(self, other: MergeResult) -> None:
        self.changes.extend(other.changes)
        self.ids.update(other.ids)
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str).decode()


def copy_rows(session: Session, *, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY rows into `table` over the session's own connection (same transaction)."""
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def stage(session: Session, *, spec: MergeSpec, rows: Sequence[dict[str, Any]]) -> str:
    """A temporary table (dropped at commit) holding the batch, typed like the target."""
    name = f"_stage_{spec.table}_{next(_stage_counter)}"
    cols = (spec.key, *spec.columns)
    session.connection().exec_driver_sql(
        f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {', '.join(cols)} FROM {spec.table} WITH NO DATA"
    )
    json_cols = spec.json_columns

    def values(row: dict[str, Any]) -> list[Any]:
        return [_json(row.get(c)) if c in json_cols else row.get(c) for c in cols]

    copy_rows(session, table=name, columns=cols, rows=(values(r) for r in rows))
    return name


def _old_sql(spec: MergeSpec, stage_table: str) -> str:
    # Locks the existing rows first: a concurrent writer of the same rows waits here and then
    # reads the values the other one committed, so both never report the same change.
    tracked = "".join(f", t.{c}" for c in spec.tracked)
    return f"""
SELECT t.{spec.key}{tracked}
FROM {spec.table} t JOIN {stage_table} s ON t.{spec.key} = s.{spec.key}
WHERE t.shop_id = %(shop_id)s
FOR UPDATE OF t
"""


def _merge_sql(spec: MergeSpec, stage_table: str) -> str:
    key, cols, t = spec.key, spec.columns, spec.table
    version_guard = (
        f"({t}.{spec.version} IS NULL OR EXCLUDED.{spec.version} IS NULL "
        f"OR EXCLUDED.{spec.version} >= {t}.{spec.version}) AND "
        if spec.version
        else ""
    )
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
    touch = "updated_at = now(), " if t in _TABLES_WITH_UPDATED_AT else ""
    return f"""
INSERT INTO {t} (shop_id, {key}, {", ".join(cols)})
SELECT %(shop_id)s, {key}, {", ".join(cols)} FROM {stage_table}
ON CONFLICT (shop_id, {key}) DO UPDATE SET {touch}{sets}
WHERE {version_guard}{t}.{spec.payload} IS DISTINCT FROM EXCLUDED.{spec.payload}
RETURNING {key}, id, (xmax = 0)
"""


def _newest_by_key(spec: MergeSpec, rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per key: the newest version (ties: the first seen)."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen = newest.get(row[spec.key])
        if seen is None or (spec.version and _newer(row.get(spec.version), seen.get(spec.version))):
            newest[row[spec.key]] = row
    return newest


def _newer(candidate: Any, current: Any) -> bool:
    if candidate is None:
        return False
    return current is None or candidate > current


def merge(session: Session, *, spec: MergeSpec, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    """Upsert `rows` (dicts by column name) for one shop; see the module docstring."""
    result = MergeResult()
    if not rows:
        return result
    # One row per key (the newest) is staged: ON CONFLICT cannot touch a row twice in one statement.
    by_key = _newest_by_key(spec, rows)
    stage_table = stage(session, spec=spec, rows=list(by_key.values()))
    cursor = session.connection().connection.driver_connection.cursor()
    params = {"shop_id": shop_id}
    old = {
        row[0]: dict(zip(spec.tracked, row[1:], strict=True))
        for row in cursor.execute(_old_sql(spec, stage_table), params)
    }
    written = {
        key: (row_id, inserted) for key, row_id, inserted in cursor.execute(_merge_sql(spec, stage_table), params)
    }
    for key, new in by_key.items():
        if key in written:
            row_id, inserted = written[key]
            result.changes.append(RowChange(key=key, old=old.get(key), new=new))
            result.ids[key] = row_id
            result.inserted += inserted
            result.updated += not inserted
        elif key in old and _newer(old[key].get(spec.version or ""), new.get(spec.version or "")):
            result.stale += 1
        else:
            result.unchanged += 1
    cursor.execute(f"DROP TABLE {stage_table}")
    return result
