// Binary codecs of the two legacy SEV certificate formats (AMD pub. 55766; docs/sev-legacy.md §Platform
// certificate, §AMD CA certificate). Integers and big numbers are little-endian on the wire; the decoded
// big numbers are big-endian, as WebCrypto wants them.
// Encoders write the fields over a copy of the original bytes, so decode → encode is byte-identical even
// where senders leave uninitialised memory (reserved areas, the tail of sev's 1600-byte CA arrays).

import { reversed } from "../../crypto/bytes";
import { Algo, SEV_CERT_SIZE, SevError, Usage, type AmdCaCertificate, type SevCertificate, type SevPublicKey, type SevSignatureSlot } from "./types";

/** Bytes covered by a platform certificate's signatures: version through the end of the public key area. */
export const SEV_SIGNED_SIZE = 0x414;
const SLOT_OFFSETS = [0x414, 0x61c] as const;
const SLOT_SIZE = 0x200;
/** Offsets of EC Qx/Qy (72-byte fields) and RSA exponent/modulus (512-byte fields). */
const EC_X = 0x14;
const EC_Y = 0x5c;
const RSA_EXP = 0x14;
const RSA_MOD = 0x214;
const CURVE_BYTES: Readonly<Record<number, number>> = { 1: 32, 2: 48 };

export type Hash = "SHA-256" | "SHA-384";

const RSA_ALGOS: readonly number[] = [Algo.RSA_SHA256, Algo.RSA_SHA384];
const ECDSA_ALGOS: readonly number[] = [Algo.ECDSA_SHA256, Algo.ECDSA_SHA384];
const ECDH_ALGOS: readonly number[] = [Algo.ECDH_SHA256, Algo.ECDH_SHA384];

/** The key type a public-key algorithm code names, or null for NONE and unknown codes. */
export function keyKind(algo: number): "rsa" | "ec" | null {
  if (RSA_ALGOS.includes(algo)) return "rsa";
  return ECDSA_ALGOS.includes(algo) || ECDH_ALGOS.includes(algo) ? "ec" : null;
}

/** The key type of a signature slot's algorithm: ECDH names a key but never a signature. */
export function signatureKind(algo: number): "rsa" | "ec" | null {
  return ECDH_ALGOS.includes(algo) ? null : keyKind(algo);
}

/** The hash an algorithm code names (the code, not the curve or key size, decides). */
export function algoHash(algo: number): Hash {
  return algo & 0x100 ? "SHA-384" : "SHA-256";
}

export function isEcdhAlgo(algo: number): boolean {
  return ECDH_ALGOS.includes(algo);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a big-endian number as a little-endian field of `width` bytes (zero-padded on the high side). */
function putLe(out: Uint8Array, offset: number, width: number, bigEndian: Uint8Array, what: string): void {
  let start = 0;
  while (start < bigEndian.length && bigEndian[start] === 0) start++;
  if (bigEndian.length - start > width) throw new RangeError(`${what} does not fit in ${width} bytes`);
  out.fill(0, offset, offset + width);
  out.set(reversed(bigEndian.subarray(start)), offset);
}

function malformed(what: string, why: string): never {
  throw new SevError("cert-malformed", `${what}: ${why}`);
}

const hex4 = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;

/** A 2084-byte SEV platform certificate; a longer input is accepted and its tail ignored (but kept in `bytes`). */
export function decodeSevCertificate(bytes: Uint8Array, what = "SEV certificate"): SevCertificate {
  if (bytes.length < SEV_CERT_SIZE) malformed(what, `${bytes.length} bytes, expected ${SEV_CERT_SIZE}`);
  const v = view(bytes);
  const version = v.getUint32(0, true);
  if (version !== 1) malformed(what, `version ${version}, expected 1`);
  const algo = v.getUint32(0x0c, true);
  let publicKey: SevPublicKey;
  const kind = keyKind(algo);
  if (kind === "ec") {
    const curve = v.getUint32(0x10, true);
    const size = CURVE_BYTES[curve];
    if (size === undefined) malformed(what, `unsupported elliptic curve ${curve} (1 = P-256, 2 = P-384)`);
    const at = (off: number) => reversed(bytes.subarray(off, off + size));
    publicKey = { kind: "ec", curve: curve as 1 | 2, x: at(EC_X), y: at(EC_Y) };
  } else if (kind === "rsa") {
    const bits = v.getUint32(0x10, true);
    // AMD's RSA keys are 2048 or 4096 bits, as sev accepts; the 512-byte fields would hold any size up to 4096.
    if (bits !== 2048 && bits !== 4096) malformed(what, `unsupported RSA modulus size ${bits} bits (2048 or 4096)`);
    const at = (off: number) => reversed(bytes.subarray(off, off + bits / 8));
    publicKey = { kind: "rsa", bits, exponent: at(RSA_EXP), modulus: at(RSA_MOD) };
  } else {
    malformed(what, `unsupported public key algorithm ${hex4(algo)}`);
  }
  const slot = (off: number): SevSignatureSlot => ({
    usage: v.getUint32(off, true),
    algo: v.getUint32(off + 4, true),
    signature: bytes.slice(off + 8, off + 8 + SLOT_SIZE),
  });
  return {
    version: 1,
    apiMajor: bytes[4]!,
    apiMinor: bytes[5]!,
    usage: v.getUint32(0x08, true),
    algo,
    publicKey,
    signatures: [slot(SLOT_OFFSETS[0]), slot(SLOT_OFFSETS[1])],
    bytes,
  };
}

/** Writes every field over a copy of `cert.bytes` (or 2084 zero bytes): reserved bytes and any tail survive. */
export function encodeSevCertificate(cert: Omit<SevCertificate, "bytes"> & { bytes?: Uint8Array }): Uint8Array {
  const out = new Uint8Array(Math.max(SEV_CERT_SIZE, cert.bytes?.length ?? 0));
  if (cert.bytes) out.set(cert.bytes);
  const v = view(out);
  v.setUint32(0, cert.version, true);
  out[4] = cert.apiMajor;
  out[5] = cert.apiMinor;
  v.setUint32(0x08, cert.usage, true);
  v.setUint32(0x0c, cert.algo, true);
  const key = cert.publicKey;
  if (key.kind === "ec") {
    const size = CURVE_BYTES[key.curve]!;
    v.setUint32(0x10, key.curve, true);
    putLe(out, EC_X, size, key.x, "EC x coordinate");
    putLe(out, EC_Y, size, key.y, "EC y coordinate");
  } else {
    v.setUint32(0x10, key.bits, true);
    putLe(out, RSA_EXP, key.bits / 8, key.exponent, "RSA exponent");
    putLe(out, RSA_MOD, key.bits / 8, key.modulus, "RSA modulus");
  }
  cert.signatures.forEach((slot, i) => {
    const off = SLOT_OFFSETS[i]!;
    if (slot.signature.length !== SLOT_SIZE) throw new RangeError(`signature slot ${i + 1} must be ${SLOT_SIZE} bytes`);
    v.setUint32(off, slot.usage, true);
    v.setUint32(off + 4, slot.algo, true);
    out.set(slot.signature, off + 8);
  });
  return out;
}

const CA_HEADER = 0x40;

/** Bytes an AMD CA signature covers: header, exponent and modulus. */
export function caSignedSize(bits: number): number {
  return CA_HEADER + (2 * bits) / 8;
}

/** The meaningful bytes of a CA certificate (without sev's leftover tail): what its fingerprint is taken over. */
export function caCanonicalBytes(cert: AmdCaCertificate): Uint8Array {
  return cert.bytes.subarray(0, caSignedSize(cert.bits) + (cert.signature ? cert.bits / 8 : 0));
}

/** An AMD CA certificate (ARK/ASK): 832 or 1600 meaningful bytes; longer input (sev's 1600-byte arrays) is fine. */
export function decodeCaCertificate(bytes: Uint8Array, what = "AMD CA certificate"): AmdCaCertificate {
  if (bytes.length < CA_HEADER) malformed(what, `${bytes.length} bytes, shorter than the ${CA_HEADER}-byte header`);
  const v = view(bytes);
  const version = v.getUint32(0, true);
  if (version !== 1) malformed(what, `version ${version}, expected 1`);
  const usage = v.getUint32(0x24, true);
  const expBits = v.getUint32(0x38, true);
  const bits = v.getUint32(0x3c, true);
  if (bits !== 2048 && bits !== 4096) malformed(what, `unsupported modulus size ${bits} bits (2048 or 4096)`);
  if (expBits !== bits) malformed(what, `exponent size ${expBits} bits differs from the modulus size ${bits}`);
  const n = bits / 8;
  const signed = caSignedSize(bits);
  let signature: Uint8Array | null;
  if (bytes.length >= signed + n) signature = reversed(bytes.subarray(signed, signed + n));
  // AMD published the Naples ARK without its signature (AMDESE/AMDSEV#17): this form decodes unsigned, and
  // chain verification accepts an unsigned ARK only when it is that file (by its pinned hash).
  else if (bytes.length === signed && usage === Usage.ARK && bits === 2048) signature = null;
  else malformed(what, `${bytes.length} bytes; a ${bits}-bit certificate has ${signed + n}`);
  return {
    version: 1,
    keyId: bytes.slice(0x04, 0x14),
    certifyingId: bytes.slice(0x14, 0x24),
    usage,
    bits,
    exponent: reversed(bytes.subarray(CA_HEADER, CA_HEADER + n)),
    modulus: reversed(bytes.subarray(CA_HEADER + n, signed)),
    signature,
    bytes,
  };
}

/** Writes every field over a copy of `cert.bytes` (or zeros of the certificate's size). */
export function encodeCaCertificate(cert: Omit<AmdCaCertificate, "bytes"> & { bytes?: Uint8Array }): Uint8Array {
  const n = cert.bits / 8;
  const signed = caSignedSize(cert.bits);
  const out = new Uint8Array(Math.max(signed + (cert.signature ? n : 0), cert.bytes?.length ?? 0));
  if (cert.bytes) out.set(cert.bytes);
  if (cert.keyId.length !== 16 || cert.certifyingId.length !== 16) throw new RangeError("key ids must be 16 bytes");
  const v = view(out);
  v.setUint32(0, cert.version, true);
  out.set(cert.keyId, 0x04);
  out.set(cert.certifyingId, 0x14);
  v.setUint32(0x24, cert.usage, true);
  v.setUint32(0x38, cert.bits, true);
  v.setUint32(0x3c, cert.bits, true);
  putLe(out, CA_HEADER, n, cert.exponent, "RSA exponent");
  putLe(out, CA_HEADER + n, n, cert.modulus, "RSA modulus");
  if (cert.signature) putLe(out, signed, n, cert.signature, "signature");
  return out;
}
