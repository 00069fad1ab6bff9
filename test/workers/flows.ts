// Whole flows the end-to-end tests share: register a workload, attest as its genuine guest, read a secret.
import { expect } from "vitest";
import { concat, toHex, utf8 } from "../../src/crypto/bytes";
import type { TeeJwk } from "../../src/crypto/jwe";
import { bindingOf, type GuestKey } from "../helpers/guest";
import type { SyntheticChip } from "../helpers/synthetic-amd";
import { serdeFromReport } from "../helpers/trustee-guest";
import { attest, auth, getKey, register, trusteeAttest, trusteeAuth, type Session } from "./kbs";

export interface Registered {
  workloadId: string;
  measurement: Uint8Array;
  passphrase: string;
}

let nextId = 0;

/** A fresh SNP workload `<prefix>-<n>` with a random passphrase. */
export async function registerWorkload(prefix: string): Promise<Registered> {
  const workloadId = `${prefix}-${++nextId}`;
  const measurement = new Uint8Array(await crypto.subtle.digest("SHA-384", utf8(workloadId)));
  const passphrase = `passphrase-of-${workloadId}-${toHex(crypto.getRandomValues(new Uint8Array(8)))}`;
  const res = await register({ workload_id: workloadId, launch_measurement: toHex(measurement), tee_config: "", passphrase });
  expect(res.status, await res.clone().text()).toBe(200);
  return { workloadId, measurement, passphrase };
}

/** auth + attest as the workload's genuine guest on `chip`. */
export async function attestAs(chip: SyntheticChip, key: GuestKey, w: Registered): Promise<Session> {
  const session = await auth(w.workloadId);
  const res = await attest(session, key, await chip.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) }));
  expect(res.status, await res.clone().text()).toBe(200);
  return session;
}

/** GET /key, decrypted with the guest's key. */
export async function releasedSecret(key: GuestKey, session: Session, keyId: string): Promise<string> {
  const res = await getKey(session, keyId);
  expect(res.status, await res.clone().text()).toBe(200);
  return new TextDecoder().decode(key.decrypt((await res.text()).slice(1, -1)));
}

// The Trustee KBS protocol 0.4.0 as guest-components plays it.

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

/** The /attest body guest-components sends (the VCEK left to the KBS: cert_chain null). */
export function trusteeAttestBody(report: Uint8Array, nonce: string, jwk: TeeJwk, initData: { format: string; body: string } | null = null): unknown {
  return {
    "init-data": initData,
    "runtime-data": { nonce, "tee-pubkey": jwk },
    "tee-evidence": { primary_evidence: { attestation_report: serdeFromReport(report), cert_chain: null }, additional_evidence: "" },
  };
}

/** auth + attest as a Trustee guest whose report has `fields` (its REPORT_DATA bound to the session and key). */
export async function trusteeAttestAs(chip: SyntheticChip, guest: { jwk: TeeJwk }, fields: Parameters<SyntheticChip["report"]>[0]): Promise<{ session: Session; token: string }> {
  const session = await trusteeAuth();
  const report = await chip.report({ ...fields, reportData: await trusteeBinding(session.nonce, guest.jwk) });
  const res = await trusteeAttest(session, trusteeAttestBody(report, session.nonce, guest.jwk));
  expect(res.status, await res.clone().text()).toBe(200);
  return { session, token: ((await res.json()) as { token: string }).token };
}
