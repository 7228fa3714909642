import { StrictMode, Suspense, lazy, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { BrowserRouter, NavLink, Route, Routes } from "react-router-dom";
import { ApiError, onDenied } from "./api/client";
import { getToken, onTokenChange, setToken } from "./auth";
import { SignIn } from "./pages/SignIn";
import { Datasets } from "./pages/Datasets";
import "./styles.css";

// Chart pages load on demand: the initial bundle holds the shell, sign-in and the datasets list.
const Dataset = lazy(() => import("./pages/Dataset"));
const Upload = lazy(() => import("./pages/Upload"));
const Runs = lazy(() => import("./pages/Runs"));
const Compare = lazy(() => import("./pages/Compare"));
const Run = lazy(() => import("./pages/Run"));
const Simulation = lazy(() => import("./pages/Simulation"));
const Jobs = lazy(() => import("./pages/Jobs"));
const Sql = lazy(() => import("./pages/Sql"));

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      refetchOnWindowFocus: false,
      retry: (n, e) => !(e instanceof ApiError && e.status < 500) && n < 2,
    },
  },
});

function Denied({ status, message, onBack }: { status: number; message: string; onBack: () => void }) {
  return (
    <main className="denied" data-testid="denied">
      <h1>{status === 401 ? "Not signed in" : "Not allowed"}</h1>
      <p>
        The API answered <strong>{status}</strong>: {message}.
      </p>
      <p>{status === 401 ? "The token is missing, unknown, expired or revoked." : "The token lacks the scope this page needs (read, or write to change things)."}</p>
      <button onClick={onBack} autoFocus>Sign in with another token</button>
    </main>
  );
}

function App() {
  const [token, setTok] = useState(getToken());
  const [denied, setDenied] = useState<{ status: number; message: string } | null>(null);
  useEffect(() => onTokenChange(() => { setTok(getToken()); setDenied(null); queries.clear(); }), []);
  useEffect(() => onDenied((status, message) => setDenied({ status, message })), []);
  if (!token) return <SignIn />;
  if (denied) return <Denied {...denied} onBack={() => setToken(null)} />;
  return (
    <BrowserRouter>
      <a className="skip" href="#content">Skip to content</a>
      <header className="top">
        <span className="brand">Stage1</span>
        <nav aria-label="main">
          <NavLink to="/" end>Datasets</NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
          <NavLink to="/sql">SQL</NavLink>
        </nav>
        <button className="link" onClick={() => setToken(null)}>Sign out</button>
      </header>
      <main id="content" tabIndex={-1}>
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <Routes>
            <Route path="/" element={<Datasets />} />
            <Route path="/datasets/:id" element={<Dataset />} />
            <Route path="/datasets/:id/upload" element={<Upload />} />
            <Route path="/runs" element={<Runs />} />
            <Route path="/runs/compare" element={<Compare />} />
            <Route path="/runs/:id" element={<Run />} />
            <Route path="/simulations/:id" element={<Simulation />} />
            <Route path="/jobs" element={<Jobs />} />
            <Route path="/sql" element={<Sql />} />
            <Route path="*" element={<p>No such page. <NavLink to="/">Datasets</NavLink></p>} />
          </Routes>
        </Suspense>
      </main>
    </BrowserRouter>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queries}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
