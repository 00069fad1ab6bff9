import { constants, publicEncrypt } from "node:crypto";
import { buf, fromBase64, toBase64Url } from "./bytes";
import { toPem } from "./pem";

export interface RsaPublicKey {
  n: Uint8Array;
  e: Uint8Array;
  bits: number;
}

const MIN_BITS = 2048;
const MAX_BITS = 8192;

function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * The legacy `tee-pubkey` {k-mod, k-exp}: standard padded base64 of big-endian magnitudes, as libkrun's
 * OpenSSL client sends them. Throws a TypeError with a human reason when unusable.
 */
export function parseRsaPublicKey(kMod: string, kExp: string): RsaPublicKey {
  let n: Uint8Array, e: Uint8Array;
  try {
    n = fromBase64(kMod);
    e = fromBase64(kExp);
  } catch {
    throw new TypeError("k-mod and k-exp must be standard padded base64");
  }
  return rsaPublicKey(n, e);
}

/** An RSA public key from big-endian modulus and exponent bytes (leading zeros allowed); throws a TypeError with a human reason when unusable. */
export function rsaPublicKey(modulus: Uint8Array, exponent: Uint8Array): RsaPublicKey {
  const n = stripLeadingZeros(modulus);
  const e = stripLeadingZeros(exponent);
  const bits = n.length * 8 - Math.clz32(n[0] ?? 0) + 24;
  if (bits < MIN_BITS || bits > MAX_BITS) throw new TypeError(`RSA modulus must have ${MIN_BITS}-${MAX_BITS} bits, got ${bits}`);
  if ((n[n.length - 1]! & 1) === 0) throw new TypeError("RSA modulus must be odd");
  if (e.length > 4 || (e[e.length - 1]! & 1) === 0 || (e.length === 1 && e[0]! < 3)) {
    throw new TypeError("RSA public exponent must be an odd number from 3 to 2^32-1");
  }
  return { n, e, bits };
}

/** Largest plaintext RSAES-PKCS1-v1_5 can carry under this key (RFC 8017 §7.2.1: k − 11). */
export function maxPkcs1Plaintext(key: RsaPublicKey): number {
  return Math.ceil(key.bits / 8) - 11;
}

/**
 * RSAES-PKCS1-v1_5 encryption, which the reference-kbs SNP client decrypts. WebCrypto lacks it, so this
 * goes through node:crypto (nodejs_compat in workerd), which wants a PEM string rather than a KeyObject.
 */
export async function rsaPkcs1Encrypt(key: RsaPublicKey, plaintext: Uint8Array): Promise<Uint8Array> {
  if (plaintext.length > maxPkcs1Plaintext(key)) throw new RangeError("plaintext too long for this RSA key");
  const imported = await crypto.subtle.importKey(
    "jwk",
    { kty: "RSA", n: toBase64Url(key.n), e: toBase64Url(key.e), alg: "RSA-OAEP-256", ext: true },
    { name: "RSA-OAEP", hash: "SHA-256" },
    true,
    ["encrypt"],
  );
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", imported)) as ArrayBuffer);
  const pem = toPem(spki, "PUBLIC KEY");
  return new Uint8Array(publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_PADDING }, buf(plaintext)));
}
