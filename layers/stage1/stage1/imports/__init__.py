"""The streaming import core: files (CSV, CSV.gz, Parquet, Arrow IPC) read in bounded batches with
pyarrow and sent to QuestDB over ILP/HTTP. Needs pyarrow, pandas and the questdb client: it runs
in the importer function (a container image), not in the API functions. See docs/imports.md."""
