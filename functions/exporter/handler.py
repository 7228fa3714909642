"""ExporterFunction: runs one export job per asynchronous invocation (`{"job_id": ...}`).

The API side (stage1.exports.http.large_read) creates the job and invokes this function; the job
sweeper re-invokes it for a job whose lease expired. Locally the gateway runs this handler in the
background (`/_local/invoke/ExporterFunction`). All the work is in stage1.exports.service.
"""

import uuid
from typing import Any

from stage1.core.logging import configure_logging, get_logger, log_fields
from stage1.core.settings import get_settings
from stage1.exports.service import run_export_job

log = get_logger("exporter")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    configure_logging(get_settings().service.log_level)
    job_id = str((event or {}).get("job_id") or "")
    if not job_id:
        log_fields(log, 30, "exporter invoked without a job_id", event_keys=sorted((event or {}).keys()))
        return {"job_id": None, "outcome": "ignored"}
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    outcome = run_export_job(job_id, owner=f"exporter:{request_id}")
    return {"job_id": job_id, "outcome": outcome}
