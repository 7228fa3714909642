"""The local gateway loads a function's handler module on its first invocation. A chunked upload's
events start several importer invocations at once: each must get the handler, none a module that is
still running its top level (it saw `module has no attribute 'handler'` before the load was locked)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from stage1_local.template import Function, load_handler


def test_concurrent_first_invocations_all_get_the_handler(tmp_path):
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(0.3)  # a heavy import (pyarrow, pandas)\n"
                                      "def handler(event, context):\n    return event\n")
    fn = Function(name=f"Slow{uuid.uuid4().hex[:8]}", code_uri=tmp_path, handler="slow.handler")
    with ThreadPoolExecutor(max_workers=4) as pool:
        handlers = list(pool.map(lambda _: load_handler(fn), range(4)))
    assert all(h({"n": 1}, None) == {"n": 1} for h in handlers)
