"""``preserve`` and ``python -m preserve``: the command, started light.

The command's modules are imported when it runs, not when this file is: a
worker process (description, deep fixity, import; started with ``spawn``)
re-imports the script that started its parent, and would otherwise load the
whole command line, the catalog and its database driver before its first task.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from preserve.cli import main as command

    return command(argv)


if __name__ == "__main__":
    sys.exit(main())
