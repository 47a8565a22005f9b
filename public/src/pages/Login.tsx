import { useState, type FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";
import { ApiError, describeError } from "../api/http";
import { Loading } from "../components/States";
import { Button, Field } from "../components/ui";
import { sessionStore, useSession } from "../stores/session";

export function LoginPage() {
  const user = useSession((state) => state.user);
  const notice = useSession((state) => state.notice);
  const restoring = useSession((state) => state.restoring);
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  // Set when the password was right but must be changed first (a generated one): the form asks for a new one.
  const [mustChange, setMustChange] = useState(false);
  const [newPassword, setNewPassword] = useState("");
  const [confirmation, setConfirmation] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const from = (location.state as { from?: string } | null)?.from ?? "/";

  // A reloaded tab that is still restoring its session is not asked to sign in again.
  if (restoring) return <Loading what="your session" />;
  if (user) return <Navigate to={from} replace />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (mustChange && newPassword !== confirmation) {
      setError("The new password and its confirmation differ.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      if (mustChange) await sessionStore.getState().changePassword(email, password, newPassword);
      else await sessionStore.getState().signIn(email, password);
      navigate(from, { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.type === "PASSWORD_CHANGE_REQUIRED") setMustChange(true);
      // A sign-in's 401 is the credentials, not a session: say so rather than "your session has ended".
      else if (err instanceof ApiError && err.status === 401) setError("Wrong email or password.");
      else setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="flex min-h-screen items-center justify-center bg-slate-50 p-4">
      <form
        onSubmit={submit}
        className="w-full max-w-sm space-y-4 rounded-lg border border-slate-200 bg-white p-6 shadow-sm"
      >
        <h1 className="text-xl font-semibold text-slate-900">
          {mustChange ? "Choose a new password" : "Sign in to AiCUnet"}
        </h1>
        {mustChange && (
          <p role="status" className="rounded border border-amber-300 bg-amber-50 p-2 text-sm text-amber-900">
            Your password must be changed before you can sign in.
          </p>
        )}
        {notice && (
          <p role="status" className="rounded border border-amber-300 bg-amber-50 p-2 text-sm text-amber-900">
            {notice}
          </p>
        )}
        {error && (
          <p role="alert" className="rounded border border-red-300 bg-red-50 p-2 text-sm text-red-800">
            {error}
          </p>
        )}
        <Field
          label="Email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        <Field
          label={mustChange ? "Current password" : "Password"}
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {mustChange && (
          <>
            <Field
              label="New password"
              type="password"
              autoComplete="new-password"
              required
              minLength={10}
              value={newPassword}
              onChange={(e) => setNewPassword(e.target.value)}
            />
            <Field
              label="Confirm new password"
              type="password"
              autoComplete="new-password"
              required
              value={confirmation}
              onChange={(e) => setConfirmation(e.target.value)}
            />
          </>
        )}
        <Button type="submit" disabled={busy} className="w-full">
          {busy ? "Signing in…" : mustChange ? "Change password and sign in" : "Sign in"}
        </Button>
      </form>
    </main>
  );
}
