"""Connectors: the only code that talks to the marketplaces (Allegro, Wildberries).

No database and no Prefect here: callers pass credentials and cursors in and get typed
pages and new cursors out. See ``connectors.errors`` for the exception tree,
``connectors.ratelimit`` for the shared token buckets and ``connectors.http`` for the
retry policy.
"""
