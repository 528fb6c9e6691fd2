"""What the Billing & seats page shows, gathered from the domain services."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.console.workspace_forms import WORKSPACE, Pager
from provisio.db.models import Workspace
from provisio.domain import seats as seat_service

PAGE = WORKSPACE + "/settings/billing"
LEDGER_PAGE_SIZE = 20

NOTICES = {
    "bought": "Seats bought. The ledger below records the purchase.",
    "license": "License settings saved.",
}

KINDS = {
    seat_service.KIND_PURCHASE: "Bought by hand",
    seat_service.KIND_AUTO_CHARGE: "Auto-charge",
    seat_service.KIND_OPERATOR: "Set by the operator",
}


async def billing_page_context(
    session: AsyncSession,
    workspace: Workspace,
    *,
    page: int = 1,
    notice: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    path = PAGE.format(workspace_key=workspace.key)
    pager = Pager(page, LEDGER_PAGE_SIZE, 0, path)
    ledger = await seat_service.ledger_page(session, workspace.id, offset=pager.offset, limit=pager.size)
    if not ledger.entries and ledger.total and page > 1:
        pager = Pager(1, LEDGER_PAGE_SIZE, 0, path)
        ledger = await seat_service.ledger_page(session, workspace.id, offset=0, limit=pager.size)
    return {
        "workspace": workspace,
        "nav_current": "billing",
        "usage": await seat_service.usage(session, workspace),
        "ledger": ledger.entries,
        "kinds": KINDS,
        "pager": Pager(pager.number, LEDGER_PAGE_SIZE, ledger.total, path),
        "notice": NOTICES.get(notice or ""),
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": path,
    }
