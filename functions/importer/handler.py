"""Import function (not HTTP; a container image: pyarrow + pandas + questdb exceed the zip limit).

Events:
- S3 `ObjectCreated` records (the bucket notification on AWS; the local gateway forwards MinIO's
  webhook payload, which has the same shape). Keys are URL-encoded and decoded here.
- `{"job_id": ...}` from `stage1.jobs.dispatch` (the upload nudge, the sweeper, inline imports).
Returns a JSON summary per job; the job row in Postgres is the real outcome.
"""

from __future__ import annotations

import uuid
from typing import Any

from stage1.core.logging import configure_logging, get_logger
from stage1.core.settings import get_settings
from stage1.imports.service import handle_records, run_job

log = get_logger("importer")


def handler(event: dict[str, Any], context: Any) -> Any:
    configure_logging(get_settings().log_level)
    owner = getattr(context, "aws_request_id", None) or f"importer-{uuid.uuid4().hex[:12]}"
    if isinstance(event, dict) and event.get("Records"):
        return {"results": handle_records(event["Records"], owner)}
    if isinstance(event, dict) and event.get("job_id"):
        return run_job(str(event["job_id"]), owner)
    log.warning("importer: unrecognised event ignored")
    return {"status": "IGNORED"}
