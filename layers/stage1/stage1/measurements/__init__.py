"""QuestDB table inspection from QuestDB's own metadata (GET /api/questdb/measurements, /measurement/{name})."""
