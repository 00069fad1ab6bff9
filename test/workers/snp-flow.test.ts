import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { toHex } from "../../src/crypto/bytes";
import { guestKey, bindingOf, type GuestKey } from "../helpers/guest";
import { kdsResponder, type KdsMock } from "../helpers/kds-mock";
import { certChainPem, createCrl, createSyntheticChip, createVekFor, importChip, mutateReport, REPORT_OFFSETS, SERIALS, type SyntheticChip } from "../helpers/synthetic-amd";
import { toPem } from "../../src/crypto/pem";
import { attest, auth, call, expectProblem, exportAudit, getKey, register, registerSnp, runSessionAlarm, type Session } from "./kbs";

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
