"""provisio: SCIM 2.0 user provisioning for multi-tenant SaaS workspaces."""

__version__ = "0.1.0"
