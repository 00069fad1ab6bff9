// Issue 9's findings, one test each, through the Worker with real D1, Durable Objects, alarms and rate
// limiters. Crash safety uses fault-injection seams (src/faults.ts): a seam throws where a kill could land,
// and the test shows the service recovers by itself, the audit log verifies, and no action exists
// without its audit row (nor a row without its action).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { verifyAuditLog } from "../../src/audit/client";
import { toBase64, toHex, utf8 } from "../../src/crypto/bytes";
import { armFault, disarmFaults } from "../../src/faults";
import { adminJwt } from "../helpers/admin-jwt";
import { bindingOf, guestKey, type GuestKey } from "../../lab/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { createVekFor, importChip, type SyntheticChip } from "../../lab/synthetic-amd";
import { attestAs, registerWorkload, releasedSecret, type Registered } from "./flows";
import { ADMIN, attest, auth, call, expectProblem, exportAudit, getKey, register, runSessionAlarm, sessionStub, type Session } from "./kbs";

let milan: SyntheticChip;
let key: GuestKey;

beforeAll(async () => {
  milan = await importChip(env.TEST_CHIPS[0]!);
  key = await guestKey();
});

afterEach(() => {
  disarmFaults();
  vi.restoreAllMocks();
});

const mockKds = () => vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);
const JSON_HEADERS = { "content-type": "application/json" };
const verify = () => verifyAuditLog((input, init) => call(String(input).replace("http://kbs.test/kbs/v0", ""), init), "http://kbs.test", env.ADMIN_TOKEN!, 100);
const adminCall = (path: string, init: RequestInit = {}, headers: Record<string, string> = ADMIN) =>
  call(`/admin${path}`, { ...init, headers: { ...JSON_HEADERS, ...headers, ...(init.headers as Record<string, string>) } });

const registered = (prefix = "f") => registerWorkload(prefix);
const attested = (w: Registered) => attestAs(milan, key, w);
const secretOf = (session: Session, keyId: string) => releasedSecret(key, session, keyId);

const rowsOf = async (shard: string) =>
  (await env.DB.prepare("SELECT seq, event, ok, reason, version FROM audit_log WHERE shard = ?1 ORDER BY seq").bind(shard).all<{ seq: number; event: string; ok: number; reason: string | null; version: number | null }>()).results;
const count = async (sql: string, ...binds: unknown[]) => (await env.DB.prepare(sql).bind(...binds).first<{ n: number }>())!.n;

describe("1 and 7: crash safety at every pair of writes", () => {
  it("admin: a fault between the action and its audit row rolls both back; the next registration and the audit succeed", async () => {
    armFault("admin.in-batch");
    const res = await register({ workload_id: "crash-admin", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" });
    expect(res.status).toBe(500);
    expect(await count("SELECT count(*) AS n FROM workloads WHERE workload_id = 'crash-admin'")).toBe(0);
    expect(await count("SELECT count(*) AS n FROM secrets WHERE workload_id = 'crash-admin'")).toBe(0);
    expect(await rowsOf("admin/crash-admin")).toEqual([]);
    // Nothing is stuck: the same registration now lands with exactly one row.
    expect((await register({ workload_id: "crash-admin", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" })).status).toBe(200);
    expect((await rowsOf("admin/crash-admin")).map((r) => [r.seq, r.event, r.version])).toEqual([[1, "workload.register", 1]]);
    expect((await verify()).ok).toBe(true);
  });

  it("admin: a fault after the commit (before the witness hears of it) keeps the action, its row and a verifiable log", async () => {
    await registered("crash-w");
    armFault("admin.after-commit");
    const res = await register({ workload_id: "crash-w2", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" });
    expect(res.status).toBe(200);
    expect(await rowsOf("admin/crash-w2")).toHaveLength(1);
    expect((await verify()).ok).toBe(true);
    // The witness catches up with the next action on that shard.
    expect((await register({ workload_id: "crash-w2", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "q" })).status).toBe(200);
    expect((await rowsOf("admin/crash-w2")).map((r) => r.seq)).toEqual([1, 2]);
    expect((await verify()).ok).toBe(true);
  });

  it("session: a fault between the state change and its audit row leaves neither; the guest simply retries", async () => {
    mockKds();
    const w = await registered();
    const session = await auth(w.workloadId);
    const report = await milan.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) });
    armFault("session.before-audit");
    expect((await attest(session, key, report)).status).toBe(500);
    const state = await runInDurableObject(sessionStub(session), (_i, s) => s.storage.sql.exec<{ state: string }>("SELECT state FROM session").one().state);
    expect(state).toBe("challenged");
    // The same evidence now attests, and the release follows.
    expect((await attest(session, key, report)).status).toBe(200);
    expect(await secretOf(session, w.workloadId)).toBe(w.passphrase);
    const shard = await exportAudit(session);
    expect((await rowsOf(shard)).map((r) => [r.seq, r.event, r.ok])).toEqual([
      [1, "auth", 1],
      [2, "attest", 1],
      [3, "secret.release", 1],
    ]);
    expect((await verify()).ok).toBe(true);
  });

  it("session: an export that dies after D1 committed is repeated without duplicates; a lost witness call only delays the witness", async () => {
    mockKds();
    const w = await registered();
    const session = await attested(w);
    await secretOf(session, w.workloadId);
    const stub = sessionStub(session);
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: unknown) => void errors.push(String(line)));
    // The export alarm dies after D1 took the rows: it logs, and its next run repeats the export.
    armFault("outbox.after-export");
    await runSessionAlarm(stub);
    expect(errors.at(-1)).toContain("audit.export-failed");
    const shard = `session/${env.SESSIONS.idFromName(session.nonce).toString()}`;
    expect(await rowsOf(shard)).toHaveLength(3);
    armFault("session.before-witness");
    await runSessionAlarm(stub);
    expect(errors.at(-1)).toContain("audit.export-failed");
    expect(await rowsOf(shard)).toHaveLength(3);
    expect((await verify()).ok).toBe(true);
    // The next release exports and is witnessed; the log still verifies, every row once.
    await secretOf(session, w.workloadId);
    await runSessionAlarm(stub);
    expect((await rowsOf(shard)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect((await verify()).ok).toBe(true);
  });
});

describe("2: malformed DER in cert_chain", () => {
  it("answers 400, burns the nonce and audits the refusal", async () => {
    mockKds();
    const w = await registered();
    const session = await auth(w.workloadId);
    const report = await milan.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) });
    // A SEQUENCE holding a GeneralizedTime "abc": asn1js throws a plain Error on it.
    const pem = `-----BEGIN CERTIFICATE-----\n${toBase64(Uint8Array.from([0x30, 0x05, 0x18, 0x03, 0x61, 0x62, 0x63]))}\n-----END CERTIFICATE-----\n`;
    const res = await attest(session, key, report, { certChain: pem });
    expect(res.status, await res.clone().text()).toBe(400);
    expect(((await res.json()) as { type: string }).type).toMatch(/^urn:edgekbs:/);
    await expectProblem(await attest(session, key, report), 401, "session-invalid");
    const shard = await exportAudit(session);
    expect((await rowsOf(shard)).map((r) => [r.event, r.ok])).toEqual([
      ["auth", 1],
      ["attest", 0],
    ]);
  });
});

describe("3: revocation reaches attested sessions", () => {
  it("a new measurement (PATCH) refuses the next /key of a session attested before it", async () => {
    mockKds();
    const w = await registered();
    const session = await attested(w);
    expect(await secretOf(session, w.workloadId)).toBe(w.passphrase);
    const res = await adminCall(`/workloads/${w.workloadId}`, { method: "PATCH", body: JSON.stringify({ launch_measurement: "cd".repeat(48) }) });
    expect(res.status).toBe(200);
    await expectProblem(await getKey(session, w.workloadId), 401, "session-revoked");
    // Revoked for good: the session is burnt.
    await expectProblem(await getKey(session, w.workloadId), 401, "session-invalid");
  });

  it("a policy change (PATCH tee_config) and a soft DELETE revoke too", async () => {
    mockKds();
    const a = await registered();
    const sa = await attested(a);
    expect((await adminCall(`/workloads/${a.workloadId}`, { method: "PATCH", body: JSON.stringify({ tee_config: '{"allow_debug":true}' }) })).status).toBe(200);
    await expectProblem(await getKey(sa, a.workloadId), 401, "session-revoked");
    const b = await registered();
    const sb = await attested(b);
    expect((await adminCall(`/workloads/${b.workloadId}`, { method: "DELETE" })).status).toBe(204);
    await expectProblem(await getKey(sb, b.workloadId), 401, "session-revoked");
  });

  it("rotating a secret is not a revocation: the session gets the newest live version", async () => {
    mockKds();
    const w = await registered();
    const session = await attested(w);
    expect((await adminCall(`/workloads/${w.workloadId}/secrets/${w.workloadId}`, { method: "PUT", body: JSON.stringify({ value: "rotated" }) })).status).toBe(201);
    expect(await secretOf(session, w.workloadId)).toBe("rotated");
  });
});

describe("4: nobody can lock a workload out", () => {
  it("challenges do not spend a workload's budget: 40 /auth from anywhere, then the genuine guest attests", async () => {
    mockKds();
    const w = await registered();
    for (let i = 0; i < 40; i++) {
      const res = await call("/auth", { method: "POST", headers: { ...JSON_HEADERS, "cf-connecting-ip": `192.0.2.${i + 1}` }, body: JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: w.workloadId }) }) });
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    expect(await secretOf(await attested(w), w.workloadId)).toBe(w.passphrase);
  });

  it("unverifiable evidence does not spend it either; only fresh AMD-signed evidence the policy refuses does", async () => {
    mockKds();
    const w = await registered();
    // 35 forgeries: the right measurement and binding, but a broken signature, so they cost nothing.
    for (let i = 0; i < 35; i++) {
      const session = await auth(w.workloadId);
      const forged = await milan.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) });
      forged[0x2a0] ^= 1;
      const res = await attest(session, key, forged);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { type: string }).type).not.toBe("urn:edgekbs:snp-policy");
    }
    expect(await secretOf(await attested(w), w.workloadId)).toBe(w.passphrase);
    // Genuine evidence of the wrong measurement, bound to each nonce: counted, and limited after 30 a minute.
    const wrong = new Uint8Array(48).fill(7);
    let limited = 0;
    for (let i = 0; i < 65 && limited === 0; i++) {
      const session = await auth(w.workloadId);
      const res = await attest(session, key, await milan.report({ measurement: wrong, reportData: await bindingOf(session.nonce, key) }));
      if (res.status === 429) limited = i;
      else await expectProblem(res, 400, "snp-policy");
    }
    expect(limited).toBeGreaterThanOrEqual(30);
  });
});

describe("5: forged cookies cost the attacker, not the service", () => {
  it("writes no audit row and no object storage, and is limited per address", async () => {
    // Outside 198.51.100.0/24, which call() picks addresses from at random: the limiter is shared by every file.
    const ip = "198.18.0.1";
    const forged: string[] = [];
    const statuses: number[] = [];
    const evidence = JSON.stringify({ gen: "milan", report: "00".repeat(1184), cert_chain: "[]" });
    const attestBody = JSON.stringify({ "tee-pubkey": { alg: "RSA", "k-mod": key.kMod, "k-exp": key.kExp }, "tee-evidence": evidence });
    // 30 a minute per address, in fixed windows: a run that straddles a window's end gets its 429 later, but
    // within 61 requests whatever the timing.
    for (let i = 0; i < 70 && statuses.at(-1) !== 429; i++) {
      const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
      forged.push(id);
      const headers = { ...JSON_HEADERS, cookie: `session_id=${id}`, "cf-connecting-ip": ip };
      const res = i % 2 ? await call(`/key/${"k".repeat(128)}`, { headers }) : await call("/attest", { method: "POST", headers, body: attestBody });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, -1).every((s) => s === 401)).toBe(true);
    expect(statuses.length).toBeGreaterThanOrEqual(31);
    for (const id of forged) {
      const object = env.SESSIONS.idFromName(id);
      expect(await count("SELECT count(*) AS n FROM audit_log WHERE shard = ?1", `session/${object.toString()}`)).toBe(0);
      expect(await runInDurableObject(env.SESSIONS.get(object), (_i, s) => s.storage.sql.exec("SELECT name FROM sqlite_master").toArray())).toEqual([]);
    }
  });

  it("refuses key ids over 128 characters before any lookup", async () => {
    const lookups = vi.spyOn(env.SESSIONS, "get");
    await expectProblem(await call(`/key/${"k".repeat(129)}`, { headers: { cookie: `session_id=${"0".repeat(32)}` } }), 400, "body-invalid");
    expect(lookups).not.toHaveBeenCalled();
  });
});

describe("6: concurrent registration", () => {
  it("20 concurrent registrations of one id each answer 200 or 409, never 500, and each 200 has its own version and row", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => register({ workload_id: "race", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: `p${i}` }).then((r) => r.status)),
    );
    expect(results.every((s) => s === 200 || s === 409)).toBe(true);
    const ok = results.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThan(0);
    expect(await count("SELECT count(*) AS n FROM secrets WHERE workload_id = 'race'")).toBe(ok);
    expect((await rowsOf("admin/race")).map((r) => r.version)).toEqual(Array.from({ length: ok }, (_, i) => i + 1));
    expect((await verify()).ok).toBe(true);
  });
});

describe("8: failed-login limiting runs before the credential check", () => {
  it("after 10 failures an address gets 429 even with the right token; other addresses are unaffected", async () => {
    const ip = "203.0.113.99";
    const body = { workload_id: "guess", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" };
    for (let i = 0; i < 10; i++) await expectProblem(await register(body, { authorization: `Bearer wrong-${i}`, "cf-connecting-ip": ip }), 401, "admin-unauthorized");
    const right = await register(body, { ...ADMIN, "cf-connecting-ip": ip });
    await expectProblem(right, 429, "rate-limited");
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await register(body, { ...ADMIN, "cf-connecting-ip": "203.0.113.100" })).status).toBe(200);
  });
});

describe("9: passphrases are never silently altered", () => {
  it("refuses a raw 0xFF byte and a lone surrogate with 400", async () => {
    const prefix = utf8(`{"workload_id":"utf","launch_measurement":"${"ab".repeat(48)}","tee_config":"","passphrase":"a`);
    const raw = new Uint8Array([...prefix, 0xff, ...utf8('"}')]);
    await expectProblem(await call("/register_workload", { method: "POST", headers: { ...JSON_HEADERS, ...ADMIN }, body: raw }), 400, "body-malformed");
    const lone = `{"workload_id":"utf","launch_measurement":"${"ab".repeat(48)}","tee_config":"","passphrase":"a\\ud800"}`;
    await expectProblem(await call("/register_workload", { method: "POST", headers: { ...JSON_HEADERS, ...ADMIN }, body: lone }), 400, "body-malformed");
    await expectProblem(await adminCall("/workloads/utf/secrets/k", { method: "PUT", body: '{"value":"\\udc00x"}' }), 400, "body-malformed");
    expect(await count("SELECT count(*) AS n FROM workloads WHERE workload_id = 'utf'")).toBe(0);
  });
});

describe("10: unmanageable workload ids", () => {
  it("refuses . and .. at registration", async () => {
    for (const id of [".", ".."]) {
      await expectProblem(await register({ workload_id: id, launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }), 400, "body-invalid");
    }
    expect((await register({ workload_id: "...", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" })).status).toBe(200);
  });
});

describe("11: admin JWTs", () => {
  const [ed] = env.TEST_JWT_SIGNERS;
  const body = (id: string) => ({ workload_id: id, launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" });
  const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });

  it("refuses a lifetime over ADMIN_JWT_MAX_TTL_SECONDS (7200 by default)", async () => {
    const now = Math.floor(Date.now() / 1000);
    // adminJwt sets iat to now and exp relative to it.
    await expectProblem(await register(body("jwt-ttl"), bearer(await adminJwt(ed!, { exp: 253402300799 - now }))), 401, "admin-unauthorized");
    await expectProblem(await register(body("jwt-ttl"), bearer(await adminJwt(ed!, { exp: 7300 }))), 401, "admin-unauthorized");
    expect((await register(body("jwt-ttl"), bearer(await adminJwt(ed!, { exp: 7100 })))).status).toBe(200);
  });

  it("records the static token and JWT subjects apart", async () => {
    expect((await register(body("jwt-actor"), bearer(await adminJwt(ed!, { sub: "token" })))).status).toBe(200);
    expect((await register(body("jwt-actor"))).status).toBe(200);
    const actors = (await env.DB.prepare("SELECT actor FROM audit_log WHERE shard = 'admin/jwt-actor' ORDER BY seq").all<{ actor: string }>()).results.map((r) => r.actor);
    expect(actors).toEqual(["jwt:/token", "token"]);
  });

  it("a scope matches an id exactly, or a prefix that ends in a separator", async () => {
    const web = bearer(await adminJwt(ed!, { scope: "web" }));
    expect((await register(body("web"), web)).status).toBe(200);
    await expectProblem(await register(body("webhook-prod"), web), 403, "admin-forbidden");
    const webDash = bearer(await adminJwt(ed!, { scope: "web-" }));
    expect((await register(body("web-prod"), webDash)).status).toBe(200);
    await expectProblem(await register(body("webhook-prod"), webDash), 403, "admin-forbidden");
  });
});

describe("12: methods, caching and refusal sizes", () => {
  it("answers HEAD /key with 405 and releases nothing", async () => {
    mockKds();
    const w = await registered();
    const session = await attested(w);
    const res = await call(`/key/${w.workloadId}`, { method: "HEAD", headers: { cookie: session.cookie } });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
    const shard = await exportAudit(session);
    expect((await rowsOf(shard)).map((r) => r.event)).toEqual(["auth", "attest"]);
  });

  it("puts Cache-Control: no-store on challenges, secrets, admin data and refusals", async () => {
    mockKds();
    const w = await registered();
    const session = await auth(w.workloadId);
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: w.workloadId }) }) });
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect((await adminCall("/workloads")).headers.get("cache-control")).toBe("no-store");
    expect((await adminCall(`/workloads/${w.workloadId}`)).headers.get("cache-control")).toBe("no-store");
    expect((await getKey(session, w.workloadId)).headers.get("cache-control")).toBe("no-store");
  });

  it("keeps every refusal body within 200 bytes, however long its detail", async () => {
    const longId = "x".repeat(128);
    const answers = [
      await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: longId }) }) }),
      await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ version: "0.0.0", tee: "é".repeat(60), "extra-params": "{}" }) }),
      await register({ workload_id: longId, launch_measurement: "zz", tee_config: "{", passphrase: "" }),
      await adminCall(`/workloads/${longId}`),
    ];
    for (const res of answers) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      const text = await res.text();
      expect(new TextEncoder().encode(text).length, text).toBeLessThanOrEqual(200);
      expect(JSON.parse(text)).toMatchObject({ type: expect.stringMatching(/^urn:edgekbs:/) });
    }
  });
});

describe("14: a failed cache write does not fail attestation", () => {
  it("attests and releases while every write to the certificate cache fails", async () => {
    // A chip this isolate has never seen, so its VCEK comes from KDS and is written to the cache.
    const fresh = await createVekFor(milan);
    vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([fresh]).fetch);
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: unknown) => void errors.push(String(line)));
    await env.DB.prepare("CREATE TRIGGER cache_write_fails BEFORE INSERT ON amd_certs BEGIN SELECT RAISE(ABORT, 'disk full'); END").run();
    try {
      const before = await count("SELECT count(*) AS n FROM amd_certs");
      const w = await registered();
      const session = await auth(w.workloadId);
      const res = await attest(session, key, await fresh.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) }));
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await secretOf(session, w.workloadId)).toBe(w.passphrase);
      await vi.waitFor(() => expect(errors.some((e) => e.includes("cache.write-failed"))).toBe(true));
      expect(await count("SELECT count(*) AS n FROM amd_certs")).toBe(before);
    } finally {
      await env.DB.prepare("DROP TRIGGER cache_write_fails").run();
    }
  });
});

describe("15: two /attest calls of one session", () => {
  it("run one after the other: one attests, the other is refused, and the secret is sealed to the winner's key", async () => {
    mockKds();
    const w = await registered("race");
    const session = await auth(w.workloadId);
    const keys = [key, await guestKey()];
    // Both reports are genuine and bound to this session, each to its own key: without serialisation both would pass.
    const reports = await Promise.all(keys.map(async (k) => milan.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, k) })));
    const answers = await Promise.all(keys.map((k, i) => attest(session, k, reports[i]!)));
    const statuses = answers.map((r) => r.status);
    expect([...statuses].sort()).toEqual([200, 409]);
    await expectProblem(answers[statuses.indexOf(409)]!, 409, "already-attested");
    expect(await releasedSecret(keys[statuses.indexOf(200)]!, session, w.workloadId)).toBe(w.passphrase);
  });
});
