"""The SCIM 2.0 protocol (RFC 7643, RFC 7644): schemas, filters, PATCH, serialization, errors and routes."""
