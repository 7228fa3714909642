import { headers } from "./api/client";

/** Download an API CSV with the token: the file, or (202) the export job that will hold it. */
export async function downloadCsv(path: string, filename: string): Promise<{ job?: string; error?: string }> {
  const r = await fetch(path, { headers: headers() });
  if (r.status === 202) return { job: ((await r.json()) as { job_id: string }).job_id };
  if (!r.ok) return { error: `${r.status}: ${((await r.json().catch(() => ({}))) as { error?: string }).error ?? r.statusText}` };
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url; a.download = filename; a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  return {};
}
