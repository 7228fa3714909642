"""Walk-forward runs: Postgres rows (run, folds) plus a QuestDB predictions table (see docs/resources.md)."""
