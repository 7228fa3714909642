import { useState, type FormEvent } from "react";
import { setToken } from "../auth";

export function SignIn() {
  const [value, setValue] = useState("");
  const [problem, setProblem] = useState("");
  function submit(e: FormEvent) {
    e.preventDefault();
    const token = value.trim();
    if (!token) return setProblem("Paste an API token.");
    setToken(token);
  }
  return (
    <main className="signin">
      <h1>Stage1</h1>
      <form onSubmit={submit} aria-label="sign in">
        <label htmlFor="token">API token</label>
        <input id="token" type="password" autoComplete="off" autoFocus value={value} onChange={(e) => setValue(e.target.value)} placeholder="s1_…" />
        {problem && <p className="error" role="alert">{problem}</p>}
        <button type="submit">Sign in</button>
        <p className="muted">
          A token from <code>stage1 token create</code> or <code>POST /api/auth/token</code>. It is kept in this tab only
          (sessionStorage) and sent as <code>Authorization: Bearer</code>. Never paste the admin secret here.
        </p>
      </form>
    </main>
  );
}
