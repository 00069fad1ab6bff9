// What both guest protocols' routers share when they talk to a session object.

import type { Context } from "hono";
import type { Env } from "../env";
import { toHex } from "../crypto/bytes";
import { Refused, type Refusal } from "../errors";
import { NO_SESSION } from "../session/outcome";
import { clientIp, throttle } from "./limits";
import { fail } from "./problem";

/**
 * RPC results arrive wrapped (Disposable), so this narrows by shape rather than by Outcome<T>. A cookie
 * that names no live session is counted against the caller's address (it is never stored), so guessing
 * or replaying cookies is throttled without costing the service a write.
 */
export async function answerOf<E extends { Bindings: Env }, O extends { ok: true } | { ok: false; refusal: Refusal }>(c: Context<E>, outcome: O): Promise<Extract<O, { ok: true }>> {
  if (outcome.ok) return outcome as Extract<O, { ok: true }>;
  const { refusal } = outcome as { refusal: Refusal };
  if (refusal.code === NO_SESSION.refusal.code) await throttle(c.env.INVALID_SESSIONS_PER_IP, clientIp(c), "requests without a valid session from this address");
  throw new Refused(refusal);
}

/**
 * Hono routes HEAD to a GET handler and drops the body: on a release route that would be a real, audited
 * release whose secret nobody receives. Refused instead.
 */
export function refuseHead(c: Context, what: string): void {
  if (c.req.method !== "HEAD") return;
  c.header("allow", "GET");
  fail(405, "method-not-allowed", `use GET for ${what}`);
}

/** A session id: 128 random bits as 32 lowercase hex digits (both protocols' cookies carry it). */
export function newSessionId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

const SESSION_ID_RE = /^[0-9a-f]{32}$/;

/**
 * The session id in cookie `name`: undefined when there is no such cookie, null when it is malformed or sent
 * twice with different values (libkrun's C client may send its cookie twice, identically).
 */
export function cookieSessionId(c: Context, name: string): string | null | undefined {
  const values = [...(c.req.header("cookie") ?? "").matchAll(new RegExp(`(?:^|[;,])\\s*${name}=([^;,\\s]*)`, "g"))].map((m) => m[1]!);
  const id = values[0];
  if (id === undefined) return undefined;
  return SESSION_ID_RE.test(id) && values.every((v) => v === id) ? id : null;
}
