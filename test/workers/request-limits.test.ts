// Requests at the edges, one file so the pool starts one runtime for them (each file costs ~5 s to start):
// the body limit, the rate limits, the wrong protocol or method, the probes (/healthz, /readyz) and the OpenAPI
// document, misconfiguration, and (last) the D1 migrations.
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
// naming what to fix, and never quoting a key; /readyz names every such problem at once. (EXTRA_TRUSTED_ARKS, read inside the session object, is
// covered by sev-flow.test.ts, which runs the session class over a misconfigured env.)
//
// Last, the D1 migrations: a database of the first release upgraded by the later migrations.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { toHex, utf8 } from "../../src/crypto/bytes";
import { parseMasterKeys, sealSecret } from "../../src/crypto/seal";
import type { Env } from "../../src/env";
import { guestKey } from "../../lab/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { importChip } from "../../lab/synthetic-amd";
import { attestAs, releasedSecret } from "./flows";
import { ADMIN, auth, call, callThroughRuntime, expectProblem, fetchWith, register, registerSnp } from "./kbs";

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
    const res = await callThroughRuntime("/auth", { method: "POST", headers: JSON_HEADERS, body });
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

const registration = { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ workload_id: "m", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }) };

describe("wrong protocol or method", () => {
  it("tells a request of another protocol which ones are spoken", async () => {
    for (const body of [{ tee: "tdx", evidence: "…" }, { version: "0.0.0", tee: "snp" }, ["not", "an", "object"]]) {
      const problem = await expectProblem(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) }), 400, "protocol-unsupported");
      expect(problem.detail).toMatch(/^not a reference-kbs \(kbs-types 0\.2\) or Trustee KBS 0\.4\.0 \/auth: /);
    }
    const trustee = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ version: "0.1.0", tee: "snp", "extra-params": {} }) });
    expect(((await trustee.json()) as { detail: string }).detail).toBe("KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.1.0");
  });

  it("answers a known path asked with another method 405, naming the methods it takes", async () => {
    for (const [method, path, allow] of [
      ["GET", "/auth", "POST"],
      ["GET", "/attest/", "POST"],
      ["PUT", "/key/web-1", "GET"],
      ["GET", "/register_workload", "POST"],
      ["POST", "/admin/workloads/web-1", "GET, PATCH, DELETE"],
    ] as const) {
      const res = await call(path, { method, headers: ADMIN });
      expect(res.headers.get("allow"), `${method} ${path}`).toBe(allow);
      expect((await expectProblem(res, 405, "method-not-allowed")).detail).toContain(`takes ${allow.replaceAll(", ", " or ")}, not ${method}`);
    }
    // Trustee's paths keep Trustee's error shape.
    const res = await call("/resource/a/b/c", { method: "PUT", headers: ADMIN });
    expect([res.status, res.headers.get("allow"), ((await res.json()) as { type: string }).type]).toEqual([405, "GET, POST, DELETE", "https://github.com/confidential-containers/kbs/errors/PolicyDeny"]);
    await expectProblem(await call("/nowhere"), 404, "not-found");
  });
});

describe("probes and the API description", () => {
  it("answers /healthz and /readyz when all is well, and serves the OpenAPI document; each answer names its request", async () => {
    const live = await fetchWith({}, "/healthz");
    expect([live.status, await live.json()]).toEqual([200, { status: "ok" }]);
    expect(live.headers.get("x-request-id")).toMatch(/^[0-9a-f]{16}$/);
    const ready = await fetchWith({}, "/readyz", { headers: { "cf-ray": "8f0e1d2c3b4a5968-AMS" } });
    expect(ready.headers.get("x-request-id")).toBe("8f0e1d2c3b4a5968-AMS");
    expect(await ready.json()).toEqual({
      status: "ready",
      checks: ["settings", "d1-schema", "master-key", "admin-credentials", "trust-anchors", "token-signing-key"].map((name) => ({ name, ok: true })),
    });
    const doc = await call("/openapi.json");
    expect(doc.status).toBe(200);
    expect(((await doc.json()) as { openapi: string; paths: Record<string, unknown> }).paths).toHaveProperty(["/kbs/v0/admin/amd/certificates"]);
  });

  it("/readyz names every failing check, and no secret", async () => {
    const res = await fetchWith(
      { KBS_MASTER_KEY: "k1:c2hvcnQ=", ADMIN_TOKEN: "", ADMIN_JWT_PUBLIC_KEYS: "", TOKEN_SIGNING_KEY: "{\"d\":\"c2VjcmV0LWQ\"}", EXTRA_TRUSTED_ARKS: "-----BEGIN CERTIFICATE-----\nAAAA\n", LOG_LEVEL: "loud" },
      "/readyz",
    );
    const text = await res.text();
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const problem = JSON.parse(text) as { type: string; detail: string; checks: { name: string; ok: boolean; problem?: string }[] };
    expect(problem.type).toBe("urn:edgekbs:not-ready");
    expect(problem.detail).toBe("not ready: settings, master-key, admin-credentials, trust-anchors, token-signing-key");
    const problems = Object.fromEntries(problem.checks.map((c) => [c.name, c.problem ?? "ok"]));
    expect(problems).toMatchObject({ "d1-schema": "ok", settings: expect.stringContaining("LOG_LEVEL"), "master-key": expect.stringContaining("KBS_MASTER_KEY") });
    expect(problems["admin-credentials"]).toMatch(/ADMIN_TOKEN: neither it nor ADMIN_JWT_PUBLIC_KEYS is set/);
    expect(problems["trust-anchors"]).toContain("EXTRA_TRUSTED_ARKS");
    expect(problems["token-signing-key"]).toContain("TOKEN_SIGNING_KEY");
    for (const secret of ["c2hvcnQ", "c2VjcmV0LWQ"]) expect(text).not.toContain(secret);
  });
});

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

// D1 migrations: a database at the first release (0001), holding workloads, a sealed secret and audit rows,
// is upgraded by the later migrations and keeps its data; the Worker then serves it.
//
// This must stay the LAST describe of the file: it drops every D1 table and rebuilds the database, so any
// test after it would run on the first release's data instead of the fresh migrated database.
describe("migrations", () => {
  afterEach(() => vi.restoreAllMocks());

  async function dropEverything(): Promise<void> {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{ name: string }>();
    for (const { name } of results) await env.DB.prepare(`DROP TABLE "${name}"`).run();
  }

  it("upgrades a database from the first release and keeps its workloads, secrets and audit rows", async () => {
    const [first] = env.TEST_MIGRATIONS;
    expect(env.TEST_MIGRATIONS.length).toBeGreaterThan(1);
    await dropEverything();
    await applyD1Migrations(env.DB, [first!]);
    // /readyz tells a database the later migrations have not reached from one they have.
    const unmigrated = (await (await fetchWith({}, "/readyz")).json()) as { checks: { name: string; problem?: string }[] };
    expect(unmigrated.checks.find((c) => c.name === "d1-schema")?.problem).toMatch(/^DB: lacks workloads\.tee, workloads\.generation, audit_log\.shard: apply the migrations/);

    // What a database of the first release holds: an SNP and a SEV workload, a sealed passphrase, one audit row.
    const snp = { workloadId: "old-snp", measurement: new Uint8Array(await crypto.subtle.digest("SHA-384", utf8("old-snp"))), passphrase: "old-passphrase" };
    const sevDigest = "ab".repeat(32);
    const now = Date.now();
    const sealed = await sealSecret(await parseMasterKeys(env.KBS_MASTER_KEY), { workloadId: snp.workloadId, keyId: snp.workloadId, version: 1 }, utf8(snp.passphrase));
    await env.DB.batch([
      env.DB.prepare("INSERT INTO measurements VALUES (?1, ?2), (?3, ?4)").bind(snp.workloadId, toHex(snp.measurement), "old-sev", sevDigest),
      env.DB.prepare("INSERT INTO configs VALUES (?1, ''), ('old-sev', '{\"no_debug\":true}')").bind(snp.workloadId),
      env.DB.prepare("INSERT INTO workloads (workload_id, created_at, updated_at) VALUES (?1, ?2, ?2), ('old-sev', ?2, ?2)").bind(snp.workloadId, now),
      env.DB.prepare("INSERT INTO secrets (workload_id, key_id, version, kid, wrapped_key, ciphertext, created_at, created_by) VALUES (?1, ?1, 1, ?2, ?3, ?4, ?5, 'admin-token')").bind(
        snp.workloadId,
        sealed.kid,
        sealed.wrappedKey,
        sealed.ciphertext,
        now,
      ),
      env.DB.prepare("INSERT INTO audit_log VALUES (1, ?1, 'admin-token', 'workload.register', ?2, ?2, 1, NULL, 1, NULL, '{}', ?3, ?4)").bind(now, snp.workloadId, "0".repeat(64), "f".repeat(64)),
    ]);

    await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
    expect((await fetchWith({}, "/readyz")).status).toBe(200);

    const workload = async (id: string) => (await (await call(`/admin/workloads/${id}`, { headers: ADMIN })).json()) as { tee: string; generation: number; secrets: { version: number }[] };
    expect(await workload("old-sev")).toMatchObject({ tee: "sev", generation: 1 });
    expect(await workload(snp.workloadId)).toMatchObject({ tee: "snp", generation: 1, secrets: [{ version: 1 }] });
    // The old single chain is kept as it was, beside the sharded log.
    expect((await env.DB.prepare("SELECT count(*) AS n FROM audit_log_v1").first<{ n: number }>())!.n).toBe(1);

    // The upgraded workload still releases its old secret to its genuine guest, and registration works.
    const milan = await importChip(env.TEST_CHIPS[0]!);
    vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);
    const key = await guestKey();
    expect(await releasedSecret(key, await attestAs(milan, key, snp), snp.workloadId)).toBe(snp.passphrase);
    expect((await register({ workload_id: "new-after-upgrade", launch_measurement: "cd".repeat(48), tee_config: "", passphrase: "p" })).status).toBe(200);
  });
});
