// Envelope encryption of secret values at rest (the Vault "barrier" idea, WebCrypto only).
//
// Layout of a sealed secret (all AES-256-GCM, 96-bit random IVs, 128-bit tags):
//   wrappedKey = IV ‖ GCM(KEK[kid], data key (32 bytes), aad = ["edgekbs/dek/v1", kid, workload, key id, version])
//   ciphertext = IV ‖ GCM(data key, value,                aad = ["edgekbs/secret/v1", workload, key id, version])
// The AADs are JSON arrays, so their parts cannot run into each other; moving a row to another workload,
// key id or version, or pointing it at another master key, makes it fail to open.

import { ConfigError } from "../errors";
import { buf, concat, fromBase64, toBase64, utf8 } from "./bytes";

export interface SecretContext {
  workloadId: string;
  keyId: string;
  version: number;
}

export interface SealedSecret {
  kid: string;
  wrappedKey: Uint8Array;
  ciphertext: Uint8Array;
}

export interface MasterKeyring {
  /** New seals and re-wraps use this one. */
  active: string;
  keys: ReadonlyMap<string, CryptoKey>;
}

/** A sealed secret cannot be opened (unknown master key, or it does not authenticate). */
export class SealError extends Error {
  override readonly name = "SealError";
}

const KID_RE = /^[A-Za-z0-9._-]{1,32}$/;
const IV_BYTES = 12;

/** `kid:base64(32 bytes)[,kid:base64…]`, the first entry active, the others for opening old rows. */
export async function parseMasterKeys(value: string | undefined): Promise<MasterKeyring> {
  const entries = (value ?? "").split(",").map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new ConfigError("KBS_MASTER_KEY", "no master key is set (expected kid:base64 of 32 bytes)");
  const keys = new Map<string, CryptoKey>();
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(":");
    const kid = entry.slice(0, colon);
    if (colon < 0 || !KID_RE.test(kid)) throw new ConfigError("KBS_MASTER_KEY", `entry ${i + 1}: expected kid:base64 with a kid of 1-32 characters A-Z a-z 0-9 . _ -`);
    if (keys.has(kid)) throw new ConfigError("KBS_MASTER_KEY", `entry ${i + 1}: kid "${kid}" appears twice`);
    let raw: Uint8Array;
    try {
      raw = fromBase64(entry.slice(colon + 1));
    } catch {
      throw new ConfigError("KBS_MASTER_KEY", `key "${kid}" is not standard base64`);
    }
    if (raw.length !== 32) throw new ConfigError("KBS_MASTER_KEY", `key "${kid}" must be 32 bytes, not ${raw.length}`);
    keys.set(kid, await crypto.subtle.importKey("raw", buf(raw), "AES-GCM", false, ["encrypt", "decrypt"]));
    raw.fill(0);
  }
  return { active: entries[0]!.slice(0, entries[0]!.indexOf(":")), keys };
}

/** A fresh `kid:base64` entry for KBS_MASTER_KEY. */
export function generateMasterKey(kid = "k1"): string {
  return `${kid}:${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

const secretAad = (c: SecretContext) => utf8(JSON.stringify(["edgekbs/secret/v1", c.workloadId, c.keyId, c.version]));
const keyAad = (kid: string, c: SecretContext) => utf8(JSON.stringify(["edgekbs/dek/v1", kid, c.workloadId, c.keyId, c.version]));

async function gcmSeal(key: CryptoKey, data: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  return concat(iv, new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: buf(aad) }, key, buf(data))));
}

async function gcmOpen(key: CryptoKey, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  try {
    const iv = buf(sealed.subarray(0, IV_BYTES));
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: buf(aad) }, key, buf(sealed.subarray(IV_BYTES))));
  } catch {
    throw new SealError("secret does not authenticate for this workload, key and version");
  }
}

function masterKey(ring: MasterKeyring, kid: string): CryptoKey {
  const key = ring.keys.get(kid);
  if (!key) throw new SealError(`unknown master key id ${kid}`);
  return key;
}

const importDataKey = (raw: Uint8Array) => crypto.subtle.importKey("raw", buf(raw), "AES-GCM", false, ["encrypt", "decrypt"]);

export async function sealSecret(ring: MasterKeyring, ctx: SecretContext, plaintext: Uint8Array): Promise<SealedSecret> {
  const dataKey = crypto.getRandomValues(new Uint8Array(32));
  const ciphertext = await gcmSeal(await importDataKey(dataKey), plaintext, secretAad(ctx));
  const wrappedKey = await gcmSeal(masterKey(ring, ring.active), dataKey, keyAad(ring.active, ctx));
  dataKey.fill(0);
  return { kid: ring.active, wrappedKey, ciphertext };
}

async function unwrap(ring: MasterKeyring, ctx: SecretContext, sealed: SealedSecret): Promise<Uint8Array> {
  return gcmOpen(masterKey(ring, sealed.kid), sealed.wrappedKey, keyAad(sealed.kid, ctx));
}

export async function openSecret(ring: MasterKeyring, ctx: SecretContext, sealed: SealedSecret): Promise<Uint8Array> {
  const dataKey = await unwrap(ring, ctx, sealed);
  try {
    return await gcmOpen(await importDataKey(dataKey), sealed.ciphertext, secretAad(ctx));
  } finally {
    dataKey.fill(0);
  }
}

/** Moves the data key under the active master key (the value itself is untouched); null if already there. */
export async function rewrapSecret(ring: MasterKeyring, ctx: SecretContext, sealed: SealedSecret): Promise<SealedSecret | null> {
  if (sealed.kid === ring.active) return null;
  const dataKey = await unwrap(ring, ctx, sealed);
  const wrappedKey = await gcmSeal(masterKey(ring, ring.active), dataKey, keyAad(ring.active, ctx));
  dataKey.fill(0);
  return { kid: ring.active, wrappedKey, ciphertext: sealed.ciphertext };
}
