"""A run in a worker thread that reports its stages and can be cancelled, for a page that must stay
responsive while minutes of detection and fitting go on."""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from core.errors import InputError
from core.reconstruction import ReconstructionFormatError

Progress = Callable[[str, float], None]


class RunCancelled(Exception):
    """Raised inside the worker at its next progress report once the run is cancelled."""


class BackgroundRun:
    """``work(progress)`` in a thread of its own.

    The thread is explicitly not a daemon (a thread inherits the flag of the thread that starts it, and
    Gradio's workers are daemons): a process that exits waits for it, which a cancelled run makes
    short (it stops at its next progress report), whereas a daemon thread still inside torch when the
    interpreter finalizes aborts the whole process.
    """

    def __init__(self, work: Callable[[Progress], Any]) -> None:
        self.result: Any = None
        self.error: str | None = None
        """One line for the page: the input error, or "internal error: …" (traceback on stderr)."""
        self.cancelled = False
        self._updates: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(work,), name="studio-run", daemon=False)
        self._thread.start()

    def _progress(self, stage: str, fraction: float) -> None:
        if self._cancel.is_set():
            raise RunCancelled
        self._updates.put((stage, fraction))

    def _main(self, work: Callable[[Progress], Any]) -> None:
        try:
            self.result = work(self._progress)
        except RunCancelled:
            self.cancelled = True
        except (InputError, ReconstructionFormatError) as error:
            self.error = str(error)
        except Exception as error:  # a bug: the server stays up and the page says so
            traceback.print_exc()
            self.error = f"internal error: {error!r}"
        finally:
            self._updates.put(None)

    def updates(self) -> Iterator[tuple[str, float]]:
        """(stage, fraction) reports until the run ends."""
        while (item := self._updates.get()) is not None:
            yield item

    def cancel(self) -> None:
        """Ask the run to stop at its next progress report (nothing happens to a finished run)."""
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
