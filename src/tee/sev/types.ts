// Public contract of the pure SEV / SEV-ES (pre-attestation) module. No HTTP, no D1: bytes and options
// in, typed values or a typed SevError out. Runs unchanged in workerd and Node (WebCrypto only).
// Byte layouts: docs/sev-legacy.md (AMD pub. 55766, as sev 1.1.0 implements it); JSON:
// docs/wire-format.md (kbs-types 0.2.0).

import { TeeError } from "../../errors";

export const SEV_CERT_SIZE = 2084;
export const GENERATIONS = ["Naples", "Rome", "Milan", "Genoa", "Turin"] as const;
export type Generation = (typeof GENERATIONS)[number];

/** Key usage codes of SEV platform and AMD CA certificates. */
export const Usage = {
  ARK: 0x0000,
  ASK: 0x0013,
  INVALID: 0x1000,
  OCA: 0x1001,
  PEK: 0x1002,
  PDH: 0x1003,
  CEK: 0x1004,
} as const;

/** Algorithm codes; the hash is named by the code (ECDSA_SHA256 on P-384 really hashes with SHA-256). */
export const Algo = {
  NONE: 0x0000,
  RSA_SHA256: 0x0001,
  ECDSA_SHA256: 0x0002,
  ECDH_SHA256: 0x0003,
  RSA_SHA384: 0x0101,
  ECDSA_SHA384: 0x0102,
  ECDH_SHA384: 0x0103,
} as const;

/** Public key of a SEV platform certificate. Big numbers are BIG-endian here (converted from the LE wire form). */
export type SevPublicKey =
  | { kind: "ec"; curve: 1 | 2; x: Uint8Array; y: Uint8Array }
  | { kind: "rsa"; bits: number; exponent: Uint8Array; modulus: Uint8Array };

/** One of the two signature slots; `signature` is the raw 512-byte little-endian slot. */
export interface SevSignatureSlot {
  usage: number;
  algo: number;
  signature: Uint8Array;
}

/** A 2084-byte SEV platform certificate (PDH, PEK, OCA, CEK, or the guest owner's DH cert). */
export interface SevCertificate {
  version: 1;
  apiMajor: number;
  apiMinor: number;
  usage: number;
  algo: number;
  publicKey: SevPublicKey;
  signatures: [SevSignatureSlot, SevSignatureSlot];
  /** The bytes exactly as received (≥ 2084; a tail is kept so re-encoding is byte-identical). */
  bytes: Uint8Array;
}

/** An AMD CA certificate (ARK or ASK) in AMD's binary format: 832 bytes (2048-bit) or 1600 (4096-bit). */
export interface AmdCaCertificate {
  version: 1;
  keyId: Uint8Array; // 16
  certifyingId: Uint8Array; // 16
  usage: number; // ARK 0x00, ASK 0x13
  bits: 2048 | 4096;
  /** Big-endian. */
  exponent: Uint8Array;
  /** Big-endian. */
  modulus: Uint8Array;
  /** Big-endian signature of `bits/8` bytes; null only for AMD's published, truncated Naples ARK. */
  signature: Uint8Array | null;
  /** The bytes exactly as received (sev serializes 1600 even for Naples, with leftover memory after 832). */
  bytes: Uint8Array;
}

export interface SevChain {
  ca: { ark: AmdCaCertificate; ask: AmdCaCertificate };
  sev: { pdh: SevCertificate; pek: SevCertificate; oca: SevCertificate; cek: SevCertificate };
}

/** Firmware build reported by the platform (PLATFORM_STATUS), echoed into the measurement. */
export interface Build {
  version: { major: number; minor: number };
  build: number;
}

/** The guest policy (`{"flags":{"bits":N},"minfw":{"major":M,"minor":m}}`); policy4 = [flags lo, flags hi, major, minor]. */
export interface SevPolicy {
  flags: number; // u16
  minfw: { major: number; minor: number };
}

/** kbs-types SevRequest: the JSON string inside the /auth `extra-params` when tee = "sev". */
export interface SevRequest {
  workloadId: string;
  build: Build;
  chain: SevChain;
}

/** launch::sev::Session, 128 bytes: what the PSP unwraps with the PDH private key. */
export interface LaunchSessionBlob {
  nonce: Uint8Array; // 16
  wrapTk: Uint8Array; // 32
  wrapIv: Uint8Array; // 16
  wrapMac: Uint8Array; // 32
  policyMac: Uint8Array; // 32
}

/** launch::sev::Start: what LAUNCH_START takes. */
export interface LaunchStart {
  policy: SevPolicy;
  /** The guest owner's unsigned DH certificate (2084 bytes, usage PDH, ECDH P-384). */
  cert: Uint8Array;
  session: LaunchSessionBlob;
}

/** Transport keys known only to the KBS session and the PSP. */
export interface TransportKeys {
  tek: Uint8Array; // 16
  tik: Uint8Array; // 16
}

/** launch::sev::Measurement: the LAUNCH_MEASURE output the VMM forwards. */
export interface LaunchMeasurement {
  measure: Uint8Array; // 32
  mnonce: Uint8Array; // 16
}

/** launch::sev::Secret: the LAUNCH_SECRET packet. */
export interface SecretPacket {
  header: { flags: number; iv: Uint8Array; mac: Uint8Array };
  ciphertext: Uint8Array;
}

/** Operator trust: pinned AMD ARKs plus extra ARKs, by SHA-256 (lowercase hex) of the canonical ARK bytes. */
export interface SevTrustAnchors {
  pinned: ReadonlyMap<string, Generation>;
  extra: ReadonlySet<string>;
}

export type SevErrorCode =
  | "cert-malformed" // a certificate cannot be decoded (size, version, sizes, algorithm)
  | "cert-untrusted-root" // the ARK is neither AMD's (pinned) nor listed by the operator
  | "cert-chain-invalid" // a signature in ARK → ASK → CEK → PEK ← OCA, PEK → PDH does not verify
  | "request-malformed" // SevRequest / Measurement JSON has wrong shape (lengths, ranges)
  | "policy-invalid" // tee_config is not SEV Policy JSON
  | "measurement-mismatch"; // the LAUNCH_MEASURE HMAC does not match the registered digest

export class SevError extends TeeError {
  override readonly name = "SevError";
  constructor(
    override readonly code: SevErrorCode,
    message: string,
  ) {
    super("sev", code, message);
  }
}
