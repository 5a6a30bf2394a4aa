"""The one generation thread of a live session and its bounded queue.

Requests wait in a bounded queue (a full queue refuses at once: a performer hears "busy" instead of a note
minutes late) and run one at a time, in order. Nothing a job raises stops the thread.
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import UserError


@dataclass
class Rendered:
    """What a render job returns: audio still to be written, what it is, the request's snapshot it was rendered
    from (interfaces/requests.py: its synth gives the sample rate) and (hallucinations) its score."""

    wave: np.ndarray = field(repr=False)
    kind: str  # "note" or "hallucination"
    source: Any = field(repr=False)
    score: dict | None = None

    @property
    def sample_rate(self) -> int:
        """The rate of the model that made the audio (not that of whichever model is loaded when it is written)."""
        return int(self.source.synth.sample_rate)


class GenerationWorker:
    """One thread running queued jobs; `finish(rendered, request_id)` turns a `Rendered` into the future's result
    (the session writes the WAV there), any other job result is passed on as it is."""

    def __init__(self, queue_size: int, finish: Callable[[Rendered, object], object]):
        self._finish = finish
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="ganspacesynth-generator", daemon=True)
        self._thread.start()

    @property
    def queue_size(self) -> int:
        return self._queue.maxsize

    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Callable[[], object], request_id=None,
               callback: Callable[[Future], None] | None = None) -> Future:
        """Queue a job; refuses with UserError when the queue is full (never blocks)."""
        fut: Future = Future()
        if callback is not None:
            fut.add_done_callback(callback)
        try:
            self._queue.put_nowait((job, request_id, fut))
        except queue.Full:
            raise UserError(f"busy: {self._queue.maxsize} requests are already waiting; try again") from None
        return fut

    def close(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            job, request_id, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                out = job()
                fut.set_result(self._finish(out, request_id) if isinstance(out, Rendered) else out)
            except UserError as exc:
                fut.set_exception(exc)
            except Exception as exc:  # the server must survive anything a request provokes
                traceback.print_exc(file=sys.stderr)
                fut.set_exception(UserError(f"internal error: {type(exc).__name__}: {exc}"))
            finally:
                del item, job, fut
