// Requests at the edges, one file so the pool starts one runtime for them (each file costs ~5 s to start):
// the body limit, the rate limits, and misconfiguration.
//
// The body limit: a declared Content-Length over the limit gets 413 before any byte is read; a body of unknown
// length (chunked, a stream) is counted, and over the limit read to its end before its 413. Answering with a
// chunked body's rest unread made wrangler dev's proxy stall the next request on the connection (or answer 503).
//
// Workers Rate Limiting (the real local binding) on /auth per client address, and the exact per-address
// count of failed admin authentications (LoginThrottle). Limits come from wrangler.toml and
// src/auth/throttle.ts; the per-workload budget and invalid cookies are in crash-and-abuse.test.ts.
//
// Misconfiguration is never a 500: a bad variable or a missing D1 table answers 503 kbs-misconfigured,
// naming what to fix, and never quoting a key. (EXTRA_TRUSTED_ARKS, read inside the session object, is
// covered by sev-flow.test.ts, which runs the session class over a misconfigured env.)
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import type { Env } from "../../src/env";
import { ADMIN, auth, BASE, call, expectProblem, register, registerSnp } from "./kbs";

const MAX_BODY_BYTES = 256 * 1024;
const JSON_HEADERS = { "content-type": "application/json" };
const authBody = (workloadId: string) => JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: workloadId }) });

/** A body of unknown length (sent chunked), counting how many chunks the runtime pulled from it. */
function chunkedBody(total: number, chunk = 16 * 1024): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0;
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      const n = Math.min(chunk, total - sent);
      controller.enqueue(new Uint8Array(n).fill(0x20));
      sent += n;
      if (sent >= total) controller.close();
    },
  });
  return { body, pulled: () => pulls };
}

/** A body that declares its length (Content-Length) and counts the bytes the Worker actually took from it. */
function declaredBody(total: number, chunk = 16 * 1024): { body: ReadableStream<Uint8Array>; taken: () => number; stop: () => Promise<void> } {
  const { readable, writable } = new FixedLengthStream(total);
  const writer = writable.getWriter();
  let taken = 0;
  // Each write resolves only once the reader took it: `taken` is what the Worker read (plus one chunk in flight).
  const pump = (async () => {
    for (let sent = 0; sent < total; sent += chunk) {
      await writer.write(new Uint8Array(Math.min(chunk, total - sent)));
      taken += Math.min(chunk, total - sent);
    }
    await writer.close();
  })().catch(() => {});
  return { body: readable, taken: () => taken, stop: async () => { await writer.abort("test done").catch(() => {}); await pump; } };
}

/** Every refusal stays problem+json, short enough for libkrun's 200-byte buffer, and uncached. */
async function expectRefusal(res: Response, status: number, code: string): Promise<void> {
  expect(res.headers.get("cache-control")).toBe("no-store");
  const length = Number(res.headers.get("content-length") ?? NaN);
  const problem = await expectProblem(res, status, code);
  expect(JSON.stringify(problem).length).toBeLessThanOrEqual(200);
  if (!Number.isNaN(length)) expect(length).toBeLessThanOrEqual(200);
}

describe("request body limit", () => {
  it("refuses a declared Content-Length over the limit with 413 without reading the body", async () => {
    const { body, taken, stop } = declaredBody(400 * 1024);
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body });
    await expectRefusal(res, 413, "body-too-large");
    // At most the one chunk the pipe buffers: nothing near the limit was read.
    expect(taken()).toBeLessThanOrEqual(16 * 1024);
    await stop();
  });

  it("judges the declared length exactly: the limit passes to the handler, one byte more is 413", async () => {
    // At the limit the handler parses it (spaces are not JSON): 400, not 413.
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: " ".repeat(MAX_BODY_BYTES) }), 400, "body-malformed");
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: " ".repeat(MAX_BODY_BYTES + 1) }), 413, "body-too-large");
  });

  it("refuses a chunked body over the limit with 413 after reading it to its end", async () => {
    const { body, pulled } = chunkedBody(600 * 1024);
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body });
    await expectRefusal(res, 413, "body-too-large");
    // Every chunk was taken: nothing is left unread for a proxy to trip over.
    expect(pulled()).toBeGreaterThanOrEqual(Math.ceil((600 * 1024) / (16 * 1024)));
  });

  it("accepts a chunked body under the limit, as the same body with Content-Length", async () => {
    const workload = "body-limit-chunked";
    await registerSnp(workload, new Uint8Array(48).fill(7), "passphrase");
    const text = authBody(workload);
    const bytes = new TextEncoder().encode(text);
    const chunked = new ReadableStream<Uint8Array>({ start: (c) => { c.enqueue(bytes.subarray(0, 10)); c.enqueue(bytes.subarray(10)); c.close(); } });
    for (const body of [chunked, text]) {
      const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as { nonce: string }).nonce).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it("passes a request without a body to its handler", async () => {
    // A bodyless POST reaches the handler, which finds no JSON: 400.
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS }), 400, "body-malformed");
    await expectRefusal(await call("/"), 401, "unauthorized");
  });

  it("serves the next requests normally after each refusal", async () => {
    const workload = "body-limit-next";
    await registerSnp(workload, new Uint8Array(48).fill(9), "passphrase");
    const over = declaredBody(300 * 1024);
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: over.body }), 413, "body-too-large");
    await over.stop();
    expect((await auth(workload)).nonce).toMatch(/^[0-9a-f]{32}$/);
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: chunkedBody(300 * 1024).body }), 413, "body-too-large");
    expect((await auth(workload)).nonce).toMatch(/^[0-9a-f]{32}$/);
    await expectRefusal(await call("/"), 401, "unauthorized");
  });
});


/** The limiter counts in fixed 60 s windows, so a window may roll over mid-test: at least the limit, below twice it. */
function expectLimit(allowed: number, limit: number): void {
  expect(allowed).toBeGreaterThanOrEqual(limit);
  expect(allowed).toBeLessThan(2 * limit);
}

async function untilLimited(send: () => Promise<Response>, max: number): Promise<{ allowed: number; limited: Response }> {
  for (let i = 0; i < max; i++) {
    const res = await send();
    if (res.status === 429) return { allowed: i, limited: res };
    await res.body?.cancel();
  }
  throw new Error(`no 429 after ${max} requests`);
}

describe("abuse limits", () => {
  it("limits /auth per client address (60 a minute), not other addresses", async () => {
    const ip = "203.0.113.7";
    let n = 0;
    // A different workload each time, so only the address limit can bite.
    const { allowed, limited } = await untilLimited(() => call("/auth", { method: "POST", headers: { ...JSON_HEADERS, "cf-connecting-ip": ip }, body: authBody(`nobody-${++n}`) }), 200);
    expectLimit(allowed, 60);
    expect(limited.headers.get("retry-after")).toBe("60");
    await expectProblem(limited, 429, "rate-limited");
    const other = await call("/auth", { method: "POST", headers: { ...JSON_HEADERS, "cf-connecting-ip": "203.0.113.8" }, body: authBody("nobody") });
    expect(other.status).toBe(400);
  });

  it("limits failed admin authentications per address (10 a minute), then answers 429 instead of 401", async () => {
    const ip = "203.0.113.9";
    const body = { workload_id: "w", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" };
    const { allowed, limited } = await untilLimited(() => register(body, { authorization: "Bearer wrong", "cf-connecting-ip": ip }), 30);
    // Exact, unlike the per-location binding: the 11th attempt is refused.
    expect(allowed).toBe(10);
    await expectProblem(limited, 429, "rate-limited");
  });
});

async function fetchWith(overrides: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${BASE}${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const registration = { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ workload_id: "m", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }) };

describe("misconfiguration", () => {
  it.each([
    ["ADMIN_JWT_PUBLIC_KEYS", { ADMIN_JWT_PUBLIC_KEYS: "not json" }],
    ["ADMIN_JWT_MAX_TTL_SECONDS", { ADMIN_JWT_MAX_TTL_SECONDS: "an hour" }],
    ["KBS_MASTER_KEY", { KBS_MASTER_KEY: "k1:c2hvcnQ=" }],
    ["SESSION_TTL_SECONDS", { SESSION_TTL_SECONDS: "-1" }],
    ["CRL_MODE", { CRL_MODE: "sometimes" }],
    ["KDS_URL", { KDS_URL: "ftp://kds" }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
  ] as const)("a bad %s answers 503 kbs-misconfigured naming it", async (name, overrides) => {
    const res = await fetchWith(overrides as Partial<Env>, "/register_workload", registration);
    const problem = await expectProblem(res, 503, "kbs-misconfigured");
    expect(problem.detail).toContain(name);
    expect(problem.detail).not.toContain("c2hvcnQ");
  });

  it("a missing D1 table answers 503 kbs-misconfigured naming it", async () => {
    await env.DB.prepare("ALTER TABLE secrets RENAME TO secrets_elsewhere").run();
    try {
      const problem = await expectProblem(await call("/register_workload", registration), 503, "kbs-misconfigured");
      expect(problem.detail).toContain("secrets");
    } finally {
      await env.DB.prepare("ALTER TABLE secrets_elsewhere RENAME TO secrets").run();
    }
  });
});
