"""The footer must not keep the keys it recomposes away alive (Textual 8.2.8 does)."""

from __future__ import annotations

import gc

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets._footer import FooterKey

from opconsole.widgets.footer import Footer


class Toggling(App[None]):
    BINDINGS = [Binding("x", "noop", "Something"), Binding("y", "noop", "Other")]
    enabled = True

    def compose(self) -> ComposeResult:
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True if self.enabled else None

    def action_noop(self) -> None:
        pass


async def test_recomposing_the_footer_frees_the_old_keys():
    app = Toggling()
    async with app.run_test() as pilot:
        for _ in range(30):
            app.enabled = not app.enabled
            app.refresh_bindings()
            await pilot.pause()
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, FooterKey)]
        shown = list(app.query(FooterKey))
        assert len(shown) >= 2
        assert len(alive) <= 2 * len(shown), f"{len(alive)} FooterKeys alive, {len(shown)} on screen"
