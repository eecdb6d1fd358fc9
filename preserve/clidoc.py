"""Generate docs/cli.md from the argument parser: ``python -m preserve.clidoc > docs/cli.md``."""

from __future__ import annotations

import argparse
import os

from preserve.cli import build_parser

HEADER = """# Command-line reference

Generated from `preserve --help` by `make docs`; do not edit by hand.
Every command exits 0 when done, 1 when a check found problems or an operation
failed, 2 for bad usage or bad input (one line on standard error, nothing written).
"""


def render() -> str:
    """The whole reference as Markdown."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # stable wrapping, whatever the terminal
    try:
        sections = [HEADER]
        for path, parser in _walk(build_parser(), ["preserve"]):
            sections.append(
                f"## `{' '.join(path)}`\n\n```\n{parser.format_help().rstrip()}\n```\n")
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(sections)


def _walk(parser: argparse.ArgumentParser, path: list[str]
          ) -> list[tuple[list[str], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.extend(_walk(child, [*path, name]))
    return found


if __name__ == "__main__":
    print(render(), end="")
