// Property-based abuse of every endpoint through the Worker: random and mutated bodies, headers, cookies
// and paths. Whatever arrives, the answer is never a 5xx, never carries secret bytes, is never cached, is
// problem+json within 200 bytes when refused, and refused calls change nothing.
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { toBase64, toHex, utf8 } from "../../src/crypto/bytes";
import { bindingOf, guestKey, type GuestKey } from "../../lab/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { importChip, type SyntheticChip } from "../../lab/synthetic-amd";
import { attest, auth, call, getKey, register, type Session } from "./kbs";

const PASSPHRASE = "fuzz-target-passphrase-7f3a9c";
const WORKLOAD = "fuzz-wl";
let milan: SyntheticChip;
let key: GuestKey;
let attested: Session;
let measurement: Uint8Array;

const SECRET_FORMS = [PASSPHRASE, toHex(utf8(PASSPHRASE)), toBase64(utf8(PASSPHRASE)), env.ADMIN_TOKEN!];

beforeAll(async () => {
  milan = await importChip(env.TEST_CHIPS[0]!);
  key = await guestKey();
  vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);
  measurement = new Uint8Array(await crypto.subtle.digest("SHA-384", utf8(WORKLOAD)));
  expect((await register({ workload_id: WORKLOAD, launch_measurement: toHex(measurement), tee_config: "", passphrase: PASSPHRASE })).status).toBe(200);
  attested = await auth(WORKLOAD);
  const report = await milan.report({ measurement, reportData: await bindingOf(attested.nonce, key) });
  expect((await attest(attested, key, report)).status).toBe(200);
});

afterAll(() => vi.restoreAllMocks());

/** The tables a refused call must never change. */
async function snapshot(): Promise<string> {
  const tables = ["workloads", "measurements", "configs", "secrets"];
  const rows = await Promise.all(tables.map((t) => env.DB.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()));
  return JSON.stringify(rows.map((r) => r.results));
}

const validBodies = [
  `{"extra-params":"{\\"workload_id\\":\\"${WORKLOAD}\\"}","tee":"snp","version":"0.0.0"}`,
  `{"tee-pubkey":{"alg":"RSA","k-mod":"${"A".repeat(342)}==","k-exp":"AQAB"},"tee-evidence":"{\\"gen\\":\\"milan\\",\\"report\\":\\"${"AB".repeat(1184)}\\",\\"cert_chain\\":\\"[]\\"}"}`,
  `{"tee-evidence":"{\\"measure\\":[${Array(32).fill(1)}],\\"mnonce\\":[${Array(16).fill(2)}]}","tee-pubkey":{"alg":"","k-exp":"","k-mod":""}}`,
  `{"workload_id":"${WORKLOAD}","launch_measurement":"${"ab".repeat(48)}","tee_config":"","passphrase":"x"}`,
  `{"extra-params":"{\\"build\\":{\\"build\\":6,\\"version\\":{\\"major\\":1,\\"minor\\":49}},\\"chain\\":{},\\"workload_id\\":\\"${WORKLOAD}\\"}","tee":"sev","version":"0.0.0"}`,
  `{"value":"new-secret"}`,
  `{"launch_measurement":"${"cd".repeat(48)}"}`,
];

/** A valid body with a few random edits: the inputs most likely to slip past a parser. */
const mutatedBody = fc
  .tuple(fc.constantFrom(...validBodies), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 }), fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 4 }))
  .map(([body, edits]) =>
    edits.reduce((b, [pos, kind, text]) => {
      const i = pos % (b.length + 1);
      return kind === 0 ? b.slice(0, i) + text + b.slice(i) : kind === 1 ? b.slice(0, i) + b.slice(i + 1 + text.length) : b.slice(0, i) + text + b.slice(i + text.length);
    }, body),
  );

const body = fc.oneof(mutatedBody, fc.json(), fc.string({ maxLength: 200 }), fc.constantFrom(...validBodies), fc.uint8Array({ maxLength: 64 }).map((b) => String.fromCharCode(...b)));
const contentType = fc.option(fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "APPLICATION/JSON", "application/problem+json"), { nil: undefined });
/** Cookies, some naming the attested session (built after it exists). */
const sessionCookie = () => fc.oneof(
  fc.constant(undefined),
  fc.stringMatching(/^[0-9a-f]{32}$/).map((id) => `session_id=${id}`),
  fc.string({ maxLength: 80 }),
  fc.stringMatching(/^[0-9a-f]{32}$/).map((id) => `session_id=${id}; session_id=${attested.cookie.slice(11)}`),
  fc.constant(`session_id=${attested.cookie.slice(11).toUpperCase()}`),
);
const authorization = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 60 }).map((t) => `Bearer ${t}`), fc.string({ maxLength: 60 }), fc.constant("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ."));
const segment = fc.oneof(fc.constantFrom(WORKLOAD, "fuzz-other", "..", "%2e%2e", "%00", "a".repeat(200)), fc.string({ minLength: 1, maxLength: 40 }).map(encodeURIComponent));
/**
 * The route groups, one test each, RUNS_PER_GROUP requests per group.
 *
 * Requests go to the Worker's handler directly (test/workers/kbs.ts `call`), not through exports.default.fetch:
 * @cloudflare/vitest-pool-workers 0.15.1 wraps its wrapper class's shared prototype in one more Proxy on every
 * construction (one per exports.default.fetch call, one per new Durable Object instance), so request N of a file
 * cost O(N) that way (cloudflare/workers-sdk#15092, fixed upstream by #15106): 700 + 300 runs took 130-250 s.
 * Forged cookies still create session object wrappers, so the runs stay moderate; the parsers behind these
 * routes are fuzzed at high volume, without HTTP, in test/node/parsers-fuzz.test.ts.
 */
const RUNS_PER_GROUP = 150;
const ROUTE_GROUPS: Record<string, [string, string][]> = {
  "the guest protocol": [
    ["POST", "/auth"],
    ["POST", "/attest"],
    ["GET", "/key/:s"],
    ["GET", "/"],
  ],
  "registration and admin": [
    ["POST", "/register_workload"],
    ["GET", "/admin/workloads"],
    ["GET", "/admin/workloads/:s"],
    ["PATCH", "/admin/workloads/:s"],
    ["PUT", "/admin/workloads/:s/secrets/:s"],
    ["DELETE", "/admin/workloads/:s"],
    ["POST", "/admin/rewrap"],
    ["GET", "/admin/audit"],
  ],
};
const request = (routes: [string, string][]) => fc.record({
  route: fc.constantFrom(...routes),
  segment,
  body,
  contentType,
  cookie: sessionCookie(),
  authorization,
});

describe("fuzzing every endpoint", () => {
  // One test per route group (see RUNS_PER_GROUP for why the runs are few).
  for (const [name, routes] of Object.entries(ROUTE_GROUPS)) {
  it(`${name}: never 5xx, never the secret, problem+json refusals, no state change`, async () => {
    const before = await snapshot();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request(routes), async (r) => {
        const [method, template] = r.route as [string, string];
        const path = template.replaceAll(":s", r.segment);
        const headers: Record<string, string> = {};
        if (r.contentType) headers["content-type"] = r.contentType;
        if (r.cookie !== undefined) headers.cookie = r.cookie;
        if (r.authorization !== undefined) headers.authorization = r.authorization;
        const res = await call(path, { method, headers, ...(method === "GET" ? {} : { body: r.body }) });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, `${method} ${path} → ${text.slice(0, 200)}`).toBeLessThan(500);
        for (const form of SECRET_FORMS) expect(text).not.toContain(form);
        expect(res.headers.get("cache-control")).toBe("no-store");
        if (res.status >= 400) {
          expect(res.headers.get("content-type")).toBe("application/problem+json");
          expect((JSON.parse(text) as { type: string }).type).toMatch(/^urn:edgekbs:[a-z0-9-]+$/);
          // libkrun's C client reads refusals into a 200-byte buffer.
          expect(new TextEncoder().encode(text).length, text).toBeLessThanOrEqual(200);
        }
      }),
      { numRuns: RUNS_PER_GROUP },
    );
    // No call above held a valid admin credential, so nothing may have been written.
    expect(await snapshot()).toBe(before);
    // Mostly refusals (400/401/404/405/413/415/429); a 200 can only be /key with the attested cookie.
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    // The attested session is unaffected by everything thrown at it.
    const res = await getKey(attested, WORKLOAD);
    expect(res.status).toBe(200);
    expect(new TextDecoder().decode(key.decrypt((await res.text()).slice(1, -1)))).toBe(PASSPHRASE);
  }, 120_000);
  }

  it("treats a missing, malformed, unknown, burnt or expired cookie alike (no oracle)", async () => {
    const burnt = await auth(WORKLOAD);
    await attest(burnt, key, new Uint8Array(1184));
    const answers = await Promise.all(
      [undefined, "session_id=zz", `session_id=${"0".repeat(32)}`, burnt.cookie, "other=1"].map(async (cookie) => {
        const res = await call(`/key/${WORKLOAD}`, { headers: cookie ? { cookie } : {} });
        return `${res.status} ${await res.text()}`;
      }),
    );
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toMatch(/^401 .*session-invalid/);
  });
});
