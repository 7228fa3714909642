"""Minimal AWS Signature V4 for the few S3 calls the stack makes to MinIO (no SDK before the venv)."""
from __future__ import annotations

import datetime
import hashlib
import hmac
import urllib.error
import urllib.request


def signed_request(host: str, region: str, method: str, path: str, query: str, body: bytes, ak: str,
                   sk: str) -> tuple[int, bytes]:
    """One path-style S3 request to http://host (no special chars in path/query); (status, body)."""
    amz_date = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canon_query = "&".join(sorted(q if "=" in q else q + "=" for q in query.split("&") if q))
    canonical = "\n".join([method, path, canon_query, "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           signed, payload])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + sk).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
