"""QuestDB time-series tables: their kinds, DDL and timestamp rules, shared by every writer."""
