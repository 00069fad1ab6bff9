// The legacy SEV / SEV-ES pre-attestation flow through the Worker, with the test playing the PSP of a
// synthetic platform (its ARK is in EXTRA_TRUSTED_ARKS) and libkrun's VMM (sorted-key JSON bodies).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fromBase64, sha256, toHex, utf8 } from "../../src/crypto/bytes";
import { decodeSevCertificate } from "../../src/tee/sev/certs";
import { Algo, Usage, type Build } from "../../src/tee/sev/types";
import { importPdhPrivate, pspInjectSecret, pspLaunchStart, pspMeasure, type LaunchedGuest, type StartJson } from "../helpers/synthetic-sev";
import { call, expectProblem, getKey, register, runSessionAlarm, type Session } from "./kbs";

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", accept: "application/json" };
const BUILD: Build = { version: { major: 1, minor: 49 }, build: 6 };
const SEV_ES = JSON.stringify({ flags: { bits: 0x05 }, minfw: { major: 0, minor: 0 } });
let nextId = 0;

const trusted = env.TEST_SEV_PLATFORMS.trusted;

/** libkrun's VMM body: both JSON levels built with json!(), so keys come out sorted. */
function sevAuthBody(workloadId: string, chain: unknown, build: Build = BUILD): string {
  const request = { build: { build: build.build, version: build.version }, chain, workload_id: workloadId };
  return JSON.stringify({ "extra-params": JSON.stringify(sortKeys(request)), tee: "sev", version: "0.0.0" });
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value) || value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
}

interface SevSession extends Session {
  start: StartJson;
  extraParams: string;
}

async function sevAuth(workloadId: string, chain: unknown = trusted.chain, build?: Build): Promise<SevSession> {
  const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(workloadId, chain, build) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`auth failed: ${res.status} ${text}`);
  // Outer keys sorted (serde_json::Value), inner string in struct order.
  expect(text.startsWith('{"extra-params":"{\\"id\\":')).toBe(true);
  const challenge = JSON.parse(text) as { nonce: string; "extra-params": string };
  const sev = JSON.parse(challenge["extra-params"]) as { id: string; start: StartJson };
  expect(sev.id).toBe(challenge.nonce);
  const cookie = /^session_id=([0-9a-f]{32}); SameSite=Strict; Path=\/$/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  expect(cookie).toBe(challenge.nonce);
  return { nonce: challenge.nonce, cookie: `session_id=${cookie}`, start: sev.start, extraParams: challenge["extra-params"] };
}

/** The VMM's /attest: tee-evidence is json!(Measurement).to_string(); the tee-pubkey is empty. */
function sevAttest(session: Pick<Session, "cookie">, m: { measure: Uint8Array; mnonce: Uint8Array }): Promise<Response> {
  const evidence = JSON.stringify({ measure: [...m.measure], mnonce: [...m.mnonce] });
  return call("/attest", {
    method: "POST",
    headers: { ...JSON_HEADERS, cookie: session.cookie },
    body: JSON.stringify({ "tee-evidence": evidence, "tee-pubkey": { alg: "", "k-exp": "", "k-mod": "" } }),
  });
}

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

describe("the reference-kbs SEV / SEV-ES flow, end to end", () => {
  it("verifies the chain, wraps the transport keys to the PDH, checks the measurement and seals the secret", async () => {
    const { w, session, guest } = await launch();
    // The policy the guest owner registered is what LAUNCH_START gets (and what policy_mac covers).
    expect(session.start.policy).toEqual({ flags: { bits: 5 }, minfw: { major: 0, minor: 0 } });

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

  it("uses the default policy for an empty tee_config and refuses a tee_config that is not SEV policy JSON", async () => {
    const { session } = await launch("");
    expect(session.start.policy).toEqual({ flags: { bits: 0 }, minfw: { major: 0, minor: 0 } });
    const res = await register({ workload_id: "sev-bad-policy", launch_measurement: "00".repeat(32), tee_config: '{"flags":5}', passphrase: "x" });
    expect((await expectProblem(res, 400, "tee-config-invalid")).detail).toMatch(/flags/);
  });

  it("answers the real kbs-types Milan request (AMD-pinned chain) with a well-formed challenge", async () => {
    const data = env.TEST_FIXTURES["sev-legacy/kbstypes-sev_request.json"];
    if (!data) throw new Error("missing fixture test/fixtures/sev-legacy/kbstypes-sev_request.json");
    // kbs-types' testdata carries extra-params as an object (later kbs-types); both forms are accepted.
    const request = JSON.parse(new TextDecoder().decode(fromBase64(data))) as { "extra-params": { workload_id: string } };
    const sev = request["extra-params"];
    await register({ workload_id: sev.workload_id, launch_measurement: "ab".repeat(32), tee_config: SEV_ES, passphrase: "x" });

    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(request) });
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
  it("refuses a measurement over a different launch digest, and the session is burnt", async () => {
    const { w, session, guest } = await launch();
    const other = await sha256(utf8("a tampered initrd"));
    await expectProblem(await sevAttest(session, await pspMeasure(guest, BUILD, other)), 400, "sev-measurement-mismatch");
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

  it("refuses a second /attest on an attested session", async () => {
    const { w, session, guest } = await launch();
    const measurement = await pspMeasure(guest, BUILD, w.digest);
    expect((await sevAttest(session, measurement)).status).toBe(200);
    await expectProblem(await sevAttest(session, measurement), 409, "already-attested");
  });

  it("refuses a chain under an ARK that is neither AMD's nor listed by the operator", async () => {
    const w = await registerSev();
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(w.workloadId, env.TEST_SEV_PLATFORMS.unlisted.chain) });
    expect((await expectProblem(res, 400, "sev-cert-untrusted-root")).detail).toMatch(/Naples|Milan/);
  });

  it("refuses a chain whose PDH signature was tampered with", async () => {
    const w = await registerSev();
    const chain = structuredClone(trusted.chain);
    chain.sev.pdh[0x41c + 5] ^= 0x01;
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(w.workloadId, chain) });
    await expectProblem(res, 400, "sev-cert-chain-invalid");
  });

  it("refuses malformed requests and evidence with 400s that name the problem", async () => {
    const w = await registerSev();
    const chain = structuredClone(trusted.chain);
    chain.sev.pek = chain.sev.pek.slice(0, 100);
    await expectProblem(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(w.workloadId, chain) }), 400, "sev-cert-malformed");

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
