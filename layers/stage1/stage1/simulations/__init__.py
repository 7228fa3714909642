"""Simulations: record, trades and aggregated trade buckets, all in Postgres (see docs/resources.md)."""
