"""The web layer: the only Litestar code of the shared package (app factory, error mapping,
response helpers, shared parameters, the scope guard). It sits above the domain areas."""
