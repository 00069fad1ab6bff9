// JWE (RFC 7516, flattened JSON) for Trustee KBS resources: A256GCM content under a fresh key, wrapped
// for the guest's tee-pubkey (docs: research anchors §2.6). WebCrypto throughout, except RSA1_5 which
// WebCrypto lacks (src/crypto/rsa.ts goes through node:crypto, as in the legacy protocol).

import { TeeError } from "../errors";
import { buf, concat, fromBase64Loose, toBase64Url, utf8 } from "./bytes";
import { canonicalJson } from "./jcs";
import { rsaPkcs1Encrypt, rsaPublicKey, type RsaPublicKey } from "./rsa";

/** The guest keys the Trustee protocol carries in `tee-pubkey` that we encrypt to. */
export type TeeJwk =
  | { kty: "RSA"; alg: "RSA-OAEP-256" | "RSA1_5"; n: string; e: string }
  | { kty: "EC"; alg: "ECDH-ES+A256KW"; crv: "P-256" | "P-384" | "P-521"; x: string; y: string };

/** RFC 7516 §7.2.2 without `aad` or an unprotected header, every member base64url without padding. */
export interface FlattenedJwe {
  protected: string;
  encrypted_key: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

/** Bytes of one affine coordinate per curve (RFC 7518 §6.2.1.2: x and y are exactly this long). */
const COORDINATE_BYTES = { "P-256": 32, "P-384": 48, "P-521": 66 } as const;
type Curve = keyof typeof COORDINATE_BYTES;

const CEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

type Recipient =
  | { alg: "RSA-OAEP-256"; key: CryptoKey }
  | { alg: "RSA1_5"; key: RsaPublicKey }
  | { alg: "ECDH-ES+A256KW"; key: CryptoKey; crv: Curve };

function invalid(message: string): never {
  throw new TeeError("snp", "tee-pubkey-invalid", message);
}

/** A sender's value for an error detail, cut short. */
const shown = (value: unknown) => String(value).slice(0, 40);

function fromBase64Url(text: unknown, member: string): Uint8Array {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    invalid(`tee-pubkey ${member} is not base64url without padding`);
  }
  return fromBase64Loose(text);
}

/** Checks the key as the encryption needs it; the Trustee JWK arrives from the guest, so nothing is assumed. */
async function recipientOf(jwk: TeeJwk): Promise<Recipient> {
  const { kty, alg } = jwk as { kty: unknown; alg: unknown };
  if (kty === "RSA" && (alg === "RSA-OAEP-256" || alg === "RSA1_5")) {
    const { n, e } = jwk as { n: unknown; e: unknown };
    let rsa: RsaPublicKey;
    try {
      rsa = rsaPublicKey(fromBase64Url(n, "n"), fromBase64Url(e, "e"));
    } catch (err) {
      if (err instanceof TeeError) throw err;
      invalid(`tee-pubkey: ${(err as Error).message}`);
    }
    if (alg === "RSA1_5") return { alg, key: rsa };
    const jwkRsa = { kty: "RSA", n: toBase64Url(rsa.n), e: toBase64Url(rsa.e), ext: true };
    try {
      return { alg, key: await crypto.subtle.importKey("jwk", jwkRsa, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]) };
    } catch {
      invalid("tee-pubkey RSA key is not usable for RSA-OAEP");
    }
  }
  if (kty === "EC" && alg === "ECDH-ES+A256KW") {
    const { crv, x, y } = jwk as { crv: unknown; x: unknown; y: unknown };
    if (typeof crv !== "string" || !Object.hasOwn(COORDINATE_BYTES, crv)) invalid(`tee-pubkey curve ${shown(crv)} is not P-256, P-384 or P-521`);
    const size = COORDINATE_BYTES[crv as Curve];
    if (fromBase64Url(x, "x").length !== size || fromBase64Url(y, "y").length !== size) invalid(`tee-pubkey ${crv} coordinates must be ${size} bytes each`);
    try {
      const key = await crypto.subtle.importKey("jwk", { kty: "EC", crv, x: x as string, y: y as string, ext: true }, { name: "ECDH", namedCurve: crv }, false, []);
      return { alg, key, crv: crv as Curve };
    } catch {
      invalid(`tee-pubkey point is not on ${crv}`);
    }
  }
  invalid(`tee-pubkey kty ${shown(kty)} with alg ${shown(alg)} is not supported (RSA with RSA-OAEP-256 or RSA1_5, EC with ECDH-ES+A256KW)`);
}

/**
 * Refuses a tee-pubkey we could not encrypt to (TeeError tee-pubkey-invalid), so a session can say so when
 * the guest attests rather than when it asks for a resource.
 */
export async function checkTeeJwk(key: TeeJwk): Promise<void> {
  await recipientOf(key);
}

const u32be = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const lengthPrefixed = (data: Uint8Array) => concat(u32be(data.length), data);

/**
 * RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A) with SHA-256 for a 256-bit key needs one round:
 * SHA-256(counter 1 ‖ Z ‖ AlgorithmID ‖ PartyUInfo ‖ PartyVInfo ‖ keydatalen), apu and apv empty.
 */
async function concatKdf(z: Uint8Array, algorithmId: string): Promise<Uint8Array> {
  const otherInfo = concat(lengthPrefixed(utf8(algorithmId)), lengthPrefixed(new Uint8Array(0)), lengthPrefixed(new Uint8Array(0)), u32be(256));
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf(concat(u32be(1), z, otherInfo))));
}

/** The wrapped CEK and the header members its algorithm needs beyond alg and enc. */
async function wrapCek(recipient: Recipient, cek: Uint8Array): Promise<{ encryptedKey: Uint8Array; header: Record<string, unknown> }> {
  switch (recipient.alg) {
    case "RSA-OAEP-256":
      return { encryptedKey: new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, recipient.key, buf(cek))), header: {} };
    case "RSA1_5":
      return { encryptedKey: await rsaPkcs1Encrypt(recipient.key, cek), header: {} };
    case "ECDH-ES+A256KW": {
      const { crv } = recipient;
      const ephemeral = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: crv }, true, ["deriveBits"])) as CryptoKeyPair;
      // workers-types spells the peer member `$public`; the runtime reads WebCrypto's `public`.
      const ecdh = { name: "ECDH", public: recipient.key } as unknown as SubtleCryptoDeriveKeyAlgorithm;
      const z = new Uint8Array(await crypto.subtle.deriveBits(ecdh, ephemeral.privateKey, COORDINATE_BYTES[crv] * 8));
      const kek = await crypto.subtle.importKey("raw", buf(await concatKdf(z, recipient.alg)), "AES-KW", false, ["wrapKey"]);
      const cekKey = await crypto.subtle.importKey("raw", buf(cek), "AES-GCM", true, ["encrypt"]);
      const encryptedKey = new Uint8Array(await crypto.subtle.wrapKey("raw", cekKey, kek, "AES-KW"));
      const { x, y } = (await crypto.subtle.exportKey("jwk", ephemeral.publicKey)) as JsonWebKey;
      return { encryptedKey, header: { epk: { crv, kty: "EC", x, y } } };
    }
  }
}

/**
 * Encrypts `plaintext` to the guest's key: A256GCM with a fresh 32-byte CEK and 12-byte IV, AAD = the ASCII
 * of the protected header. The header is JCS (compact, members sorted, epk too) because the guest client
 * re-serialises it to compute the AAD; any other form fails GCM on real guests (anchors §2.6).
 * Throws TeeError tee-pubkey-invalid for an unusable key.
 */
export async function encryptJwe(key: TeeJwk, plaintext: Uint8Array): Promise<FlattenedJwe> {
  const recipient = await recipientOf(key);
  const cek = crypto.getRandomValues(new Uint8Array(CEK_BYTES));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const { encryptedKey, header } = await wrapCek(recipient, cek);
  const protectedHeader = toBase64Url(utf8(canonicalJson({ alg: recipient.alg, enc: "A256GCM", ...header })));
  const gcmKey = await crypto.subtle.importKey("raw", buf(cek), "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: buf(iv), additionalData: buf(utf8(protectedHeader)), tagLength: TAG_BYTES * 8 }, gcmKey, buf(plaintext)),
  );
  return {
    protected: protectedHeader,
    encrypted_key: toBase64Url(encryptedKey),
    iv: toBase64Url(iv),
    ciphertext: toBase64Url(sealed.subarray(0, sealed.length - TAG_BYTES)),
    tag: toBase64Url(sealed.subarray(sealed.length - TAG_BYTES)),
  };
}
