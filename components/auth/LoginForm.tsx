"use client";

import { useEffect, useState, type FormEvent } from "react";
import { useRouter } from "next/navigation";
import { signIn } from "next-auth/react";
import { Alert, Button, Card, Field, Input } from "@/components/ui";

export function LoginForm() {
  const router = useRouter();
  const [busy, setBusy] = useState(false);
  // Until React has hydrated the form, a press would be the browser's own GET submit: the password in the URL.
  const [ready, setReady] = useState(false);
  useEffect(() => setReady(true), []);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    const res = await signIn("credentials", {
      redirect: false,
      username: String(form.get("username") ?? ""),
      password: String(form.get("password") ?? ""),
    });
    if (!res || res.error) {
      setBusy(false);
      setError(res?.error && res.error !== "CredentialsSignin" ? res.error : "Wrong username or password.");
      return;
    }
    router.push("/documents");
    router.refresh();
  }

  return (
    <Card>
      <form onSubmit={submit} method="post" className="space-y-4">
        {error && <Alert>{error}</Alert>}
        <Field label="Username" htmlFor="username">
          <Input id="username" name="username" autoComplete="username" required autoFocus />
        </Field>
        <Field label="Password" htmlFor="password">
          <Input id="password" name="password" type="password" autoComplete="current-password" required />
        </Field>
        <Button type="submit" busy={busy} busyLabel="Signing in…" disabled={!ready} className="w-full">
          Sign in
        </Button>
      </form>
    </Card>
  );
}
