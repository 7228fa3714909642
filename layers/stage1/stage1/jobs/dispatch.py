"""Start a function asynchronously: `invoke_async(function, event)`.

- On AWS: a Lambda `Event` invocation of the function whose deployed name is the setting
  `fn_<logicalname>` (env `STAGE1_FN_<LOGICALNAME>`, set by template.yaml, e.g.
  `STAGE1_FN_IMPORTERFUNCTION`).
- Locally: inside a gateway process, the gateway's own runner (registered with
  `set_local_runner`) runs the handler in the background; elsewhere (a test, a script) a POST to
  `<local_invoke_url>/_local/invoke/<LogicalName>`, which does the same in that gateway.

A job is dispatched as the event `{"job_id": ..., "job_type": ...}` (`stage1.jobs.events.JobEvent`,
built by `job_event`) to the function that runs its type: `payload["function"]` when the creator
set it, else `JOB_FUNCTIONS[job_type]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from stage1.core.errors import ServiceUnavailable
from stage1.core.lazy import lazy
from stage1.core.logging import get_logger
from stage1.core.settings import get_settings
from stage1.jobs import events
from stage1.jobs.service import Job

log = get_logger("jobs.dispatch")

# job_type → logical function name (template.yaml) that runs it. Add your type here, or put
# {"function": "<LogicalName>"} in the job's payload.
JOB_FUNCTIONS: dict[str, str] = {
    "import": "ImporterFunction",
    "export": "ExporterFunction",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
# (function, event, wait) -> the handler's result when wait, else None (started in the background)
LocalRunner = Callable[[str, dict[str, Any], bool], Any]
_local_runner: LocalRunner | None = None


def set_local_runner(runner: LocalRunner | None) -> None:
    """The local gateway registers how it runs a function in the background (in its own process)."""
    global _local_runner
    _local_runner = runner


def function_env_name(function: str) -> str:
    return "STAGE1_FN_" + function.upper()


def function_for(job: Job) -> str | None:
    return (job.payload or {}).get("function") or JOB_FUNCTIONS.get(job.job_type)


def job_event(job: Job) -> dict[str, Any]:
    """The job's dispatch event as the JSON object an invocation carries."""
    return events.to_wire(events.job_event(job.job_id, job.job_type))


def deployed_name(function: str) -> str:
    """The function's deployed name (`fn_<logicalname>`; empty: not deployed, e.g. locally)."""
    return str(getattr(get_settings().jobs, "fn_" + function.lower(), "") or "")


def invoke_async(function: str, event: dict[str, Any]) -> None:
    """Fire and forget: returns once the invocation is accepted (not when it has run)."""
    if not _NAME_RE.fullmatch(function):
        raise ValueError(f"not a logical function name: {function!r}")
    if _local_runner is not None:
        _local_runner(function, event, False)
        return
    name = deployed_name(function)
    if name:
        _invoke_lambda(name, event)
        return
    url = get_settings().jobs.local_invoke_url
    if url:
        _invoke_local(url, function, event)
        return
    raise ServiceUnavailable("dispatch", f"no target for {function}: set {function_env_name(function)}")


def invoke_sync(function: str, event: dict[str, Any]) -> Any:
    """Invoke and wait for the handler's (JSON) result: Lambda `RequestResponse`, or locally the
    gateway runs it and answers with the result. For short work only (API Gateway's 30 s)."""
    if not _NAME_RE.fullmatch(function):
        raise ValueError(f"not a logical function name: {function!r}")
    if _local_runner is not None:
        return _local_runner(function, event, True)
    name = deployed_name(function)
    if name:
        return _invoke_lambda(name, event, wait=True)
    url = get_settings().jobs.local_invoke_url
    if url:
        return _invoke_local(url, function, event, wait=True)
    raise ServiceUnavailable("dispatch", f"no target for {function}: set {function_env_name(function)}")


def dispatch_job(job: Job) -> None:
    function = function_for(job)
    if function is None:
        raise ValueError(f"no function runs jobs of type {job.job_type!r}")
    invoke_async(function, job_event(job))


@lazy
def _lambda_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                                connect_timeout=3, read_timeout=60))


def _invoke_lambda(name: str, event: dict[str, Any], *, wait: bool = False) -> Any:
    response = _lambda_client().invoke(FunctionName=name, InvocationType="RequestResponse" if wait else "Event",
                              Payload=json.dumps(event).encode())
    if not wait:
        if response.get("StatusCode") != 202:
            raise ServiceUnavailable("lambda", f"invoke {name}: status {response.get('StatusCode')}")
        return None
    body = response["Payload"].read()
    if response.get("FunctionError"):
        raise ServiceUnavailable("lambda", f"{name} failed: {body[:300]!r}")
    return json.loads(body) if body else None


def _invoke_local(url: str, function: str, event: dict[str, Any], *, wait: bool = False) -> Any:
    import httpx

    # The gateway's worker routes need the local worker token (stage1_local.jobs_local).
    headers = {"Authorization": f"Bearer {get_settings().auth.webhook_token}"}
    try:
        response = httpx.post(f"{url.rstrip('/')}/_local/invoke/{function}", json=event, headers=headers,
                              params={"wait": "1"} if wait else None, timeout=120 if wait else 10)
    except httpx.TransportError as exc:
        raise ServiceUnavailable("dispatch", f"local gateway at {url}: {exc}") from exc
    if response.status_code != (200 if wait else 202):
        raise ServiceUnavailable("dispatch", f"local gateway answered {response.status_code}: {response.text[:200]}")
    return response.json() if wait else None


def reset_client() -> None:
    _lambda_client.reset()
