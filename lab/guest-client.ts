// The guest side of the KBS protocols over any transport: the workers tests call the Worker in-process, the
// demo and the crash drill call a local server over HTTP. Every body is byte for byte what the real client
// sends (libkrun's init and VMM for reference-kbs, guest-components for Trustee), and every answer's shape is
// checked, so a flow that returns at all has seen the wire format the real clients expect.
import { concat, fromBase64Loose, toHex, utf8 } from "../src/crypto/bytes";
import type { TeeJwk } from "../src/crypto/jwe";
import { toPem } from "../src/crypto/pem";
import type { Build } from "../src/tee/sev/types";
import { bindingOf, type GuestKey } from "./guest";
import type { SyntheticChip } from "./synthetic-amd";
import { pspInjectSecret, pspLaunchStart, pspMeasure, type StartJson } from "./synthetic-sev";
import { openJwe, serdeCertChain, serdeFromReport } from "./trustee-guest";

/** Sends a request to `/kbs/v0<path>`. */
export type Call = (path: string, init?: RequestInit) => Promise<Response>;

/** A Call to the KBS listening at `origin` (e.g. http://127.0.0.1:8787); a failure names the request and its cause. */
export function httpCall(origin: string): Call {
  return async (path, init = {}) => {
    try {
      return await fetch(`${origin}/kbs/v0${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
    } catch (e) {
      throw new Error(`${init.method ?? "GET"} /kbs/v0${path}: ${String((e as Error).cause ?? e)}`);
    }
  };
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", accept: "application/json" };

export interface Session {
  nonce: string;
  cookie: string;
}

export interface SevSession extends Session {
  start: StartJson;
  extraParams: string;
}

/** Prints a step of a flow; the demo narrates, the tests pass nothing. */
export type Log = (line: string) => void;

/** What a whole flow needs to know of a registered workload. */
export interface Workload {
  workloadId: string;
  measurement: Uint8Array;
}

/** libkrun's VMM body: both JSON levels built with json!(), so keys come out sorted. */
export function sevAuthBody(workloadId: string, chain: unknown, build: Build): string {
  const request = { build: { build: build.build, version: build.version }, chain, workload_id: workloadId };
  return JSON.stringify({ "extra-params": JSON.stringify(sortKeys(request)), tee: "sev", version: "0.0.0" });
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value) || value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
}

/** What guest-components sends to /auth. */
export function trusteeAuthBody(version = "0.4.0", tee = "snp"): string {
  return JSON.stringify({ version, tee, "extra-params": { "supported-hash-algorithms": ["sha256", "sha384", "sha512", "sm3"] } });
}

/**
 * REPORT_DATA a Trustee guest binds: SHA-384 over the JCS text of {additional-evidence, nonce, tee-pubkey},
 * zero-padded to 64 bytes. Written here from the spec (sorted keys, no whitespace: for these flat ASCII
 * members JCS is JSON.stringify with sorted keys), independently of src/trustee/runtime-data.ts.
 */
export async function trusteeBinding(nonce: string, jwk: TeeJwk, additionalEvidence = ""): Promise<Uint8Array> {
  const sortedJwk = Object.fromEntries(Object.entries(jwk).sort(([a], [b]) => (a < b ? -1 : 1)));
  const text = JSON.stringify({ "additional-evidence": additionalEvidence, nonce, "tee-pubkey": sortedJwk });
  return concat(new Uint8Array(await crypto.subtle.digest("SHA-384", utf8(text))), new Uint8Array(16));
}

/**
 * The /attest body guest-components sends. By default the VCEK is left to the KBS (cert_chain null); a lab
 * chip, which KDS does not know, sends its chain.
 */
export function trusteeAttestBody(report: Uint8Array, nonce: string, jwk: TeeJwk, initData: { format: string; body: string } | null = null, chip?: SyntheticChip): unknown {
  const certChain = chip ? serdeCertChain([{ type: chip.signer, der: chip.vekDer }, { type: "ASK", der: chip.askDer }, { type: "ARK", der: chip.arkDer }]) : null;
  return {
    "init-data": initData,
    "runtime-data": { nonce, "tee-pubkey": jwk },
    "tee-evidence": { primary_evidence: { attestation_report: serdeFromReport(report), cert_chain: certChain }, additional_evidence: "" },
  };
}

/** The VEK, ASK and ARK of a chip as the legacy evidence's cert_chain: what a guest sends when KDS is out of reach. */
export const certChainOf = (chip: SyntheticChip) => toPem(chip.vekDer) + toPem(chip.askDer) + toPem(chip.arkDer);

/** A refusal as an error naming the step, the status and the body. */
async function expectOk(step: string, res: Response): Promise<Response> {
  if (res.status !== 200) throw new Error(`${step}: ${res.status} ${await res.text()}`);
  return res;
}

/** The session id in reference-kbs's exact Set-Cookie of /auth, or undefined if the header is not that. */
const legacyCookie = (res: Response): string | undefined => /^session_id=([0-9a-f]{32}); SameSite=Strict; Path=\/$/.exec(res.headers.get("set-cookie") ?? "")?.[1];

/** Each guest request of the three protocols, over `call`. */
export function guestClient(call: Call) {
  const client = {
    /** libkrun's exact /auth body; returns the nonce and the cookie header to send back. */
    async auth(workloadId: string): Promise<Session> {
      const res = await expectOk("auth", await call("/auth", { method: "POST", headers: JSON_HEADERS, body: `{"extra-params":"{\\"workload_id\\":\\"${workloadId}\\"}","tee":"snp","version":"0.0.0"}` }));
      const { nonce } = (await res.json()) as { nonce: string };
      const cookie = legacyCookie(res);
      if (cookie !== nonce) throw new Error("cookie and nonce differ");
      return { nonce, cookie: `session_id=${cookie}` };
    },

    attest(session: Pick<Session, "cookie">, key: { kMod: string; kExp: string }, report: Uint8Array, opts: { certChain?: string; gen?: string } = {}): Promise<Response> {
      // The C client's field order and UPPERCASE hex.
      const evidence = JSON.stringify({ gen: opts.gen ?? "milan", report: toHex(report).toUpperCase(), cert_chain: opts.certChain ?? "[]" });
      return call("/attest", {
        method: "POST",
        headers: { ...JSON_HEADERS, cookie: session.cookie },
        body: JSON.stringify({ "tee-pubkey": { alg: "RSA", "k-mod": key.kMod, "k-exp": key.kExp }, "tee-evidence": evidence }),
      });
    },

    getKey(session: Pick<Session, "cookie">, keyId: string): Promise<Response> {
      return call(`/key/${keyId}`, { headers: { ...JSON_HEADERS, cookie: session.cookie } });
    },

    /** SEV /auth as libkrun's VMM: the platform's chain (as the clients send it) and its firmware build. */
    async sevAuth(workloadId: string, chain: unknown, build: Build): Promise<SevSession> {
      const res = await expectOk("auth", await call("/auth", { method: "POST", headers: JSON_HEADERS, body: sevAuthBody(workloadId, chain, build) }));
      const text = await res.text();
      // Outer keys sorted (serde_json::Value), inner string in struct order.
      if (!text.startsWith('{"extra-params":"{\\"id\\":')) throw new Error(`not reference-kbs's SEV challenge: ${text}`);
      const challenge = JSON.parse(text) as { nonce: string; "extra-params": string };
      const sev = JSON.parse(challenge["extra-params"]) as { id: string; start: StartJson };
      const cookie = legacyCookie(res);
      if (sev.id !== challenge.nonce || cookie !== challenge.nonce) throw new Error("session id, nonce and cookie differ");
      return { nonce: challenge.nonce, cookie: `session_id=${cookie}`, start: sev.start, extraParams: challenge["extra-params"] };
    },

    /** The VMM's /attest: tee-evidence is json!(Measurement).to_string(); the tee-pubkey is empty. */
    sevAttest(session: Pick<Session, "cookie">, m: { measure: Uint8Array; mnonce: Uint8Array }): Promise<Response> {
      const evidence = JSON.stringify({ measure: [...m.measure], mnonce: [...m.mnonce] });
      return call("/attest", {
        method: "POST",
        headers: { ...JSON_HEADERS, cookie: session.cookie },
        body: JSON.stringify({ "tee-evidence": evidence, "tee-pubkey": { alg: "", "k-exp": "", "k-mod": "" } }),
      });
    },

    /** POST /auth as a Trustee guest; returns the nonce and the cookie header to send back. */
    async trusteeAuth(): Promise<Session> {
      const res = await expectOk("auth", await call("/auth", { method: "POST", headers: JSON_HEADERS, body: trusteeAuthBody() }));
      const body = (await res.json()) as { nonce: string; "extra-params": unknown };
      const id = /^kbs-session-id=([0-9a-f]{32}); Expires=[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/.exec(res.headers.get("set-cookie") ?? "")?.[1];
      if (!id || !/^[A-Za-z0-9+/]{43}=$/.test(body.nonce) || body["extra-params"] !== "") throw new Error(`not Trustee's challenge: ${JSON.stringify(body)} ${res.headers.get("set-cookie")}`);
      return { nonce: body.nonce, cookie: `kbs-session-id=${id}` };
    },

    trusteeAttest(session: Pick<Session, "cookie">, body: unknown): Promise<Response> {
      return call("/attest", { method: "POST", headers: { ...JSON_HEADERS, cookie: session.cookie }, body: JSON.stringify(body) });
    },

    /** GET /resource/<path> with the session's cookie or a Bearer token. */
    getResource(path: string, auth: { cookie: string } | { token: string }): Promise<Response> {
      return call(`/resource/${path}`, { headers: "cookie" in auth ? { cookie: auth.cookie } : { authorization: `Bearer ${auth.token}` } });
    },

    /** auth + attest as the workload's genuine SNP guest on `chip` (the chain sent along when `certChain` is given). */
    async attestAs(chip: SyntheticChip, key: GuestKey, w: Workload, opts: { certChain?: string; log?: Log } = {}): Promise<Session> {
      const log = opts.log ?? (() => {});
      const session = await client.auth(w.workloadId);
      log(`POST /auth {tee: snp, workload_id: ${w.workloadId}} → nonce ${session.nonce}`);
      const report = await chip.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) });
      log(`${chip.product} report signed by the chip's ${chip.signer}: MEASUREMENT ${toHex(w.measurement).slice(0, 16)}…, REPORT_DATA = SHA-512(nonce ‖ k-mod ‖ k-exp)`);
      await expectOk("attest", await client.attest(session, key, report, { certChain: opts.certChain }));
      log(`POST /attest {report, ${opts.certChain ? `cert_chain ${chip.signer}+ASK+ARK` : "no cert_chain"}, RSA-2048 tee-pubkey} → 200`);
      return session;
    },

    /** GET /key/<keyId>, decrypted with the guest's key. */
    async releasedSecret(key: GuestKey, session: Session, keyId: string, log: Log = () => {}): Promise<string> {
      const hex = (await (await expectOk("key", await client.getKey(session, keyId))).text()).slice(1, -1);
      log(`GET /key/${keyId} → ${hex.length / 2}-byte RSA ciphertext, decrypted with the guest's private key`);
      return new TextDecoder().decode(key.decrypt(hex));
    },

    /**
     * A SEV guest's launch as its VMM and PSP run it: /auth with the platform chain, LAUNCH_START on the
     * KBS's blob, LAUNCH_MEASURE of `digest`, /attest, /key, LAUNCH_SECRET. Returns the injected secret up to
     * the zero padding of its 512-byte slot.
     */
    async sevLaunch(platform: { chain: unknown; pdhPrivate: CryptoKey }, build: Build, workloadId: string, digest: Uint8Array, log: Log = () => {}): Promise<string> {
      const session = await client.sevAuth(workloadId, platform.chain, build);
      log(`POST /auth {tee: sev, workload_id: ${workloadId}, platform chain ARK→ASK→CEK, OCA→PEK→PDH} → launch blob for nonce ${session.nonce}`);
      const guest = await pspLaunchStart(platform.pdhPrivate, session.start);
      log(`PSP LAUNCH_START: transport keys unwrapped with the PDH key, policy 0x${session.start.policy.flags.bits.toString(16)} checked`);
      const measurement = await pspMeasure(guest, build, digest);
      log(`PSP LAUNCH_MEASURE over launch digest ${toHex(digest).slice(0, 16)}… → measure ${toHex(measurement.measure).slice(0, 16)}…`);
      await expectOk("attest", await client.sevAttest(session, measurement));
      log("POST /attest {measure, mnonce} → 200");
      const packet = JSON.parse(await (await expectOk("key", await client.getKey(session, workloadId))).text()) as Parameters<typeof pspInjectSecret>[2];
      log(`GET /key/${workloadId} → ${packet.ciphertext.length}-byte secret packet`);
      const plaintext = await pspInjectSecret(guest, measurement.measure, packet);
      log("PSP LAUNCH_SECRET: packet MAC checked against this launch's measure, secret decrypted into the guest");
      const end = plaintext.indexOf(0);
      return new TextDecoder().decode(plaintext.subarray(0, end < 0 ? plaintext.length : end));
    },

    /** auth + attest as a Trustee guest whose report has `fields` (its REPORT_DATA bound to the session and key). */
    async trusteeAttestAs(chip: SyntheticChip, guest: { jwk: TeeJwk }, fields: Parameters<SyntheticChip["report"]>[0], opts: { sendChain?: boolean; log?: Log } = {}): Promise<{ session: Session; token: string }> {
      const log = opts.log ?? (() => {});
      const session = await client.trusteeAuth();
      log(`POST /auth {version: 0.4.0, tee: snp} → nonce ${session.nonce}`);
      const report = await chip.report({ ...fields, reportData: await trusteeBinding(session.nonce, guest.jwk) });
      const body = trusteeAttestBody(report, session.nonce, guest.jwk, null, opts.sendChain ? chip : undefined);
      const res = await expectOk("attest", await client.trusteeAttest(session, body));
      const { token } = (await res.json()) as { token: string };
      log(`POST /attest {serde report, REPORT_DATA = SHA-384(JCS{nonce, tee-pubkey ${guest.jwk.kty}})} → attestation token ${token.slice(0, 16)}…`);
      return { session, token };
    },

    /** GET /resource/<path> with a token, the JWE opened with the guest's key. */
    async trusteeResource(path: string, token: string, privateKey: CryptoKey, log: Log = () => {}): Promise<string> {
      const jwe = (await (await expectOk("resource", await client.getResource(path, { token }))).json()) as Parameters<typeof openJwe>[0];
      const { alg, enc } = JSON.parse(new TextDecoder().decode(fromBase64Loose(jwe.protected))) as { alg: string; enc: string };
      log(`GET /resource/${path} (Bearer token) → JWE ${alg}/${enc}, opened with the guest's private key`);
      return new TextDecoder().decode(await openJwe(jwe, privateKey));
    },
  };
  return client;
}
