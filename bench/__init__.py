"""``python -m bench``: the SCIM load benchmark of provisio.

It starts provisio the way ``make run`` does (fresh database, ``provisio db upgrade``, a workspace and a
bearer token through the CLI, then ``provisio serve``), seeds users through the SCIM API, drives each
scenario with C concurrent keep-alive clients and reports req/s and p50/p99 latency per scenario and
backend. ``--peer`` runs the same scenarios against the reference server of
``../shared/conformance/start-peer.sh``; ``--scale`` shows how lookups and list pages cost as N grows.
"""
