"""Stage1 shared package: the code every function of the data service shares (shipped as a Lambda layer)."""
