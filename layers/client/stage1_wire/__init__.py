"""The Stage1 API's request and response bodies, shared by the server and the client.

Only msgspec is imported here (and the standard library): the client installs without the
server's stack, and the server's `stage1.<area>.schemas` re-export these types (adding only what
is server-side, such as Litestar parameter types). Field names and order are the REST contract
(CONTRACT.md): never rename or drop one. One module per resource; `base` holds `Model`/`Page`,
`names` the constrained names every resource shares.
"""
