// A reference-kbs SNP guest as libkrun's init plays it: RSA-2048 key, report_data binding, and PKCS#1 v1.5
// decryption of the released secret (the JSON it sends is in guest-client.ts).
import { concat, fromBase64Loose, fromHex, sha512, toBase64, toHex, utf8 } from "../src/crypto/bytes";

export interface GuestKey {
  kMod: string;
  kExp: string;
  /** Decrypts the `"<hex>"` body of /key (RSAES-PKCS1-v1_5). */
  decrypt(hex: string): Uint8Array;
}

const big = (b: Uint8Array) => BigInt(`0x${toHex(b) || "0"}`);

/** base^exp mod `mod` (square-and-multiply; base is reduced first, exp ≥ 0). */
export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  base %= mod;
  for (; exp > 0n; exp >>= 1n, base = (base * base) % mod) if (exp & 1n) result = (result * base) % mod;
  return result;
}

export interface PrivateParts {
  n: Uint8Array;
  p: bigint;
  q: bigint;
  dp: bigint;
  dq: bigint;
  qi: bigint;
}

/** Textbook RSA decryption (CRT) + PKCS#1 v1.5 unpadding: neither WebCrypto nor Node 20 decrypts v1.5 any more. */
export function pkcs1Decrypt(key: PrivateParts, ciphertext: Uint8Array): Uint8Array {
  const k = key.n.length;
  if (ciphertext.length !== k) throw new Error(`ciphertext is ${ciphertext.length} bytes, modulus ${k}`);
  const c = big(ciphertext);
  const m1 = modPow(c, key.dp, key.p);
  const m2 = modPow(c, key.dq, key.q);
  const h = (key.qi * (((m1 - m2) % key.p) + key.p)) % key.p;
  const em = fromHex((m2 + h * key.q).toString(16).padStart(k * 2, "0"));
  const sep = em.indexOf(0, 2);
  if (em[0] !== 0 || em[1] !== 2 || sep < 10) throw new Error("not PKCS#1 v1.5 type 2 padding");
  return em.subarray(sep + 1);
}

/** The CRT parts of an exported RSA private JWK. */
export function privateParts(jwk: JsonWebKey): PrivateParts {
  const part = (v: string | undefined) => big(fromBase64Loose(v!));
  return { n: fromBase64Loose(jwk.n!), p: part(jwk.p), q: part(jwk.q), dp: part(jwk.dp), dq: part(jwk.dq), qi: part(jwk.qi) };
}

export async function guestKey(): Promise<GuestKey> {
  const pair = (await crypto.subtle.generateKey(
    { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["encrypt", "decrypt"],
  )) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const priv = privateParts(jwk);
  return {
    kMod: toBase64(priv.n),
    kExp: toBase64(fromBase64Loose(jwk.e!)),
    decrypt: (hex) => pkcs1Decrypt(priv, fromHex(hex)),
  };
}

/** REPORT_DATA as reference-kbs binds it: SHA-512 over the nonce and the base64 texts as sent. */
export function bindingOf(nonce: string, key: Pick<GuestKey, "kMod" | "kExp">): Promise<Uint8Array> {
  return sha512(concat(utf8(nonce), utf8(key.kMod), utf8(key.kExp)));
}
