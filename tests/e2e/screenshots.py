"""Where browser tests save screenshots: ``docs/`` when asked to refresh the README's pictures
(``PROVISIO_UPDATE_SCREENSHOTS=1``), a temporary folder otherwise, so a test run leaves the tree clean."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot_dir() -> Path:
    if os.environ.get("PROVISIO_UPDATE_SCREENSHOTS"):
        return DOCS
    return Path(tempfile.gettempdir()) / "provisio-screenshots"
