"""OAuth 2.0 authorization server for SCIM clients: Authlib's grants behind a thin async adapter.

Authlib's callbacks are synchronous; each request runs them inside ``AsyncSession.run_sync`` (see
``bridge``) so they can query the database through a synchronous ``Session`` on the same transaction.
"""
