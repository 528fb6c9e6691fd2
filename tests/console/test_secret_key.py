"""Without PROVISIO_SECRET_KEY every process makes up its own key, so sessions, CSRF tokens and cursors
break across workers and restarts: allowed only for one plain-http development process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provisio.app import MissingSecretKey, create_app
from provisio.config import Settings


def test_https_deployment_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", base_url="https://scim.example.net")
    with pytest.raises(MissingSecretKey, match="PROVISIO_SECRET_KEY is not set"):
        create_app(settings.model_copy(update={"secret_key": ""}))


def test_development_without_a_key_still_starts(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", base_url="http://127.0.0.1:8000")
    app = create_app(settings.model_copy(update={"secret_key": ""}))
    assert app.state.settings.secret_key


def _serve(
    tmp_path: Path, *args: str, base_url: str = "http://127.0.0.1:8000"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PROVISIO_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "PROVISIO_BASE_URL": base_url,
        "PATH": "",
    }
    return subprocess.run(
        [sys.executable, "-m", "provisio.cli", "serve", "--port", "0", *args],
        cwd=tmp_path,  # no .env file
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "base_url"), [(("--workers", "2"), "http://127.0.0.1:8000"), ((), "https://scim.example.net")]
)
def test_serve_refuses_without_a_key(tmp_path: Path, args: tuple[str, ...], base_url: str) -> None:
    result = _serve(tmp_path, *args, base_url=base_url)
    assert result.returncode == 1
    assert "PROVISIO_SECRET_KEY is not set" in result.stderr
