// Drives the Worker through exports.default.fetch exactly as reference-kbs clients do.
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import type { AttestationSession } from "../../src/session/session";
import { toHex } from "../../src/crypto/bytes";

export const BASE = "http://kbs.test/kbs/v0";
export const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", accept: "application/json" };

/** A fresh client address per call unless the test names one, so the per-IP limits see many clients. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  const request = new Request(`${BASE}${path}`, init);
  if (!request.headers.has("cf-connecting-ip")) request.headers.set("cf-connecting-ip", `198.51.100.${Math.floor(Math.random() * 254) + 1}`);
  return (exports as unknown as { default: Fetcher }).default.fetch(request);
}

export function register(body: unknown, headers: Record<string, string> = ADMIN): Promise<Response> {
  return call("/register_workload", { method: "POST", headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) });
}

export async function registerSnp(workloadId: string, measurement: Uint8Array, passphrase: string, teeConfig = ""): Promise<void> {
  const res = await register({ workload_id: workloadId, launch_measurement: toHex(measurement), tee_config: teeConfig, passphrase });
  if (res.status !== 200) throw new Error(`register failed: ${res.status} ${await res.text()}`);
}

export interface Session {
  nonce: string;
  cookie: string;
}

/** libkrun's exact /auth body; returns the nonce and the cookie header to send back. */
export async function auth(workloadId: string): Promise<Session> {
  const res = await call("/auth", {
    method: "POST",
    headers: JSON_HEADERS,
    body: `{"extra-params":"{\\"workload_id\\":\\"${workloadId}\\"}","tee":"snp","version":"0.0.0"}`,
  });
  if (res.status !== 200) throw new Error(`auth failed: ${res.status} ${await res.text()}`);
  const { nonce } = (await res.json()) as { nonce: string };
  const cookie = /^session_id=([0-9a-f]{32}); SameSite=Strict; Path=\/$/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  if (cookie !== nonce) throw new Error("cookie and nonce differ");
  return { nonce, cookie: `session_id=${cookie}` };
}

export function attest(
  session: Pick<Session, "cookie">,
  key: { kMod: string; kExp: string },
  report: Uint8Array,
  opts: { certChain?: string; gen?: string } = {},
): Promise<Response> {
  // The C client's field order and UPPERCASE hex.
  const evidence = JSON.stringify({ gen: opts.gen ?? "milan", report: toHex(report).toUpperCase(), cert_chain: opts.certChain ?? "[]" });
  return call("/attest", {
    method: "POST",
    headers: { ...JSON_HEADERS, cookie: session.cookie },
    body: JSON.stringify({ "tee-pubkey": { alg: "RSA", "k-mod": key.kMod, "k-exp": key.kExp }, "tee-evidence": evidence }),
  });
}

export function getKey(session: Pick<Session, "cookie">, keyId: string): Promise<Response> {
  return call(`/key/${keyId}`, { headers: { ...JSON_HEADERS, cookie: session.cookie } });
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

/** What guest-components sends to /auth. */
export function trusteeAuthBody(version = "0.4.0", tee = "snp"): string {
  return JSON.stringify({ version, tee, "extra-params": { "supported-hash-algorithms": ["sha256", "sha384", "sha512", "sm3"] } });
}

/** POST /auth as a Trustee guest; returns the nonce and the cookie header to send back. */
export async function trusteeAuth(): Promise<Session> {
  const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: trusteeAuthBody() });
  if (res.status !== 200) throw new Error(`auth failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { nonce: string; "extra-params": unknown };
  const id = /^kbs-session-id=([0-9a-f]{32}); Expires=[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  if (!id || !/^[A-Za-z0-9+/]{43}=$/.test(body.nonce) || body["extra-params"] !== "") throw new Error(`not Trustee's challenge: ${JSON.stringify(body)} ${res.headers.get("set-cookie")}`);
  return { nonce: body.nonce, cookie: `kbs-session-id=${id}` };
}

/** The session object behind a Trustee cookie (named apart from legacy sessions). */
export const trusteeSessionStub = (session: Pick<Session, "cookie">) => env.SESSIONS.get(env.SESSIONS.idFromName(`trustee:${session.cookie.slice("kbs-session-id=".length)}`));

export function trusteeAttest(session: Pick<Session, "cookie">, body: unknown): Promise<Response> {
  return call("/attest", { method: "POST", headers: { ...JSON_HEADERS, cookie: session.cookie }, body: JSON.stringify(body) });
}

/** GET /resource/<path> with the session's cookie or a Bearer token. */
export function getResource(path: string, auth: { cookie: string } | { token: string }): Promise<Response> {
  return call(`/resource/${path}`, { headers: "cookie" in auth ? { cookie: auth.cookie } : { authorization: `Bearer ${auth.token}` } });
}

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
