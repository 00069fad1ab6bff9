// The SEV launch-session crypto of sev 1.1.0 (AMD pub. 55766; docs/sev-legacy.md §Launch session to
// §LAUNCH_SECRET packet): the guest owner's side of LAUNCH_START, the LAUNCH_MEASURE check and the
// LAUNCH_SECRET packet.

import { buf, concat, equalBytes, utf8 } from "../../crypto/bytes";
import { encodeSevCertificate } from "./certs";
import { pdhPoint } from "./chain";
import { policyBytes } from "./json";
import { Algo, SevError, Usage, type Build, type LaunchMeasurement, type LaunchSessionBlob, type LaunchStart, type SecretPacket, type SevCertificate, type SevPolicy, type TransportKeys } from "./types";

/** libkrun's guest reads the secret from a 512-byte slot; the zero padding is its string terminator. */
export const SEV_SECRET_SLOT = 512;

function le32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

async function hmac(key: Uint8Array, ...data: Uint8Array[]): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", buf(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, buf(concat(...data))));
}

async function aesCtr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", buf(key), "AES-CTR", false, ["encrypt"]);
  // OpenSSL's CTR increments the whole 128-bit block big-endian.
  return new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CTR", counter: buf(iv), length: 128 }, k, buf(data)));
}

/** sev's "SP 800-108 counter mode" KDF with HMAC-SHA256, but little-endian counter and length. */
export async function kdf(key: Uint8Array, lengthBytes: number, context: Uint8Array, label: string): Promise<Uint8Array> {
  const blocks: Uint8Array[] = [];
  for (let i = 1; i <= Math.ceil(lengthBytes / 32); i++) {
    blocks.push(await hmac(key, le32(i), utf8(label), Uint8Array.of(0), context, le32(lengthBytes * 8)));
  }
  return concat(...blocks).slice(0, lengthBytes);
}

/** The 128-byte session blob from the master secret (what LAUNCH_START's PSP unwraps). */
export async function sessionBlob(master: Uint8Array, policy: SevPolicy, keys: TransportKeys, nonce: Uint8Array, wrapIv: Uint8Array): Promise<LaunchSessionBlob> {
  const empty = new Uint8Array(0);
  const [kek, kik] = await Promise.all([kdf(master, 16, empty, "sev-kek"), kdf(master, 16, empty, "sev-kik")]);
  const wrapTk = await aesCtr(kek, wrapIv, concat(keys.tek, keys.tik));
  const [wrapMac, policyMac] = await Promise.all([hmac(kik, wrapTk), hmac(keys.tik, policyBytes(policy))]);
  return { nonce, wrapTk, wrapIv, wrapMac, policyMac };
}

/**
 * The guest owner's DH certificate for LAUNCH_START (what sev's `Certificate::generate(PDH)` makes): an
 * unsigned ECDH P-384 key, API 0.0, reserved bytes zero (the firmware reads only curve, Qx and Qy).
 */
export function ownerDhCertificate(x: Uint8Array, y: Uint8Array): Uint8Array {
  const empty = { usage: Usage.INVALID, algo: Algo.NONE, signature: new Uint8Array(512) };
  return encodeSevCertificate({
    version: 1,
    apiMajor: 0,
    apiMinor: 0,
    usage: Usage.PDH,
    algo: Algo.ECDH_SHA256,
    publicKey: { kind: "ec", curve: 2, x, y },
    signatures: [empty, empty],
  });
}

/** ECDH parameters naming the peer key (workers-types spells the standard `public` member `$public`). */
export function ecdhWith(peer: CryptoKey): SubtleCryptoDeriveKeyAlgorithm {
  return { name: "ECDH", public: peer } as unknown as SubtleCryptoDeriveKeyAlgorithm;
}

const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));

/**
 * The guest owner's LAUNCH_START: a fresh P-384 key agreed with the platform's PDH, the transport keys
 * wrapped under the derived KEK/KIK. The owner private key is never returned: it is not needed again.
 */
export async function createLaunchSession(
  pdh: SevCertificate,
  policy: SevPolicy,
  opts: { ownerKeyPair?: CryptoKeyPair; nonce?: Uint8Array; wrapIv?: Uint8Array; keys?: TransportKeys } = {},
): Promise<{ start: LaunchStart; keys: TransportKeys }> {
  const { x, y } = pdhPoint(pdh);
  const owner = opts.ownerKeyPair ?? ((await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-384" }, false, ["deriveBits"])) as CryptoKeyPair);
  const pdhKey = await crypto.subtle.importKey("raw", buf(concat(Uint8Array.of(4), x, y)), { name: "ECDH", namedCurve: "P-384" }, false, []);
  // Z is OpenSSL's derive output: the big-endian x-coordinate, exactly what deriveBits returns.
  const z = new Uint8Array(await crypto.subtle.deriveBits(ecdhWith(pdhKey), owner.privateKey, 384));
  const nonce = opts.nonce ?? random(16);
  const keys = opts.keys ?? { tek: random(16), tik: random(16) };
  const master = await kdf(z, 16, nonce, "sev-master-secret");
  const session = await sessionBlob(master, policy, keys, nonce, opts.wrapIv ?? random(16));
  const ownerPublic = new Uint8Array((await crypto.subtle.exportKey("raw", owner.publicKey)) as ArrayBuffer);
  const cert = ownerDhCertificate(ownerPublic.subarray(1, 49), ownerPublic.subarray(49, 97));
  return { start: { policy, cert, session }, keys };
}

/** LAUNCH_MEASURE as the PSP computes it: HMAC(TIK, 0x04 ‖ build ‖ policy ‖ launch digest ‖ mnonce). */
export function expectedMeasure(tik: Uint8Array, build: Build, policy: SevPolicy, digest: Uint8Array, mnonce: Uint8Array): Promise<Uint8Array> {
  return hmac(tik, Uint8Array.of(0x04, build.version.major, build.version.minor, build.build), policyBytes(policy), digest, mnonce);
}

export async function verifyLaunchMeasurement(keys: TransportKeys, build: Build, policy: SevPolicy, digest: Uint8Array, m: LaunchMeasurement): Promise<void> {
  if (!equalBytes(await expectedMeasure(keys.tik, build, policy, digest, m.mnonce), m.measure)) {
    throw new SevError("measurement-mismatch", "the launch measurement does not match the registered digest, build and policy");
  }
}

/** The LAUNCH_SECRET packet: the secret zero-padded to the slot, AES-128-CTR under TEK, HMAC under TIK. */
export async function launchSecretPacket(keys: TransportKeys, measure: Uint8Array, secret: Uint8Array, opts: { iv?: Uint8Array } = {}): Promise<SecretPacket> {
  if (secret.length > SEV_SECRET_SLOT) throw new RangeError(`a SEV secret holds at most ${SEV_SECRET_SLOT} bytes`);
  const data = new Uint8Array(SEV_SECRET_SLOT);
  data.set(secret);
  const iv = opts.iv ?? random(16);
  const flags = 0;
  const ciphertext = await aesCtr(keys.tek, iv, data);
  const mac = await hmac(keys.tik, Uint8Array.of(0x01), le32(flags), iv, le32(data.length), le32(ciphertext.length), ciphertext, measure);
  return { header: { flags, iv, mac }, ciphertext };
}
