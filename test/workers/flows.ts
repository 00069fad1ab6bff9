// Whole flows the end-to-end tests share: register a workload, attest as its genuine guest, read a secret.
import { expect } from "vitest";
import { toHex, utf8 } from "../../src/crypto/bytes";
import { guestClient } from "../../lab/guest-client";
import { call, register } from "./kbs";

export { trusteeAttestBody, trusteeBinding } from "../../lab/guest-client";

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

/** auth + attest as a workload's genuine guest (the VCEK from KDS), /key decrypted, Trustee's auth + attest. */
export const { attestAs, releasedSecret, trusteeAttestAs } = guestClient(call);
