// The token lives in sessionStorage (gone with the tab); it is sent as `Authorization: Bearer <token>`,
// which the API takes beside X-Stage1-Token (docs/web.md, Sign-in; docs/auth.md). Never the admin
// secret: the sign-in page refuses nothing but an API token shape cannot be checked client-side, so
// the server's 401 decides.
const KEY = "stage1.token";
type Listener = () => void;
const listeners = new Set<Listener>();

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}
export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(KEY, token.trim());
  else sessionStorage.removeItem(KEY);
  listeners.forEach((l) => l());
}
export function onTokenChange(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** The request headers that carry a token: the one place the web client names the scheme. */
export function authHeaders(token: string | null): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}
