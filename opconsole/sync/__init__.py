"""Offline-first sync with the opconsole server (SYNC.md): the outbox, the change feed, the client."""
