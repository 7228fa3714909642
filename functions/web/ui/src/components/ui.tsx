import type { ReactNode } from "react";
import { ApiError } from "../api/client";

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as Error;
  const details = error instanceof ApiError ? error.details : null;
  return (
    <div className="error" role="alert" data-testid="error">
      <strong>{error instanceof ApiError ? `${error.status}: ` : ""}{e.message}</strong>
      {details && <pre>{JSON.stringify(details, null, 2)}</pre>}
    </div>
  );
}

// `shown`: the rows this page holds. A page the server cut at its byte cap holds fewer than `limit`,
// so the next page starts after the rows shown, never at offset + limit (that would skip rows).
export function Pager({ offset, limit, total, shown, onChange }: { offset: number; limit: number; total: number; shown?: number; onChange: (o: number) => void }) {
  const last = Math.min(total, offset + (shown ?? limit));
  return (
    <div className="pager">
      <button disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>‹ Previous</button>
      <span>{total ? `${offset + 1}–${last} of ${total}` : "none"}</span>
      <button disabled={last >= total} onClick={() => onChange(last)}>Next ›</button>
    </div>
  );
}

export function Status({ value }: { value: string }) {
  return <span className={`status s-${value.toLowerCase()}`}>{value}</span>;
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card">
      <div className="card-head"><h2>{title}</h2>{actions}</div>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}
