"""ExporterFunction: runs one export job per asynchronous invocation (a `JobEvent`).

The API side (stage1.exports.http.large_read) creates the job and invokes this function; the job
sweeper re-invokes it for a job whose lease expired or whose outage backoff is over. Locally the
gateway runs this handler in the background (`/_local/invoke/ExporterFunction`). The event is
decoded once here; anything but a job event is logged and ignored. The work is in
stage1.exports.service, run by the job worker (stage1.jobs.worker).
"""

import uuid
from typing import Any

from stage1.core.logging import configure_logging, get_logger
from stage1.core.settings import get_settings
from stage1.exports.service import run_export_job
from stage1.jobs.events import JobEvent, decode_job_event

log = get_logger("exporter")


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    configure_logging(get_settings().service.log_level)
    match decode_job_event(event):
        case JobEvent(job_id=job_id) if job_id:
            request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
            return {"job_id": job_id, "outcome": run_export_job(job_id, owner=f"exporter:{request_id}")}
        case _:
            log.warning("exporter: invoked without a job event; ignored")
            return {"job_id": None, "outcome": "ignored"}
