"""The opconsole backend: one queue shared by many consoles (installed with the `server` extra)."""
