"""Every policy key the loader accepts is documented in docs/policies.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from preserve import policy

DOC = (Path(__file__).parent.parent / "docs" / "policies.md").read_text()
KEYS = [*policy._TOP, *policy._TARGET, *policy._CAPTURE, *policy._PRESERVATION, *policy._ACCESS]


@pytest.mark.parametrize("key", sorted(set(KEYS)))
def test_key_is_documented(key: str) -> None:
    assert f"| `{key}` |" in DOC, f"docs/policies.md does not document {key}"
