"""API tokens, the authorizer shared by the Lambda authorizer and the local gateway, scope rules,
the admin-secret check and rate limiting. See docs/auth.md."""
