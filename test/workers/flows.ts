// Whole flows the end-to-end tests share: register a workload, attest as its genuine guest, read a secret.
import { expect } from "vitest";
import { toHex, utf8 } from "../../src/crypto/bytes";
import { bindingOf, type GuestKey } from "../helpers/guest";
import type { SyntheticChip } from "../helpers/synthetic-amd";
import { attest, auth, getKey, register, type Session } from "./kbs";

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
