// Drives the Worker's fetch handler exactly as reference-kbs clients do.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { app } from "../../src/app";
import type { Env } from "../../src/env";
import type { AttestationSession } from "../../src/session/session";
import { toHex } from "../../src/crypto/bytes";
import { guestClient, type Session } from "../../lab/guest-client";

export { trusteeAuthBody, type Session } from "../../lab/guest-client";

export const BASE = "http://kbs.test/kbs/v0";
export const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", accept: "application/json" };

function request(path: string, init: RequestInit): Request {
  const request = new Request(`${BASE}${path}`, init);
  // A fresh client address per call unless the test names one, so the per-IP limits see many clients.
  if (!request.headers.has("cf-connecting-ip")) request.headers.set("cf-connecting-ip", `198.51.100.${Math.floor(Math.random() * 254) + 1}`);
  return request;
}

/**
 * The Worker's handler, called as the runtime calls it. Not through exports.default.fetch: vitest-pool-workers
 * 0.15 wraps every such call in one more Proxy level, so the Nth request of a file costs O(N) (see fuzz.test.ts).
 */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(app.fetch(request(path, init), env, createExecutionContext()));
}

/**
 * The app over `env` with some values replaced (a misconfiguration, a stand-in binding), as `call` does it
 * but with the request as given (no client address added) and its waitUntil work awaited before returning.
 * `path` is under /kbs/v0 unless it is a root probe (/healthz, /readyz).
 */
export async function fetchWith(overrides: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const url = path.endsWith("z") ? new URL(path, BASE).href : `${BASE}${path}`;
  const res = await app.fetch(new Request(url, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Across the runtime's fetch boundary, for what only it does: a stream's declared length becomes Content-Length. */
export function callThroughRuntime(path: string, init: RequestInit = {}): Promise<Response> {
  return (exports as unknown as { default: Fetcher }).default.fetch(request(path, init));
}

export function register(body: unknown, headers: Record<string, string> = ADMIN): Promise<Response> {
  return call("/register_workload", { method: "POST", headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) });
}

/** The guest requests of each protocol (lab/guest-client.ts), sent through `call`. */
export const { auth, attest, getKey, trusteeAuth, trusteeAttest, getResource } = guestClient(call);

export async function registerSnp(workloadId: string, measurement: Uint8Array, passphrase: string, teeConfig = ""): Promise<void> {
  const res = await register({ workload_id: workloadId, launch_measurement: toHex(measurement), tee_config: teeConfig, passphrase });
  if (res.status !== 200) throw new Error(`register failed: ${res.status} ${await res.text()}`);
}

/** A refusal must be problem+json with the given status and type, and never carry a secret. */
export async function expectProblem(res: Response, status: number, code: string): Promise<{ type: string; detail: string; rules?: unknown }> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status} ${code}, got ${res.status}: ${text}`);
  if (res.headers.get("content-type") !== "application/problem+json") throw new Error(`content-type ${res.headers.get("content-type")}`);
  const body = JSON.parse(text) as { type: string; detail: string };
  if (body.type !== `urn:edgekbs:${code}`) throw new Error(`expected type ${code}, got ${body.type}: ${body.detail}`);
  return body;
}

/** The session object behind a cookie. */
export const sessionStub = (session: Pick<Session, "nonce">) => env.SESSIONS.get(env.SESSIONS.idFromName(session.nonce));

/** Exports the session's audit shard to D1 now (its alarm does it moments later anyway). */
export async function exportAudit(session: Pick<Session, "nonce">): Promise<string> {
  const stub = sessionStub(session);
  await stub.exportAudit();
  return `session/${env.SESSIONS.idFromName(session.nonce).toString()}`;
}

/**
 * Runs the session object's alarm now. Its export alarm fires right after each request, so whether one
 * is still pending at a given moment is a race; calling the handler is not.
 */
export async function runSessionAlarm(stub: DurableObjectStub<AttestationSession>): Promise<void> {
  await runInDurableObject(stub, (instance) => instance.alarm!());
}

// The Trustee KBS protocol 0.4.0, as Confidential Containers' guest-components speak it.

/** The session object behind a Trustee cookie (named apart from legacy sessions). */
export const trusteeSessionStub = (session: Pick<Session, "cookie">) => env.SESSIONS.get(env.SESSIONS.idFromName(`trustee:${session.cookie.slice("kbs-session-id=".length)}`));

/** POST /resource/<path>?workload_id=… as Trustee's admin client does it: the raw bytes. */
export async function putResource(workloadId: string, path: string, value: Uint8Array): Promise<void> {
  const res = await call(`/resource/${path}?workload_id=${workloadId}`, { method: "POST", headers: { ...ADMIN, "content-type": "application/octet-stream" }, body: value });
  if (res.status !== 200) throw new Error(`resource upload failed: ${res.status} ${await res.text()}`);
}

/** A refusal in Trustee's shape: `type` names the error variant, and there is a detail. */
export async function expectTrusteeProblem(res: Response, status: number, variant: string): Promise<{ type: string; detail: string }> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status} ${variant}, got ${res.status}: ${text}`);
  const body = JSON.parse(text) as { type: string; detail: string };
  if (body.type !== `https://github.com/confidential-containers/kbs/errors/${variant}`) throw new Error(`expected ${variant}, got ${body.type}: ${body.detail}`);
  if (Object.keys(body).sort().join() !== "detail,type") throw new Error(`not Trustee's shape: ${text}`);
  return body;
}
