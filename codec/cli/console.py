"""What ``lic`` says on stderr while it works: message lines, and progress bars on a terminal only.

A redirected stderr gets the messages and nothing else.  The bars follow the ``progress(done,
total)`` callback of ``codec.Codec`` (see its doc), so the command knows the work only as
units counted by the codec.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager

__all__ = ["Console", "coding_bar"]


class _NoBar:
    """A progress bar that is not drawn."""

    def update(self, n: int = 1) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        print(line, file=file or sys.stderr)

    def close(self) -> None:
        pass


class Console:
    """stderr lines that keep out of the way of a progress bar, and the bars themselves,
    which are drawn on a terminal only."""

    def __init__(self):
        self.bar = None

    @staticmethod
    def terminal() -> bool:
        return sys.stderr.isatty()

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    @contextmanager
    def progress(self, disable: bool = False, **options):
        if disable:  # tqdm costs 40 ms to import: not for a bar that is never drawn
            bar = _NoBar()
        else:
            from tqdm import tqdm

            bar = tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, **options)
        outer, self.bar = self.bar, bar
        try:
            yield bar
        finally:
            self.bar = outer
            bar.close()


@contextmanager
def coding_bar(console: Console, desc: str, unit: str, known_total: bool = True, least: int = 1,
               delay: float = 0.0):
    """Yields the ``progress(done, total)`` callback of one image's coding (None off a terminal):
    a bar over its units of work, drawn once a pass reports ``least`` units or more in all.

    ``known_total`` False (a target search codes several candidates, each a pass of its own)
    shows a bare count of the units, all passes together.  ``delay``: seconds before the bar
    appears, so that quick work never flickers one up."""
    if not console.terminal():
        yield None
        return
    with ExitStack() as bars:
        bar, counted = None, 0

        def progress(done: int, total: int) -> None:
            nonlocal bar, counted
            if bar is None:
                if total < least:  # one piece: quick enough without a bar
                    return
                bar = bars.enter_context(console.progress(total=total if known_total else None, desc=desc,
                                                          unit=unit, delay=delay))
            if done == 0:  # a new pass: a search's next candidate
                counted = 0
            bar.update(done - counted)
            counted = done

        yield progress
