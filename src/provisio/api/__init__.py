"""The management REST API (``/api/v1``) a host application drives provisio with."""
