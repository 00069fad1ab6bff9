// Hop accounting: what each endpoint waits on before it answers, counted by instrumenting the real
// bindings (D1 round trips by the session type that made them, Durable Object calls by class). The README's
// hop table is this test's expectation; the targets are for a warm SNP flow: no global singleton, no D1
// primary, and the audit row durable (in the session's own object) before each answer.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AuditWitness } from "../../src/audit/witness";
import { LoginThrottle } from "../../src/auth/throttle";
import { toHex, utf8 } from "../../src/crypto/bytes";
import { AttestationSession } from "../../src/session/session";
import { bindingOf, guestKey, type GuestKey } from "../helpers/guest";
import { kdsResponder, type KdsMock } from "../helpers/kds-mock";
import { importChip, type SyntheticChip } from "../helpers/synthetic-amd";
import { teeKeyPair } from "../helpers/trustee-guest";
import { trusteeAttestBody, trusteeBinding } from "./flows";
import { attest, auth, getKey, getResource, putResource, register, runSessionAlarm, sessionStub, trusteeAttest, trusteeAuth, trusteeSessionStub } from "./kbs";

type Hop = "d1Primary" | "d1Replica" | "globalObject" | "addressObject" | "sessionObject" | "kds";
type Count = Record<Hop, number>;

const counts: Count[] = [];
const hit = (hop: Hop) => counts.forEach((c) => c[hop]++);

let milan: SyntheticChip;
let key: GuestKey;
let kds: KdsMock;

beforeAll(async () => {
  milan = await importChip(env.TEST_CHIPS[0]!);
  key = await guestKey();
  kds = kdsResponder([milan]);
  vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
    hit("kds");
    return kds.fetch(input, init);
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

describe("hop accounting", () => {
  it("a warm SNP flow waits on no global object and no D1 primary; admin calls and the export alarm are off the guest path", async () => {
    const workloadId = "hops-wl";
    const measurement = new Uint8Array(await crypto.subtle.digest("SHA-384", utf8(workloadId)));
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
    const measurement = new Uint8Array(await crypto.subtle.digest("SHA-384", utf8(workloadId)));
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
