"""Import function (not HTTP; a container image: pyarrow + pandas + questdb exceed the zip limit).

Events, decoded once here (`stage1.imports.events.decode_importer_event`):
- `S3Event`: S3 `ObjectCreated` records (the bucket notification on AWS; the local gateway forwards
  MinIO's webhook payload, which has the same shape). Keys are URL-decoded by the decode.
- `JobEvent` from `stage1.jobs.dispatch` (the upload nudge, the sweeper, inline imports).
Anything else is logged and ignored. Returns a JSON summary per job; the job row in Postgres is
the real outcome.
"""

from __future__ import annotations

import uuid
from typing import Any

from stage1.core.logging import configure_logging, get_logger
from stage1.core.settings import get_settings
from stage1.imports.events import S3Event, decode_importer_event
from stage1.imports.service import handle_records, run_job
from stage1.jobs.events import JobEvent

log = get_logger("importer")


def handler(event: Any, context: Any) -> Any:
    configure_logging(get_settings().service.log_level)
    owner = getattr(context, "aws_request_id", None) or f"importer-{uuid.uuid4().hex[:12]}"
    match decode_importer_event(event):
        case S3Event() as records:
            return {"results": handle_records(records, owner)}
        case JobEvent(job_id=job_id):
            return run_job(job_id, owner)
        case _:
            log.warning("importer: unrecognised event ignored")
            return {"status": "IGNORED"}
