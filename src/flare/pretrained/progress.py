"""Progress display for downloads and conversions (on stderr, so stdout stays clean)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


class Reporter:
    """Shows one line per step with its duration, and remembers the durations."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.timings: dict[str, float] = {}
        self._status = None  # the spinner of the running step, if any
        self._status_text = ""

    @property
    def interactive(self) -> bool:
        """True when a person watches a terminal (then pip may draw its own bars)."""
        return self.enabled and self.console.is_terminal and sys.stdout.isatty()

    def info(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    @contextlib.contextmanager
    def step(self, text: str, spinner: bool = True) -> Iterator[None]:
        """A spinner while the block runs, then a tick with the time it took.

        `spinner=False` for blocks that draw on the terminal themselves (a subprocess
        writing there directly would garble the spinner)."""
        start = time.perf_counter()
        if self.enabled and not spinner:
            self.info(text + " ...")
        if self.enabled and spinner:
            with self.console.status(text + " ...") as status:
                self._status, self._status_text = status, text
                try:
                    yield
                finally:
                    self._status = None
        else:
            yield
        seconds = time.perf_counter() - start
        self.timings[text] = round(seconds, 2)
        self.info(f"[green]\u2713[/] {text} [dim]({seconds:.1f} s)[/]")

    def track(self, items: Iterable[T], total: int, text: str) -> Iterator[T]:
        """Count `items` off on the running step's spinner line, or on a bar of its own.

        (A second live display inside a spinner is an error in older rich versions.)"""
        if not self.enabled:
            yield from items
            return
        if self._status is not None:
            for done, item in enumerate(items, start=1):
                yield item
                self._status.update(f"{self._status_text} ... {text} {done}/{total}")
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(text, total=total)
            for item in items:
                yield item
                bar.advance(task)
