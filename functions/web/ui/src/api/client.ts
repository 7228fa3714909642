// The typed API client: openapi-fetch over the generated schema (src/api/schema.d.ts, `make openapi`).
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import { authHeaders, getToken } from "../auth";

export type { paths, components } from "./schema";
export type Schemas = import("./schema").components["schemas"];

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    public details: Record<string, unknown> | null,
  ) {
    super(message);
  }
}

// 401/403 anywhere: the app shows its "not allowed" page (App subscribes).
type DeniedListener = (status: number, message: string) => void;
const denied = new Set<DeniedListener>();
export function onDenied(l: DeniedListener): () => void {
  denied.add(l);
  return () => denied.delete(l);
}

const auth: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(authHeaders(getToken()))) request.headers.set(name, value);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

export function headers(): Record<string, string> {
  return authHeaders(getToken());
}

/** Unwrap an openapi-fetch answer: the data, or an ApiError with the envelope's message. */
export async function ok<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p;
  if (response.ok && data !== undefined) return data;
  const body = (error ?? {}) as { error?: string; details?: Record<string, unknown> };
  const message = body.error ?? `${response.status} ${response.statusText}`;
  if (response.status === 401 || response.status === 403) denied.forEach((l) => l(response.status, message));
  throw new ApiError(response.status, message, body.details ?? null);
}
