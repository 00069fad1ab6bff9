// The SNP guest flows end to end through the Worker: reference-kbs (libkrun's /auth, /attest, /key) and the
// Trustee protocol 0.4.0, their refusals, registration input, the SNP policy and AMD revocation; and, last,
// the hop accounting (what each endpoint waits on, counted on the real bindings; the README's hop table).
import { listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { AuditWitness } from "../../src/audit/witness";
import { LoginThrottle } from "../../src/auth/throttle";
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT, type JSONWebKeySet } from "jose";
import { toHex, utf8 } from "../../src/crypto/bytes";
import type { FlattenedJwe, TeeJwk } from "../../src/crypto/jwe";
import { guestKey, bindingOf, type GuestKey } from "../../lab/guest";
import { kdsResponder, type KdsMock } from "../helpers/kds-mock";
import { certChainPem, createCrl, createSyntheticChip, createVekFor, importChip, mutateReport, REPORT_OFFSETS, SERIALS, type SyntheticChip } from "../../lab/synthetic-amd";
import { toPem } from "../../src/crypto/pem";
import { openJwe, teeKeyPair } from "../../lab/trustee-guest";
import { AttestationSession } from "../../src/session/session";
import { trusteeAttestAs, trusteeAttestBody, trusteeBinding } from "./flows";
import {
  ADMIN,
  attest,
  auth,
  call,
  expectProblem,
  expectTrusteeProblem,
  exportAudit,
  getKey,
  getResource,
  putResource,
  register,
  registerSnp,
  runSessionAlarm,
  sessionStub,
  trusteeAttest,
  trusteeAuth,
  trusteeAuthBody,
  trusteeSessionStub,
  type Session,
} from "./kbs";

const PASSPHRASE = "correct horse battery staple";
let milan: SyntheticChip, turin: SyntheticChip, genoaVlek: SyntheticChip;
let key: GuestKey;
let kds: KdsMock;
let nextId = 0;

const measurementOf = (label: string) => crypto.subtle.digest("SHA-384", new TextEncoder().encode(label)).then((b) => new Uint8Array(b));

beforeAll(async () => {
  [milan, turin, genoaVlek] = await Promise.all(env.TEST_CHIPS.map(importChip)) as [SyntheticChip, SyntheticChip, SyntheticChip];
  key = await guestKey();
});

function mockKds(chips: SyntheticChip[]): KdsMock {
  kds = kdsResponder(chips);
  vi.spyOn(globalThis, "fetch").mockImplementation(kds.fetch);
  return kds;
}

afterEach(() => {
  vi.restoreAllMocks();
});

interface Prepared {
  workloadId: string;
  measurement: Uint8Array;
  session: Session;
  /** A report from `chip` bound to this session's nonce and the guest key. */
  report: (fields?: Parameters<SyntheticChip["report"]>[0], chip?: SyntheticChip) => Promise<Uint8Array>;
}

/** Register a fresh workload and open a session for it. */
async function prepare(chip: SyntheticChip, teeConfig = ""): Promise<Prepared> {
  const workloadId = `wl-${++nextId}`;
  const measurement = await measurementOf(workloadId);
  await registerSnp(workloadId, measurement, `${PASSPHRASE} ${workloadId}`, teeConfig);
  const session = await auth(workloadId);
  const reportData = await bindingOf(session.nonce, key);
  return {
    workloadId,
    measurement,
    session,
    report: (fields = {}, signer = chip) => signer.report({ measurement, reportData, ...fields }),
  };
}

/** The secret must not be obtainable after a refusal. */
async function expectNoSecret(p: Prepared): Promise<void> {
  const res = await getKey(p.session, p.workloadId);
  expect(res.status).toBe(401);
  expect(await res.text()).not.toContain(PASSPHRASE);
}

describe("the reference-kbs SNP flow, end to end", () => {
  it("registers, challenges, attests and releases the secret encrypted to the guest key (VCEK from KDS)", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const res = await attest(p.session, key, await p.report());
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");

    const secret = await getKey(p.session, p.workloadId);
    expect(secret.status).toBe(200);
    expect(secret.headers.get("content-type")).toBe("application/json");
    const body = await secret.text();
    expect(body).toMatch(/^"[0-9a-f]{512}"$/);
    expect(new TextDecoder().decode(key.decrypt(body.slice(1, -1)))).toBe(`${PASSPHRASE} ${p.workloadId}`);

    // KDS was asked for the VCEK by REPORTED_TCB and for the chain; the verified chain is now cached in D1.
    const tcb = milan.reportedTcb;
    expect(kds.calls.some((u) => u.includes(`/vcek/v1/Milan/${toHex(milan.chipId)}?`) && u.includes(`ucodeSPL=${tcb.microcode}`))).toBe(true);
    const cached = await env.DB.prepare("SELECT cache_key FROM amd_certs").all<{ cache_key: string }>();
    expect(cached.results.map((r) => r.cache_key)).toContain(`vcek/Milan/${toHex(milan.chipId)}/${tcb.raw}`);
  });

  it("verifies a Turin v5 report with the chain supplied in cert_chain, without asking KDS", async () => {
    mockKds([]);
    const p = await prepare(turin);
    const chain = toPem(turin.vekDer) + certChainPem(turin);
    const res = await attest(p.session, key, await p.report({ version: 5 }), { certChain: chain, gen: "turin" });
    expect(res.status, await res.clone().text()).toBe(200);
    // Only the revocation list is fetched; every certificate came with the evidence.
    expect(kds.calls).toEqual(["https://kdsintf.amd.com/vcek/v1/Turin/crl"]);
    const secret = await getKey(p.session, p.workloadId);
    expect(new TextDecoder().decode(key.decrypt((await secret.text()).slice(1, -1)))).toBe(`${PASSPHRASE} ${p.workloadId}`);
  });

  it("verifies a VLEK-signed report whose VLEK the guest supplies", async () => {
    mockKds([]);
    const p = await prepare(genoaVlek);
    const chain = JSON.stringify([genoaVlek.vekDer, genoaVlek.askDer, genoaVlek.arkDer].map((d) => toPem(d)));
    const res = await attest(p.session, key, await p.report(), { certChain: chain, gen: "genoa" });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await getKey(p.session, p.workloadId)).status).toBe(200);
  });

  it("accepts the C client's duplicated Cookie header and lowercase hex", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const doubled = { cookie: `${p.session.cookie}; ${p.session.cookie}` };
    expect((await attest(doubled, key, await p.report())).status).toBe(200);
    expect((await getKey(doubled, p.workloadId)).status).toBe(200);
  });
});

describe("refusals (status, problem type, and no secret afterwards)", () => {
  it("refuses /attest and /key without a cookie, with a malformed one, or with an unknown one", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const report = await p.report();
    for (const cookie of ["", "session_id=nothex", `session_id=${"0".repeat(32)}`, `session_id=${p.session.nonce}; session_id=${"1".repeat(32)}`]) {
      await expectProblem(await attest({ cookie }, key, report), 401, "session-invalid");
      await expectProblem(await getKey({ cookie }, p.workloadId), 401, "session-invalid");
    }
    // The real session is untouched by those attempts.
    expect((await attest(p.session, key, report)).status).toBe(200);
  });

  it("refuses /key before attestation", async () => {
    const p = await prepare(milan);
    await expectNoSecret(p);
  });

  it("refuses a report bound to another nonce or key (REPORT_DATA)", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const other = await auth(p.workloadId);
    const body = await expectProblem(await attest(p.session, key, await p.report({ reportData: await bindingOf(other.nonce, key) })), 400, "snp-policy");
    expect(body.detail).toContain("report_data");
    await expectNoSecret(p);
  });

  it("refuses the wrong measurement", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const body = await expectProblem(await attest(p.session, key, await p.report({ measurement: await measurementOf("other") })), 400, "snp-policy");
    expect(body.detail).toContain("measurement");
    await expectNoSecret(p);
  });

  it("refuses a report signed by another key", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const stranger = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, false, ["sign"])) as CryptoKeyPair;
    await expectProblem(await attest(p.session, key, await p.report({ signWith: stranger.privateKey })), 400, "snp-signature-invalid");
    await expectNoSecret(p);
  });

  it("refuses a report with one flipped byte", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const flipped = await mutateReport(await p.report(), REPORT_OFFSETS.hostData);
    await expectProblem(await attest(p.session, key, flipped), 400, "snp-signature-invalid");
    await expectNoSecret(p);
  });

  it("refuses a VCEK of another chip, and a VCEK of another TCB", async () => {
    mockKds([]);
    const otherChip = await createVekFor(milan, { chipId: crypto.getRandomValues(new Uint8Array(64)) });
    const otherTcb = await createVekFor(milan, { reportedTcb: { ...milan.reportedTcb, snp: milan.reportedTcb.snp + 1 } });
    // Each report claims the registered chip at its own TCB but is signed by the other VEK, which the guest supplies.
    const claims = { chipId: milan.chipId, reportedTcb: BigInt(`0x${milan.reportedTcb.raw}`) };
    for (const vek of [otherChip, otherTcb]) {
      const p = await prepare(milan);
      const res = await attest(p.session, key, await p.report(claims, vek), { certChain: toPem(vek.vekDer) + certChainPem(milan) });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { type: string }).type).toMatch(/^urn:edgekbs:snp-(vek-mismatch|signature-invalid)$/);
      await expectNoSecret(p);
    }
  });

  it("refuses a chain whose ARK is neither pinned nor listed", async () => {
    mockKds([]);
    const rogue = await createSyntheticChip({ product: "Milan" });
    const p = await prepare(milan);
    const res = await attest(p.session, key, await p.report({}, rogue), { certChain: toPem(rogue.vekDer) + certChainPem(rogue) });
    await expectProblem(res, 400, "snp-cert-untrusted-root");
    await expectNoSecret(p);
  });

  it("refuses a debug guest unless tee_config allows debug", async () => {
    mockKds([milan]);
    const debugPolicy = 0x30000n | (1n << 19n);
    const strict = await prepare(milan);
    const body = await expectProblem(await attest(strict.session, key, await strict.report({ policy: debugPolicy })), 400, "snp-policy");
    expect(body.detail).toContain("debug");
    await expectNoSecret(strict);

    const lenient = await prepare(milan, JSON.stringify({ allow_debug: true }));
    expect((await attest(lenient.session, key, await lenient.report({ policy: debugPolicy }))).status).toBe(200);
  });

  it("refuses VMPL 1", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const body = await expectProblem(await attest(p.session, key, await p.report({ vmpl: 1 })), 400, "snp-policy");
    expect(body.detail).toContain("vmpl");
    await expectNoSecret(p);
  });

  it("refuses /auth for an unknown workload, an SEV-registered one, and unknown or unsupported TEEs", async () => {
    await expectProblem(
      await call("/auth", { method: "POST", headers: { "content-type": "application/json" }, body: '{"extra-params":"{\\"workload_id\\":\\"nope\\"}","tee":"snp","version":"0.0.0"}' }),
      400,
      "workload-unknown",
    );
    await registerSnp("sev-only", new Uint8Array(32), "x");
    await expectProblem(
      await call("/auth", { method: "POST", headers: { "content-type": "application/json" }, body: '{"extra-params":"{\\"workload_id\\":\\"sev-only\\"}","tee":"snp","version":"0.0.0"}' }),
      400,
      "workload-tee-mismatch",
    );
    for (const tee of ["tdx", "quantum"]) {
      const body = await expectProblem(
        await call("/auth", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ version: "0.0.0", tee, "extra-params": "" }) }),
        400,
        "tee-unsupported",
      );
      expect(body.detail).toContain("supported: snp, sev");
    }
  });

  it("releases only the session's own workload's key", async () => {
    mockKds([milan]);
    const a = await prepare(milan);
    const b = await prepare(milan);
    expect((await attest(a.session, key, await a.report())).status).toBe(200);
    const res = await getKey(a.session, b.workloadId);
    await expectProblem(res, 401, "key-not-authorized");
    expect((await getKey(a.session, a.workloadId)).status).toBe(200);
  });

  it("refuses a second /attest on an attested session", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const report = await p.report();
    expect((await attest(p.session, key, report)).status).toBe(200);
    await expectProblem(await attest(p.session, key, report), 409, "already-attested");
  });

  it("burns the session after a failed /attest (single-use nonce)", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    await expectProblem(await attest(p.session, key, await p.report({ vmpl: 1 })), 400, "snp-policy");
    await expectProblem(await attest(p.session, key, await p.report()), 401, "session-invalid");
  });

  it("expires an unanswered challenge: the alarm deletes the session's storage", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(p.session.nonce));
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE session SET deadline = ?", Date.now() - 1);
    });
    await runSessionAlarm(stub);
    const left = await runInDurableObject(stub, (_instance, state) => state.storage.sql.exec("SELECT name FROM sqlite_master").toArray());
    expect(left).toEqual([]);
    // Nothing is wiped before it is exported: the session's audit row outlives it in D1.
    const { results } = await env.DB.prepare("SELECT event FROM audit_log WHERE shard = ?1").bind(`session/${stub.id.toString()}`).all<{ event: string }>();
    expect(results.map((r) => r.event)).toEqual(["auth"]);
    await expectProblem(await attest(p.session, key, await p.report()), 401, "session-invalid");
  });

  it("expires an attested session after its deadline even before the alarm fires", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    expect((await attest(p.session, key, await p.report())).status).toBe(200);
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(p.session.nonce));
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE session SET deadline = ?", Date.now() - 1);
    });
    await expectNoSecret(p);
  });

  it("answers 503 with Retry-After when KDS is down, and the challenge stays usable", async () => {
    const fresh = await createVekFor(milan, { chipId: crypto.getRandomValues(new Uint8Array(64)) });
    const mock = mockKds([fresh]);
    mock.fail = "outage";
    const p = await prepare(milan);
    const report = await p.report({ chipId: fresh.chipId }, fresh);
    const res = await attest(p.session, key, report);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    await expectProblem(res, 503, "certs-unavailable");
    mock.fail = "none";
    expect((await attest(p.session, key, report)).status).toBe(200);
  });
});

describe("registration and input discipline", () => {
  const valid = { workload_id: "reg-1", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" };

  it("requires the admin bearer token", async () => {
    await expectProblem(await register(valid, {}), 401, "admin-unauthorized");
    await expectProblem(await register(valid, { authorization: "Bearer wrong" }), 401, "admin-unauthorized");
    await expectProblem(await register(valid, { authorization: `Basic ${btoa("admin:x")}` }), 401, "admin-unauthorized");
    expect((await register(valid)).status).toBe(200);
  });

  it("validates the body with a precise 400", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...valid, launch_measurement: "ab".repeat(40) }, "launch_measurement"],
      [{ ...valid, launch_measurement: "zz".repeat(48) }, "launch_measurement"],
      [{ ...valid, workload_id: "" }, "workload_id"],
      [{ ...valid, workload_id: "a/b" }, "workload_id"],
      [{ ...valid, passphrase: "" }, "passphrase"],
      [{ ...valid, passphrase: "x".repeat(513) }, "passphrase"],
      [{ workload_id: "x" }, "launch_measurement"],
    ];
    for (const [body, field] of cases) {
      const problem = await expectProblem(await register(body), 400, "body-invalid");
      expect(problem.detail).toContain(field);
    }
    await expectProblem(await call("/register_workload", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${env.ADMIN_TOKEN}` }, body: "{" }), 400, "body-malformed");
    await expectProblem(await call("/register_workload", { method: "POST", headers: { "content-type": "text/plain", authorization: `Bearer ${env.ADMIN_TOKEN}` }, body: "{}" }), 415, "unsupported-media-type");
  });

  it("answers GET / with 401 like reference-kbs, and unknown routes with 404", async () => {
    await expectProblem(await call("/"), 401, "unauthorized");
    await expectProblem(await call("/nope"), 404, "not-found");
  });

  it("refuses oversized bodies with 413", async () => {
    await expectProblem(await call("/auth", { method: "POST", headers: { "content-type": "application/json" }, body: "x".repeat(300_000) }), 413, "body-too-large");
  });

  it("refuses malformed evidence and public keys with 400", async () => {
    const p = await prepare(milan);
    const report = await p.report();
    await expectProblem(await attest(p.session, { kMod: "not base64!", kExp: "AQAB" }, report), 400, "tee-pubkey-invalid");
    const q = await prepare(milan);
    await expectProblem(await attest(q.session, key, report.subarray(0, 1000)), 400, "evidence-malformed");
    const r = await prepare(milan);
    await expectProblem(await attest(r.session, key, report, { gen: "rome" }), 400, "body-invalid");
  });
});

describe("the SNP policy and AMD revocation through the Worker", () => {
  it("refuses an invalid policy at registration with the path of the problem", async () => {
    const base = { workload_id: "pol-1", launch_measurement: "ab".repeat(48), passphrase: "p" };
    const unknown = await expectProblem(await register({ ...base, tee_config: JSON.stringify({ tcb: { reported: { spl: 1 } } }) }), 400, "tee-config-invalid");
    expect(unknown.detail).toContain("tcb.reported.spl");
    const hex = await expectProblem(await register({ ...base, tee_config: JSON.stringify({ host_data: "abc" }) }), 400, "tee-config-invalid");
    expect(hex.detail).toContain("host_data");
    // The seed's free-form strings still mean the default policy.
    expect((await register({ ...base, tee_config: "any legacy text" })).status).toBe(200);
  });

  it("names the failing rule in the refusal and lists every failing rule with expected and actual values in the audit row", async () => {
    mockKds([milan]);
    const floor = { tcb: { reported: { snp: milan.reportedTcb.snp + 1, microcode: milan.reportedTcb.microcode } } };
    const p = await prepare(milan, JSON.stringify(floor));
    const res = await attest(p.session, key, await p.report());
    // The answer stays within libkrun's 200-byte buffer: it names the first rule, the audit row has them all.
    expect(new TextEncoder().encode(await res.clone().text()).length).toBeLessThanOrEqual(200);
    const body = await expectProblem(res, 400, "snp-policy");
    expect(body.detail).toContain("tcb.reported.snp");
    const shard = await exportAudit(p.session);
    const row = await env.DB.prepare("SELECT details FROM audit_log WHERE shard = ?1 AND event = 'attest'").bind(shard).first<{ details: string }>();
    expect((JSON.parse(row!.details) as { rules: unknown }).rules).toEqual([{ rule: "tcb.reported.snp", ok: false, expected: `>= ${milan.reportedTcb.snp + 1}`, actual: String(milan.reportedTcb.snp) }]);
    await expectNoSecret(p);
  });

  it("accepts an extra allowed measurement (rolling upgrade) and nothing else", async () => {
    mockKds([milan]);
    const next = await measurementOf("release 2");
    const p = await prepare(milan, JSON.stringify({ measurements: [toHex(next)] }));
    expect((await attest(p.session, key, await p.report({ measurement: next }))).status).toBe(200);
    const q = await prepare(milan, JSON.stringify({ measurements: [toHex(next)] }));
    await expectProblem(await attest(q.session, key, await q.report({ measurement: await measurementOf("release 3") })), 400, "snp-policy");
  });

  it("refuses a VCEK that the ARK's CRL revokes, and a CRL that its ARK did not sign", async () => {
    const fresh = await createVekFor(milan, { chipId: crypto.getRandomValues(new Uint8Array(64)), vekSerial: 0x4242 });
    const mock = mockKds([fresh]);
    mock.crls.set("Milan/VCEK", await createCrl(milan, { revokedSerials: [0x4242] }));
    const p = await prepare(milan);
    const res = await attest(p.session, key, await p.report({ chipId: fresh.chipId }, fresh));
    expect((await expectProblem(res, 400, "snp-cert-revoked")).detail).toContain("0x4242");
    await expectNoSecret(p);

    const forged = await createSyntheticChip({ product: "Milan" });
    mock.crls.set("Milan/VCEK", await createCrl(milan, { signWith: forged.arkPrivateKey }));
    const q = await prepare(milan);
    await expectProblem(await attest(q.session, key, await q.report()), 400, "snp-crl-invalid");
  });

  it("checks a current CRL that revokes nothing, and caches only AMD's own lists in D1", async () => {
    const mock = mockKds([milan]);
    mock.crls.set("Milan/VCEK", await createCrl(milan, { revokedSerials: [SERIALS.Milan.ask + 1] }));
    const p = await prepare(milan);
    expect((await attest(p.session, key, await p.report())).status).toBe(200);
    expect(mock.calls.some((u) => u.endsWith("/vcek/v1/Milan/crl"))).toBe(true);
    // A lab ARK's CRL must never occupy the Milan slot that AMD's list is cached in.
    expect(await env.DB.prepare("SELECT count(*) AS n FROM amd_crls").first("n")).toBe(0);
  });

  it("refuses at /attest a stored policy that no longer parses (written before validation existed)", async () => {
    mockKds([milan]);
    const p = await prepare(milan);
    await env.DB.prepare("UPDATE configs SET tee_config = ?1 WHERE workload_id = ?2").bind('{"vmpl":"zero"}', p.workloadId).run();
    await expectProblem(await attest(p.session, key, await p.report()), 400, "tee-config-invalid");
  });
});

describe("Trustee protocol 0.4.0", () => {
  const INIT_DATA = { format: "toml", body: 'algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"policy.rego" = "package agent_policy"\n' };

  /** A fresh SNP workload (registered as reference-kbs does) with one resource, uploaded as Trustee's admin client does. */
  async function trusteeWorkload(teeConfig = "", measurement?: Uint8Array) {
    const workloadId = `tr-${++nextId}`;
    const m = measurement ?? (await measurementOf(workloadId));
    await registerSnp(workloadId, m, `${PASSPHRASE} ${workloadId}`, teeConfig);
    const path = `${workloadId}/key/1`;
    const value = utf8(`resource of ${workloadId} ${toHex(crypto.getRandomValues(new Uint8Array(8)))}`);
    await putResource(workloadId, path, value);
    return { workloadId, measurement: m, path, value };
  }

  /** auth, then /attest with a report of `fields` bound to `nonce` (default: the session's) and `jwk`. */
  async function attestReport(guest: { jwk: TeeJwk }, fields: Parameters<SyntheticChip["report"]>[0], opts: { nonce?: string; initData?: typeof INIT_DATA } = {}) {
    const session = await trusteeAuth();
    const nonce = opts.nonce ?? session.nonce;
    const report = await milan.report({ reportData: await trusteeBinding(nonce, guest.jwk), ...fields });
    const body = trusteeAttestBody(report, nonce, guest.jwk, opts.initData ?? null);
    return { session, body, res: await trusteeAttest(session, body) };
  }

  it("runs auth → attest → resource with RSA-OAEP-256 and EC P-256 keys; the token is an EAR that verifies against the JWKS", async () => {
    mockKds([milan]);
    const w = await trusteeWorkload();
    const jwks = createLocalJWKSet((await (await call("/.well-known/jwks.json")).json()) as JSONWebKeySet);
    for (const kind of ["RSA-OAEP-256", "EC-P256"] as const) {
      const guest = await teeKeyPair(kind);
      const { session, body, res } = await attestReport(guest, { measurement: w.measurement });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(res.headers.get("set-cookie")).toMatch(new RegExp(`^${session.cookie}; Expires=`));
      const { token } = (await res.json()) as { token: string };
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { algorithms: ["ES256"] });
      expect(protectedHeader.kid).toBe("test-token-1");
      expect(payload).toMatchObject({
        eat_profile: "tag:github.com,2023:veraison/ear",
        iss: "edgekbs",
        edgekbs: { workload_id: w.workloadId },
        submods: {
          cpu0: {
            "ear.status": "affirming",
            "ear.veraison.annotated-evidence": {
              snp: { measurement: toHex(w.measurement), report_data: toHex(await trusteeBinding(session.nonce, guest.jwk)), policy_debug_allowed: false },
              runtime_data_claims: { nonce: session.nonce, "tee-pubkey": guest.jwk },
              init_data_claims: null,
            },
          },
        },
      });
      // As Trustee: a repeated /attest of the attested session answers its token again.
      expect(((await (await trusteeAttest(session, body)).json()) as { token: string }).token).toBe(token);
      const released = await getResource(w.path, session);
      expect(released.status).toBe(200);
      expect(released.headers.get("content-type")).toBe("application/json");
      expect(await openJwe((await released.json()) as FlattenedJwe, guest.privateKey)).toEqual(w.value);

      // The session's audit shard: no workload before /attest, then the one found, and the release by its path.
      const stub = trusteeSessionStub(session);
      await stub.exportAudit();
      const shard = `session/${stub.id.toString()}`;
      const { results } = await env.DB.prepare("SELECT event, workload, key_id, ok, details FROM audit_log WHERE shard = ? ORDER BY seq").bind(shard).all();
      expect(results.map((r) => [r.event, r.workload, r.key_id, r.ok])).toEqual([
        ["auth", null, null, 1],
        ["attest", w.workloadId, null, 1],
        ["secret.release", w.workloadId, w.path, 1],
      ]);
      expect(JSON.parse(results[1]!.details as string)).toMatchObject({ protocol: "trustee-0.4.0", measurement: toHex(w.measurement) });
    }
  });

  it("refuses protocol versions other than 0.4.0 with 401 naming it, and TEEs other than snp", async () => {
    const authWith = (version: string, tee: string) => call("/auth", { method: "POST", headers: { "content-type": "application/json" }, body: trusteeAuthBody(version, tee) });
    for (const version of ["0.3.0", "0.1.0"]) {
      const refused = await expectTrusteeProblem(await authWith(version, "snp"), 401, "AttestationError");
      expect(refused.detail).toBe(`KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is ${version}`);
    }
    expect((await expectTrusteeProblem(await authWith("0.4.0", "tdx"), 401, "AttestationError")).detail).toContain("supported: snp");
  });

  it("releases with the Bearer token alone; a tampered token, another signer's token or no credential is refused", async () => {
    mockKds([milan]);
    const w = await trusteeWorkload();
    const guest = await teeKeyPair("EC-P256");
    const { token } = await trusteeAttestAs(milan, guest, { measurement: w.measurement });
    const res = await getResource(w.path, { token });
    expect(res.status).toBe(200);
    expect(await openJwe((await res.json()) as FlattenedJwe, guest.privateKey)).toEqual(w.value);

    const tampered = `${token.slice(0, -2)}${token.at(-2) === "A" ? "B" : "A"}${token.at(-1)}`;
    await expectTrusteeProblem(await getResource(w.path, { token: tampered }), 401, "TokenVerifierError");
    const stranger = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])) as CryptoKeyPair;
    const forged = await new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: "ES256", kid: "test-token-1" }).sign(stranger.privateKey);
    await expectTrusteeProblem(await getResource(w.path, { token: forged }), 401, "TokenVerifierError");
    await expectTrusteeProblem(await call(`/resource/${w.path}`), 401, "TokenNotFound");
  });

  it("releases only the attested workload's resources, none through the other protocol's cookie, and none after revocation", async () => {
    mockKds([milan]);
    const a = await trusteeWorkload();
    const b = await trusteeWorkload();
    const { session, token } = await trusteeAttestAs(milan, await teeKeyPair("RSA-OAEP-256"), { measurement: a.measurement });
    await expectTrusteeProblem(await getResource(b.path, session), 401, "PolicyDeny");
    await expectTrusteeProblem(await getResource(b.path, { token }), 401, "PolicyDeny");
    await expectTrusteeProblem(await getResource("two/segments", session), 404, "InvalidRequestPath");
    // The Trustee session's id as a legacy cookie names no session.
    await expectProblem(await getKey({ cookie: session.cookie.replace("kbs-session-id", "session_id") }, a.workloadId), 401, "session-invalid");

    const patch = await call(`/admin/workloads/${a.workloadId}`, { method: "PATCH", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ tee_config: "{}" }) });
    expect(patch.status, await patch.clone().text()).toBe(200);
    expect((await expectTrusteeProblem(await getResource(a.path, session), 401, "PolicyDeny")).detail).toContain("attest again");
    // Revocation burnt the session: its token is worth nothing either.
    await expectTrusteeProblem(await getResource(a.path, { token }), 401, "PolicyDeny");
  });

  it("refuses a wrong nonce, a report bound to other runtime data, and init-data whose digest is not HOST_DATA; binds matching init-data", async () => {
    mockKds([milan]);
    const w = await trusteeWorkload();
    const guest = await teeKeyPair("EC-P256");
    const other = await trusteeAuth();
    const wrongNonce = await attestReport(guest, { measurement: w.measurement }, { nonce: other.nonce });
    expect((await expectTrusteeProblem(wrongNonce.res, 401, "AttestationError")).detail).toContain("nonce");
    // The nonce is single-use: the session is burnt.
    await expectTrusteeProblem(await trusteeAttest(wrongNonce.session, wrongNonce.body), 401, "AttestationError");

    const otherKey = await teeKeyPair("EC-P256");
    const wrongKey = await attestReport(guest, { measurement: w.measurement, reportData: await trusteeBinding(other.nonce, otherKey.jwk) });
    expect((await expectTrusteeProblem(wrongKey.res, 401, "AttestationError")).detail).toContain("report_data");

    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(INIT_DATA.body)));
    const wrongHost = await attestReport(guest, { measurement: w.measurement, hostData: new Uint8Array(32) }, { initData: INIT_DATA });
    expect((await expectTrusteeProblem(wrongHost.res, 401, "AttestationError")).detail).toContain("init_data");
    const bound = await attestReport(guest, { measurement: w.measurement, hostData: digest }, { initData: INIT_DATA });
    expect(bound.res.status, await bound.res.clone().text()).toBe(200);
    const claims = decodeJwt(((await bound.res.json()) as { token: string }).token) as { submods: { cpu0: Record<string, { snp: { init_data: string }; init_data_claims: unknown }> } };
    expect(claims.submods.cpu0["ear.veraison.annotated-evidence"]).toMatchObject({ snp: { init_data: toHex(digest) }, init_data_claims: { "policy.rego": "package agent_policy" } });
  });

  it("finds the workload whose policy accepts the evidence: none registered, several accepting, or a policy refusal is refused with the reason", async () => {
    mockKds([milan]);
    const guest = await teeKeyPair("EC-P256");
    const unregistered = await measurementOf("trustee-unregistered");
    const none = await attestReport(guest, { measurement: unregistered });
    expect((await expectTrusteeProblem(none.res, 401, "AttestationError")).detail).toBe(`no SNP workload is registered for measurement ${toHex(unregistered)}`);

    const shared = await measurementOf("trustee-shared");
    const [x, y] = [await trusteeWorkload("", shared), await trusteeWorkload("", shared)];
    const ambiguous = await expectTrusteeProblem((await attestReport(guest, { measurement: shared })).res, 401, "AttestationError");
    expect(ambiguous.detail).toContain(`"${x.workloadId}", "${y.workloadId}"`);

    // One image, two workloads told apart by HOST_DATA (as CoCo's init-data does).
    const image = await measurementOf("trustee-image");
    const hostData = (n: number) => new Uint8Array(32).fill(n);
    const [first, second] = [await trusteeWorkload(JSON.stringify({ host_data: toHex(hostData(1)) }), image), await trusteeWorkload(JSON.stringify({ host_data: toHex(hostData(2)) }), image)];
    const { session } = await trusteeAttestAs(milan, guest, { measurement: image, hostData: hostData(2) });
    expect((await getResource(second.path, session)).status).toBe(200);
    await expectTrusteeProblem(await getResource(first.path, session), 401, "PolicyDeny");
    // Neither accepts: the first candidate's failing rule is the reason.
    expect((await expectTrusteeProblem((await attestReport(guest, { measurement: image, hostData: hostData(3) })).res, 401, "AttestationError")).detail).toContain("host_data");

    // A workload whose policy lists the measurement (a rolling upgrade) is a candidate too.
    const upgraded = await measurementOf("trustee-upgraded");
    const rolling = await trusteeWorkload(JSON.stringify({ measurements: [toHex(upgraded)] }));
    const { session: upgradedSession } = await trusteeAttestAs(milan, guest, { measurement: upgraded });
    expect((await getResource(rolling.path, upgradedSession)).status).toBe(200);
  });
});

// Hop accounting: what each endpoint waits on before it answers, counted by instrumenting the real
// bindings (D1 round trips by the session type that made them, Durable Object calls by class). The README's
// hop table is this test's expectation; the targets are for a warm SNP flow: no global singleton, no D1
// primary, and the audit row durable (in the session's own object) before each answer.
//
// Two things differ from a file of its own. The file's afterEach restores every mock after each test, so the
// counting spies are installed before each test (beforeEach) rather than once; they are gone after each test
// and again after the describe (afterAll). And the counts are of every binding call in the isolate, so the
// sessions the tests above left with an export alarm due (1 s after their last step) are exported first:
// one firing during a counted step would add its D1 batch, witness note and session call to that step.
describe("hop accounting", () => {
  type Hop = "d1Primary" | "d1Replica" | "globalObject" | "addressObject" | "sessionObject" | "kds";
  type Count = Record<Hop, number>;

  const counts: Count[] = [];
  const hit = (hop: Hop) => counts.forEach((c) => c[hop]++);

  // A KDS of its own (no CRL, no failure mode left by the tests above), serving the file's Milan chip.
  let hopKds: KdsMock;

  beforeAll(async () => {
    hopKds = kdsResponder([milan]);
    // Run every session's pending export now; what stays scheduled is a deadline, minutes away.
    for (const id of await listDurableObjectIds(env.SESSIONS)) {
      const stub = env.SESSIONS.get(id);
      for (let runs = 0; runs < 10; runs++) {
        const at = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
        if (at === null || at > Date.now() + 60_000) break;
        await runDurableObjectAlarm(stub);
      }
    }
  });

  beforeEach(() => {
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      hit("kds");
      return hopKds.fetch(input, init);
    });
    // Every D1 round trip (first/all/run/raw/batch) goes through its session's _wrappedFetch; the database's
    // own session is the always-primary one, withSession() sessions may be served by a replica.
    const session = Object.getPrototypeOf(env.DB.withSession("first-unconstrained")) as { _wrappedFetch: (...a: unknown[]) => unknown };
    const original = session._wrappedFetch;
    vi.spyOn(session, "_wrappedFetch").mockImplementation(function (this: object, ...args: unknown[]) {
      hit(this.constructor.name === "D1DatabaseSessionAlwaysPrimary" ? "d1Primary" : "d1Replica");
      return original.apply(this, args);
    });
    for (const method of ["note", "list"] as const) {
      const real = AuditWitness.prototype[method] as (...a: unknown[]) => unknown;
      vi.spyOn(AuditWitness.prototype, method).mockImplementation(function (this: AuditWitness, ...args: unknown[]) {
        hit("globalObject");
        return real.apply(this, args) as never;
      });
    }
    for (const method of ["retryAfter", "failed"] as const) {
      const real = LoginThrottle.prototype[method] as (...a: unknown[]) => unknown;
      vi.spyOn(LoginThrottle.prototype, method).mockImplementation(function (this: LoginThrottle, ...args: unknown[]) {
        hit("addressObject");
        return real.apply(this, args) as never;
      });
    }
    for (const method of ["begin", "attestSnp", "attestSev", "releaseSecret", "beginTrustee", "attestTrustee", "releaseResource", "exportAudit"] as const) {
      const real = AttestationSession.prototype[method] as (...a: unknown[]) => unknown;
      vi.spyOn(AttestationSession.prototype, method).mockImplementation(function (this: AttestationSession, ...args: unknown[]) {
        hit("sessionObject");
        return real.apply(this, args) as never;
      });
    }
  });

  afterAll(() => vi.restoreAllMocks());

  /** Counts the hops of one step. */
  async function hops(step: () => Promise<unknown>): Promise<Count> {
    const c: Count = { d1Primary: 0, d1Replica: 0, globalObject: 0, addressObject: 0, sessionObject: 0, kds: 0 };
    counts.push(c);
    try {
      await step();
    } finally {
      counts.splice(counts.indexOf(c), 1);
    }
    return c;
  }

  /** One export batch for the whole flow, then the witness; sessionObject counts the export itself. */
  const EXPORT_ALARM: Count = { d1Primary: 1, d1Replica: 0, globalObject: 1, addressObject: 0, sessionObject: 1, kds: 0 };

  const ok = async (res: Promise<Response>) => {
    const r = await res;
    expect(r.status, await r.clone().text()).toBe(200);
    return r;
  };

  async function flow(workloadId: string, measurement: Uint8Array) {
    const table: Record<string, Count> = {};
    let session!: Awaited<ReturnType<typeof auth>>;
    table["POST /auth"] = await hops(async () => (session = await auth(workloadId)));
    const report = await milan.report({ measurement, reportData: await bindingOf(session.nonce, key) });
    table["POST /attest"] = await hops(() => ok(attest(session, key, report)));
    table["GET /key"] = await hops(() => ok(getKey(session, workloadId)));
    table["session alarm (after the answers)"] = await hops(() => runSessionAlarm(sessionStub(session)));
    return table;
  }

  /** The Trustee protocol's guest flow (guest-components): auth, attest, a resource by cookie and by token. */
  async function trusteeFlow(measurement: Uint8Array, path: string) {
    const table: Record<string, Count> = {};
    const guest = await teeKeyPair("EC-P256");
    let session!: Awaited<ReturnType<typeof trusteeAuth>>;
    table["POST /auth"] = await hops(async () => (session = await trusteeAuth()));
    const report = await milan.report({ measurement, reportData: await trusteeBinding(session.nonce, guest.jwk) });
    let token!: string;
    table["POST /attest"] = await hops(async () => ({ token } = (await (await ok(trusteeAttest(session, trusteeAttestBody(report, session.nonce, guest.jwk)))).json()) as { token: string }));
    table["GET /resource (cookie)"] = await hops(() => ok(getResource(path, session)));
    table["GET /resource (Bearer token)"] = await hops(() => ok(getResource(path, { token })));
    table["session alarm (after the answers)"] = await hops(() => runSessionAlarm(trusteeSessionStub(session)));
    return table;
  }

  it("a warm SNP flow waits on no global object and no D1 primary; admin calls and the export alarm are off the guest path", async () => {
    const workloadId = "hops-wl";
    const measurement = await measurementOf(workloadId);
    const registration = await hops(() => ok(register({ workload_id: workloadId, launch_measurement: toHex(measurement), tee_config: "", passphrase: "hops" })));
    await flow(workloadId, measurement); // cold: fills the certificate caches
    const warm = await flow(workloadId, measurement);
    const table = { "POST /register_workload": registration, ...warm };
    console.log(`hop table ${JSON.stringify(table)}`);

    for (const step of ["POST /auth", "POST /attest", "GET /key"]) {
      expect(table[step as keyof typeof table], step).toMatchObject({ d1Primary: 0, globalObject: 0, sessionObject: 1 });
    }
    expect(table).toEqual({
      // The secret's next version, the shard's head, then one batch: action and audit row together.
      "POST /register_workload": { d1Primary: 3, d1Replica: 0, globalObject: 1, addressObject: 1, sessionObject: 0, kds: 0 },
      "POST /auth": { d1Primary: 0, d1Replica: 1, globalObject: 0, addressObject: 0, sessionObject: 1, kds: 0 },
      // The workload and the cached CRL. The lab chip's CRL is fetched each time: only CRLs under AMD's
      // pinned ARKs are cached in D1, so for a real chip this is a replica read, not a KDS call.
      "POST /attest": { d1Primary: 0, d1Replica: 2, globalObject: 0, addressObject: 0, sessionObject: 1, kds: 1 },
      // The secret joined with the workload's generation (revocation), in one query.
      "GET /key": { d1Primary: 0, d1Replica: 1, globalObject: 0, addressObject: 0, sessionObject: 1, kds: 0 },
      "session alarm (after the answers)": EXPORT_ALARM,
    });
  });

  it("a warm Trustee flow (guest-components) waits on no global object and no D1 primary either", async () => {
    const workloadId = "hops-trustee";
    const measurement = await measurementOf(workloadId);
    await ok(register({ workload_id: workloadId, launch_measurement: toHex(measurement), tee_config: "", passphrase: "hops" }));
    await putResource(workloadId, `${workloadId}/key/1`, utf8("hops"));
    await trusteeFlow(measurement, `${workloadId}/key/1`); // cold: fills the certificate caches
    const table = await trusteeFlow(measurement, `${workloadId}/key/1`);
    console.log(`trustee hop table ${JSON.stringify(table)}`);
    // Each guest step: its session object, replica reads, no primary, no global or per-address object.
    const guestStep = (d1Replica: number, kds = 0): Count => ({ d1Primary: 0, d1Replica, globalObject: 0, addressObject: 0, sessionObject: 1, kds });
    expect(table).toEqual({
      // No D1 read: the workload is not known before /attest.
      "POST /auth": guestStep(0),
      // The workloads with this measurement, and the cached CRL (fetched from KDS for the lab chip, as above).
      "POST /attest": guestStep(2, 1),
      "GET /resource (cookie)": guestStep(1),
      // The token is verified in the Worker, then routed to the session object that issued it.
      "GET /resource (Bearer token)": guestStep(1),
      "session alarm (after the answers)": EXPORT_ALARM,
    });
  });
});
