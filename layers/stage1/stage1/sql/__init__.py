"""User SQL against QuestDB: the read-only guard and the query service (POST /api/questdb/query)."""
