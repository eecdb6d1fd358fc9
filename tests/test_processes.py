"""Worker processes start light: what they import before their first task."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from preserve.capture.crawl import description_document
from preserve.index import indexed_part
from preserve.warc_digests import read_copy

# Worth half a second of each worker's start, and needed by none of them.
HEAVY = ("sqlalchemy", "preserve.cli", "preserve.catalog", "preserve.jobs")


def imported_by(*modules: str) -> set[str]:
    """The heavy modules a fresh interpreter holds after importing ``modules``."""
    code = (f"import importlib, sys\nfor name in {list(modules)!r}: importlib.import_module(name)\n"
            f"print(' '.join(name for name in {HEAVY!r} if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return set(done.stdout.split())


def test_the_command_script_imports_the_command_only_when_it_runs() -> None:
    # A spawned worker re-imports the script that started its parent: pip's script
    # imports the entry point's module at its top, outside its __main__ guard.
    (command,) = entry_points(group="console_scripts", name="preserve")
    assert command.module == "preserve.__main__"
    assert imported_by(command.module) == set()


def test_workers_import_only_what_their_task_needs() -> None:
    # A task is sent as a reference to its function: the worker imports its module.
    for task in (read_copy, description_document, indexed_part):
        assert imported_by(task.__module__) == set(), task.__qualname__
