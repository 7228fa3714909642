"""Datasets: the dataset row and its two QuestDB tables (see docs/resources.md)."""
