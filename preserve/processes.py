"""Worker processes for CPU-bound work (description, deep fixity), beside the threads.

They are started with ``spawn``, never ``fork``: the parent may be a server with
threads holding locks. Each watches its parent and leaves when the parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes that end with the process that made them."""
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    """In a worker: leave when the parent is gone (killed, it cannot shut the pool down).

    A pool worker holds both ends of its task pipe, so it would never see the
    parent's end close; it watches its parent's process ID instead.

    Ctrl-C at a terminal goes to every process of the command: a worker leaves at once
    and quietly (each printed a KeyboardInterrupt traceback), and the parent stops.
    """
    signal.signal(signal.SIGINT, lambda _signal, _frame: os._exit(130))
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
