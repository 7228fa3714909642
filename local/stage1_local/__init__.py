"""Local-only tooling (never shipped to Lambda): the template reader and the local gateway."""
