// The legacy SEV / SEV-ES pre-attestation flow through the Worker, with the test playing the PSP of a
// synthetic platform (its ARK is in EXTRA_TRUSTED_ARKS) and libkrun's VMM (sorted-key JSON bodies).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { fromBase64, sha256, toHex, utf8 } from "../../src/crypto/bytes";
import type { Env } from "../../src/env";
import { AttestationSession, type BeginInit } from "../../src/session/session";
import { decodeSevCertificate } from "../../src/tee/sev/certs";
import { Algo, Usage, type Build } from "../../src/tee/sev/types";
import { sevArkPem } from "../../src/tee/trust";
import { guestClient, sevAuthBody, type SevSession } from "../../lab/guest-client";
import { importPdhPrivate, pspInjectSecret, pspLaunchStart, pspMeasure, type LaunchedGuest, type StartJson } from "../../lab/synthetic-sev";
import { ADMIN, call, expectProblem, fetchWith, getKey, register, runSessionAlarm, sessionStub, type Session } from "./kbs";

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", accept: "application/json" };
const BUILD: Build = { version: { major: 1, minor: 49 }, build: 6 };
const SEV_ES = JSON.stringify({ flags: { bits: 0x05 }, minfw: { major: 0, minor: 0 } });
let nextId = 0;

const trusted = env.TEST_SEV_PLATFORMS.trusted;

const client = guestClient(call);
const sevAuth = (workloadId: string, chain: unknown = trusted.chain, build = BUILD) => client.sevAuth(workloadId, chain, build);
const { sevAttest } = client;

interface Workload {
  workloadId: string;
  digest: Uint8Array;
  passphrase: string;
}

async function registerSev(teeConfig = SEV_ES, passphrase?: string): Promise<Workload> {
  const workloadId = `sev-${++nextId}`;
  const digest = await sha256(utf8(`kernel+initrd+cmdline of ${workloadId}`));
  const secret = passphrase ?? `luks passphrase of ${workloadId}`;
  const res = await register({ workload_id: workloadId, launch_measurement: toHex(digest), tee_config: teeConfig, passphrase: secret });
  expect(res.status, await res.clone().text()).toBe(200);
  return { workloadId, digest, passphrase: secret };
}

/** Registers a workload, opens a session and runs LAUNCH_START on the synthetic PSP. */
async function launch(teeConfig?: string, passphrase?: string): Promise<{ w: Workload; session: SevSession; guest: LaunchedGuest }> {
  const w = await registerSev(teeConfig, passphrase);
  const session = await sevAuth(w.workloadId);
  const guest = await pspLaunchStart(await importPdhPrivate(trusted), session.start);
  return { w, session, guest };
}

async function expectNoSecret(session: Session, w: Workload): Promise<void> {
  const res = await getKey(session, w.workloadId);
  expect(res.status).toBe(401);
  expect(await res.text()).not.toContain(w.passphrase);
}

/** The session's state and how many TEK/TIK rows its storage still holds. */
function stored(session: Session): Promise<{ state: string; keys: number }> {
  return runInDurableObject(sessionStub(session), (_o, state) => ({
    state: state.storage.sql.exec<{ state: string }>("SELECT state FROM session").one().state,
    keys: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sev").one().n,
  }));
}

/** The real kbs-types Milan request (a chain under AMD's pinned Milan ARK), registered as a SEV workload. */
async function genuineMilanRequest(): Promise<string> {
  const data = env.TEST_FIXTURES["sev-legacy/kbstypes-sev_request.json"];
  if (!data) throw new Error("missing fixture test/fixtures/sev-legacy/kbstypes-sev_request.json");
  const text = new TextDecoder().decode(fromBase64(data));
  const request = JSON.parse(text) as { "extra-params": { workload_id: string } };
  await register({ workload_id: request["extra-params"].workload_id, launch_measurement: "ab".repeat(32), tee_config: SEV_ES, passphrase: "x" });
  return text;
}

describe("the reference-kbs SEV / SEV-ES flow, end to end", () => {
  it("verifies the chain, wraps the transport keys to the PDH, checks the measurement and seals the secret", async () => {
    const { w, session, guest } = await launch();
    // The registered policy (ES | NO_DEBUG), closed with NO_KEY_SHARING, is what LAUNCH_START gets (and policy_mac covers).
    expect(session.start.policy).toEqual({ flags: { bits: 7 }, minfw: { major: 0, minor: 0 } });

    const measurement = await pspMeasure(guest, BUILD, w.digest);
    const res = await sevAttest(session, measurement);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");

    const secret = await getKey(session, w.workloadId);
    expect(secret.status).toBe(200);
    const text = await secret.text();
    // reference-kbs emits sorted keys: ciphertext first, then the header.
    expect(text).toMatch(/^\{"ciphertext":\[[0-9,]+\],"header":\{"flags":\{"bits":0\},"iv":\[[0-9,]+\],"mac":\[[0-9,]+\]\}\}$/);
    const packet = JSON.parse(text) as Parameters<typeof pspInjectSecret>[2];
    expect(packet.ciphertext).toHaveLength(512);
    const plaintext = await pspInjectSecret(guest, measurement.measure, packet);
    // The passphrase, NUL-terminated by the zero padding of the 512-byte slot.
    const end = plaintext.indexOf(0);
    expect(new TextDecoder().decode(plaintext.subarray(0, end))).toBe(w.passphrase);
    expect(plaintext.subarray(end).every((b) => b === 0)).toBe(true);
    expect(text).not.toContain(toHex(utf8(w.passphrase)));
  });

  it("seals a secret of exactly 512 bytes, and registration refuses 513", async () => {
    const { w, session, guest } = await launch(SEV_ES, "p".repeat(512));
    const measurement = await pspMeasure(guest, BUILD, w.digest);
    expect((await sevAttest(session, measurement)).status).toBe(200);
    const packet = (await (await getKey(session, w.workloadId)).json()) as Parameters<typeof pspInjectSecret>[2];
    expect(new TextDecoder().decode(await pspInjectSecret(guest, measurement.measure, packet))).toBe("p".repeat(512));

    const res = await register({ workload_id: "sev-too-long", launch_measurement: toHex(w.digest), tee_config: "", passphrase: "p".repeat(513) });
    expect((await expectProblem(res, 400, "body-invalid")).detail).toContain("512 bytes");
  });

  it("closes an empty tee_config (NO_DEBUG | NO_KEY_SHARING), opens only what it allows, and refuses reserved bits or non-policy JSON", async () => {
    expect((await launch("")).session.start.policy).toEqual({ flags: { bits: 3 }, minfw: { major: 0, minor: 0 } });
    const allowed = JSON.stringify({ flags: { bits: 4 }, minfw: { major: 1, minor: 2 }, allow_debug: true, allow_key_sharing: true });
    expect((await launch(allowed)).session.start.policy).toEqual({ flags: { bits: 4 }, minfw: { major: 1, minor: 2 } });
    const refused = async (teeConfig: string) => {
      const res = await register({ workload_id: "sev-bad-policy", launch_measurement: "00".repeat(32), tee_config: teeConfig, passphrase: "x" });
      return (await expectProblem(res, 400, "tee-config-invalid")).detail;
    };
    expect(await refused('{"flags":5}')).toMatch(/flags/);
    for (const bits of [0x40, 0x8000, 0xffff]) {
      expect(await refused(JSON.stringify({ flags: { bits }, minfw: { major: 0, minor: 0 } }))).toMatch(/^tee_config\.flags\.bits: 0x[0-9a-f]+ sets reserved bits 0x[0-9a-f]+ \(defined: 0x3f\)$/);
    }
  });

  it("answers the real kbs-types Milan request (AMD-pinned chain) with a well-formed challenge", async () => {
    // kbs-types' testdata carries extra-params as an object (later kbs-types); both forms are accepted.
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: await genuineMilanRequest() });
    expect(res.status, await res.clone().text()).toBe(200);
    const { start } = JSON.parse(((await res.json()) as { "extra-params": string })["extra-params"]) as { start: StartJson };
    // The guest owner's DH certificate: unsigned, ECDH P-384, usage PDH.
    expect(start.cert).toHaveLength(2084);
    const owner = decodeSevCertificate(Uint8Array.from(start.cert));
    expect([owner.usage, owner.algo, owner.publicKey.kind === "ec" && owner.publicKey.curve]).toEqual([Usage.PDH, Algo.ECDH_SHA256, 2]);
    expect(owner.signatures.map((s) => s.usage)).toEqual([Usage.INVALID, Usage.INVALID]);
    const s = start.session;
    expect([s.nonce.length, s.wrap_tk.length, s.wrap_iv.length, s.wrap_mac.length, s.policy_mac.length]).toEqual([16, 32, 16, 32, 32]);
  });
});

describe("SEV refusals", () => {
  it("refuses a measurement over a different launch digest, and the session is burnt with its TEK and TIK", async () => {
    const { w, session, guest } = await launch();
    expect(await stored(session)).toEqual({ state: "challenged", keys: 1 });
    const other = await sha256(utf8("a tampered initrd"));
    await expectProblem(await sevAttest(session, await pspMeasure(guest, BUILD, other)), 400, "sev-measurement-mismatch");
    expect(await stored(session)).toEqual({ state: "failed", keys: 0 });
    await expectNoSecret(session, w);
    // The correct measurement cannot be sent afterwards: a failed attest burns the nonce.
    await expectProblem(await sevAttest(session, await pspMeasure(guest, BUILD, w.digest)), 401, "session-invalid");
  });

  it("refuses a measurement made with another firmware build than the request declared", async () => {
    const { w, session, guest } = await launch();
    const measured = await pspMeasure(guest, { ...BUILD, build: BUILD.build + 1 }, w.digest);
    await expectProblem(await sevAttest(session, measured), 400, "sev-measurement-mismatch");
    await expectNoSecret(session, w);
  });

  it("refuses a measurement replayed from an earlier session (its TIK differs)", async () => {
    const first = await launch();
    const measurement = await pspMeasure(first.guest, BUILD, first.w.digest);
    expect((await sevAttest(first.session, measurement)).status).toBe(200);

    const again = await sevAuth(first.w.workloadId);
    await expectProblem(await sevAttest(again, measurement), 400, "sev-measurement-mismatch");
    await expectNoSecret(again, first.w);
  });

  it("a revocation at /key burns an attested session with its TEK and TIK", async () => {
    const { w, session, guest } = await launch();
    expect((await sevAttest(session, await pspMeasure(guest, BUILD, w.digest))).status).toBe(200);
    expect(await stored(session)).toEqual({ state: "attested", keys: 1 });
    const patch = await call(`/admin/workloads/${w.workloadId}`, { method: "PATCH", headers: { ...JSON_HEADERS, ...ADMIN }, body: JSON.stringify({ launch_measurement: "cd".repeat(32) }) });
    expect(patch.status).toBe(200);
    await expectProblem(await getKey(session, w.workloadId), 401, "session-revoked");
    expect(await stored(session)).toEqual({ state: "failed", keys: 0 });
  });

  it("refuses a second /attest on an attested session", async () => {
    const { w, session, guest } = await launch();
    const measurement = await pspMeasure(guest, BUILD, w.digest);
    expect((await sevAttest(session, measurement)).status).toBe(200);
    await expectProblem(await sevAttest(session, measurement), 409, "already-attested");
  });

  it("refuses a chain under an ARK that is neither AMD's nor listed by the operator", async () => {
    const w = await registerSev();
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(w.workloadId, env.TEST_SEV_PLATFORMS.unlisted.chain, BUILD) });
    expect((await expectProblem(res, 400, "sev-cert-untrusted-root")).detail).toMatch(/Naples|Milan/);
  });

  it("refuses a chain whose PDH signature was tampered with", async () => {
    const w = await registerSev();
    const chain = structuredClone(trusted.chain);
    chain.sev.pdh[0x41c + 5] ^= 0x01;
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(w.workloadId, chain, BUILD) });
    await expectProblem(res, 400, "sev-cert-chain-invalid");
  });

  it("refuses malformed requests and evidence with 400s that name the problem", async () => {
    const w = await registerSev();
    const chain = structuredClone(trusted.chain);
    chain.sev.pek = chain.sev.pek.slice(0, 100);
    await expectProblem(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(w.workloadId, chain, BUILD) }), 400, "sev-cert-malformed");

    const { session } = await launch();
    const bad = JSON.stringify({ "tee-evidence": JSON.stringify({ measure: [1, 2, 3], mnonce: [] }), "tee-pubkey": { alg: "", "k-exp": "", "k-mod": "" } });
    const res = await call("/attest", { method: "POST", headers: { ...JSON_HEADERS, cookie: session.cookie }, body: bad });
    await expectProblem(res, 400, "sev-request-malformed");
  });

  it("keeps SEV and SNP apart: a SEV workload cannot open an SNP session, nor a SEV session take SNP evidence", async () => {
    const { w, session } = await launch();
    const snpAuth = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ "extra-params": JSON.stringify({ workload_id: w.workloadId }), tee: "snp", version: "0.0.0" }) });
    await expectProblem(snpAuth, 400, "workload-tee-mismatch");

    const evidence = JSON.stringify({ gen: "milan", report: "00".repeat(1184), cert_chain: "[]" });
    const res = await call("/attest", { method: "POST", headers: { ...JSON_HEADERS, cookie: session.cookie }, body: JSON.stringify({ "tee-pubkey": { alg: "RSA", "k-mod": "AQAB", "k-exp": "AQAB" }, "tee-evidence": evidence }) });
    await expectProblem(res, 400, "evidence-tee-mismatch");
  });

  it("expires: the alarm deletes the session with its TEK and TIK", async () => {
    const { w, session, guest } = await launch();
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(session.nonce));
    expect(await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("SELECT count(*) AS n FROM sev").one().n)).toBe(1);
    await runInDurableObject(stub, (_i, state) => void state.storage.sql.exec("UPDATE session SET deadline = ?", Date.now() - 1));
    await runSessionAlarm(stub);
    const tables = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('sev', 'session')").toArray());
    expect(tables).toEqual([]);
    await expectProblem(await sevAttest(session, await pspMeasure(guest, BUILD, w.digest)), 401, "session-invalid");
  });
});

/**
 * POST /auth through the Worker to a session object whose env carries this EXTRA_TRUSTED_ARKS. The object
 * reads the variable from its own env, which the pool fixes per file, so the test builds the object as the
 * runtime does (its class, over a real object's storage) with the misconfigured env.
 */
async function authMisconfigured(extraArks: string, body: string): Promise<Response> {
  const misconfigured = { ...env, EXTRA_TRUSTED_ARKS: extraArks } as Env;
  const SESSIONS = {
    idFromName: (name: string) => env.SESSIONS.idFromName(name),
    get: (id: DurableObjectId) => ({ begin: (init: BeginInit) => runInDurableObject(env.SESSIONS.get(id), (_o, state) => new AttestationSession(state, misconfigured).begin(init)) }),
  };
  return fetchWith({ EXTRA_TRUSTED_ARKS: extraArks, SESSIONS: SESSIONS as unknown as Env["SESSIONS"] }, "/auth", { method: "POST", headers: { ...JSON_HEADERS, "cf-connecting-ip": "198.18.0.2" }, body });
}

describe("SEV with a misconfigured EXTRA_TRUSTED_ARKS", () => {
  it.each([
    ["AMD's X.509 Milan ARK in an AMD SEV ARK block", () => sevArkPem(fromBase64(env.TEST_FIXTURES["amd-roots/canonical/milan-ark.der"]!)), "EXTRA_TRUSTED_ARKS: extra SEV ARK 1: version "],
    ["a lab ARK without its self-signature", () => sevArkPem(Uint8Array.from(trusted.chain.ca.ark).subarray(0, 0x240)), "EXTRA_TRUSTED_ARKS: extra SEV ARK 1 has no self-signature"],
  ])("%s: every SEV /auth, even the genuine pinned chain, is 503 kbs-misconfigured naming it, and logged", async (_, extraArks, problem) => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const w = await registerSev();
      for (const body of [sevAuthBody(w.workloadId, trusted.chain, BUILD), await genuineMilanRequest()]) {
        const detail = (await expectProblem(await authMisconfigured(extraArks(), body), 503, "kbs-misconfigured")).detail;
        expect(detail.startsWith(problem), detail).toBe(true);
        expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)) as unknown)).toContainEqual({ request_id: expect.stringMatching(/^[0-9a-f]{16}$/), event: "misconfigured", detail });
        errors.mockClear();
      }
    } finally {
      errors.mockRestore();
    }
  });
});
