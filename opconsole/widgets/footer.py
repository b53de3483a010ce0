"""The key footer, without the leak of Textual 8.2.8's.

Textual's Footer data-binds every FooterKey it composes to its own `compact` reactive, and the
watcher entries of keys it recomposes away are only dropped when `compact` changes, which it never
does here: every recompose (each time the enabled actions change) kept ~17 dead widgets alive, and
the full garbage collections over them grew to half a second. Dead entries are dropped here after
each recompose.
"""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    async def recompose(self) -> None:
        await super().recompose()
        for entries in getattr(self, "__watchers", {}).values():
            entries[:] = [(node, callback) for node, callback in entries if node.is_attached]
