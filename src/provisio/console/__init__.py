"""The admin console: sign-in, Workspace settings > Advanced > SCIM, and the OAuth consent page's look."""
