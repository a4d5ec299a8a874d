"""Notifications: pure logic, no Prefect, no database.

- `drafts`: the shared types (`Draft`, `ShopContext`, `ProductInfo`) and the dedupe-key scheme.
- `rules`: one function per stream, from the changes of one write batch to drafts.
- `delivery`: whether a person wants a stored notification, given their settings now.
- `render`: stored payload -> Telegram HTML text in ru, pl or en.
- `grouping`: which notifications become one message, and how far the delivery cursor may move.

`storage.outbox` stores drafts and delivers them; the sync calls the rules in the same
transaction as its writes.
"""
