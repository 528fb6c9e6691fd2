"""Business rules as async services over an AsyncSession: no HTTP, no protocol formats."""
