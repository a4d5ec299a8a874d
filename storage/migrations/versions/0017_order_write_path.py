"""orders and order_lines: fewer entries to maintain per stored order (the backfill's write path)

Measured on 200,000 WB order rows COPYed into the schema (PostgreSQL CPU of the COPY alone):
the orders row with its five indexes and foreign key took 4.3 s, its order line 1.6 s. Of that:

- `ix_orders_shop_basket` (0.9 s, a random-order B-tree: every gNumber lands on its own leaf)
  served no query: nothing filters or joins orders by basket. Dropped.
- `ix_orders_shop_status_bought` (0.24 s) served only the orders list filtered by status, which
  reads `order_statuses` (0016), whose status is computed: it reads every order of the shop
  either way. Dropped.
- The foreign key of `order_lines.order_id` (0.9 s, and a tuple-lock WAL record on the order
  for every line inserted: 373 MB of WAL against 63 MB without, for 200,000 lines) checked what
  our only writer of lines guarantees: a line is COPYed with the id of the order it was written
  with, in the same transaction (storage.merge). What the key also did, deleting an order's
  lines with the order (and so with its shop), a statement-level trigger does now, once per
  DELETE of orders rather than once per inserted line.
- `orders.raw` becomes json (0.55 s): stored as the text we send instead of rebuilt into jsonb's
  tree on every insert, and ~10% less WAL. Its reads are rare (`raw->>'...'`, the API); the merge
  compares payloads as jsonb, so a document with its keys reordered is still unchanged.

Chained after 0016_order_statuses (the head when this was written): its view reads `orders.raw`,
so the type change drops and recreates it, as it was.

Revision ID: 0017_order_write_path
Revises: 0016_order_statuses
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_order_write_path"
down_revision = "0016_order_statuses"
branch_labels = None
depends_on = None

CASCADE_FUNCTION = """
CREATE FUNCTION order_lines_follow_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_lines l USING deleted_orders d WHERE l.order_id = d.id;
    RETURN NULL;
END
$$
"""
CASCADE_TRIGGER = """
CREATE TRIGGER order_lines_follow_orders AFTER DELETE ON orders
REFERENCING OLD TABLE AS deleted_orders
FOR EACH STATEMENT EXECUTE FUNCTION order_lines_follow_orders()
"""


def _retype_raw(to: str) -> None:
    """A column a view reads cannot change type: the view goes and comes back as it was."""
    view = op.get_bind().scalar(sa.text("SELECT pg_get_viewdef(to_regclass('order_statuses'))"))
    if view:
        op.execute("DROP VIEW order_statuses")
    op.execute(f"ALTER TABLE orders ALTER COLUMN raw TYPE {to} USING raw::{to}")
    if view:
        op.execute(f"CREATE VIEW order_statuses AS {view}")


def upgrade() -> None:
    op.drop_index("ix_orders_shop_basket", table_name="orders")
    op.drop_index("ix_orders_shop_status_bought", table_name="orders")
    op.drop_constraint("fk_order_lines_order_id_orders", "order_lines", type_="foreignkey")
    _retype_raw("json")
    # Lines whose order is gone cannot exist with the key in place; none are left behind here.
    op.execute(CASCADE_FUNCTION)
    op.execute(CASCADE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER order_lines_follow_orders ON orders")
    op.execute("DROP FUNCTION order_lines_follow_orders()")
    _retype_raw("jsonb")
    op.execute("DELETE FROM order_lines l WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = l.order_id)")
    op.create_foreign_key(
        "fk_order_lines_order_id_orders", "order_lines", "orders", ["order_id"], ["id"], ondelete="CASCADE"
    )
    op.create_index("ix_orders_shop_status_bought", "orders", ["shop_id", "status", "bought_at"], unique=False)
    op.create_index("ix_orders_shop_basket", "orders", ["shop_id", "basket_id"], unique=False)
