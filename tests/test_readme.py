"""The README's configuration table documents every setting there is."""

from __future__ import annotations

import re
from pathlib import Path

from provisio.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_configuration_table_lists_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `PROVISIO_")]
    documented = {
        name for row in rows for name in re.findall(r"`(PROVISIO_[A-Z0-9_]+)`", row.split(" | ")[0])
    }
    settings = {"PROVISIO_" + name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from the README's configuration table"
    assert documented - settings == set(), "the README documents settings that do not exist"


def test_connect_your_application_shows_the_examples_as_they_are() -> None:
    """The receiver and the poller in "Connect your application" are the files the tests run."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Connect your application", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    root = README.parent
    for name in ("webhook_receiver.py", "poll_events.py"):
        assert (root / "examples" / name).read_text(encoding="utf-8") in blocks, name
