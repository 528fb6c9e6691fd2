"""The console's two static files (no StaticFiles mount needed)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from starlette.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"
FILES = {"console.css": "text/css", "console.js": "text/javascript"}

router = APIRouter(include_in_schema=False)


@router.get("/console/static/{name}")
async def static_file(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404)
    response = FileResponse(STATIC_DIR / name, media_type=FILES[name])
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
