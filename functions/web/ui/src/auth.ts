// The token lives in sessionStorage (gone with the tab); it is sent as X-Stage1-Token (docs/web.md:
// why not Authorization: Bearer). Never the admin secret: the sign-in page refuses nothing but an
// API token shape cannot be checked client-side, so the server's 401 decides.
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
