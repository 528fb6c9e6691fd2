"""Read provisio's events by polling: keep the cursor, and nothing is missed or seen twice."""

import os
import pathlib
import time

import httpx

api = httpx.Client(
    base_url=os.environ.get("PROVISIO_URL", "http://127.0.0.1:8000"),
    headers={"Authorization": f"Bearer {os.environ['PROVISIO_API_KEY']}"},
    timeout=30,
)
cursor_file = pathlib.Path(os.environ.get("CURSOR_FILE", "provisio.cursor"))

while True:
    params: dict[str, str | int] = {"limit": 100}
    if cursor_file.exists():
        params["after"] = cursor_file.read_text().strip()
    page = api.get("/api/v1/events", params=params).raise_for_status().json()
    for event in page["data"]:
        print(event["type"], event["workspace"], event["data"].get("member", {}).get("userName"), flush=True)
    # After handling the page (a crash re-reads it, never skips); moved over the old one, never half written.
    cursor_file.with_suffix(".tmp").write_text(page["next_cursor"])
    cursor_file.with_suffix(".tmp").replace(cursor_file)
    if not page["has_more"]:
        if os.environ.get("ONCE"):
            break
        time.sleep(5)
