// One request straight to the bucket (a presigned POST or PUT) with upload progress. XMLHttpRequest,
// not fetch: fetch reports no upload progress. A refusal carries the status, and `retry` for what
// may pass on a second try (network errors, 5xx).
export type BucketError = Error & { status: number; retry: boolean };

export function send(method: string, url: string, body: XMLHttpRequestBodyInit, onBytes: (n: number) => void): Promise<XMLHttpRequest> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.upload.onprogress = (e) => onBytes(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve(xhr)
      : reject(Object.assign(new Error(`the bucket answered ${xhr.status}: ${xhr.responseText.slice(0, 300)}`), { status: xhr.status, retry: xhr.status >= 500 })));
    xhr.onerror = () => reject(Object.assign(new Error("the upload to the bucket failed (network or CORS)"), { status: 0, retry: true }));
    xhr.send(body);
  });
}
