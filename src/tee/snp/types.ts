// Public contract of the pure SEV-SNP verifier. No HTTP, no D1: bytes and options in, typed claims or
// a typed VerificationError out. Runs unchanged in workerd and Node (WebCrypto and a DER reader of its own).

import { TeeError } from "../../errors";
export const PRODUCTS = ["Milan", "Genoa", "Turin"] as const;
export type Product = (typeof PRODUCTS)[number];

export type SignerKind = "VCEK" | "VLEK";

/** Firmware version MAJOR.MINOR.BUILD. */
export interface FirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

/** A decoded TCB_VERSION. `fmc` exists only in the Turin layout. */
export interface Tcb {
  /** The raw little-endian u64 as 16 hex digits, most significant first (e.g. "db18000000000004"). */
  raw: string;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

export interface GuestPolicy {
  abiMajor: number;
  abiMinor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export interface PlatformInfo {
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
}

/** Every field of the 1184-byte ATTESTATION_REPORT (versions 2–5). Integers are LE in the report. */
export interface SnpReport {
  /** The 1184 report bytes (a copy). */
  bytes: Uint8Array;
  version: number;
  guestSvn: number;
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: bigint;
  platformInfo: bigint;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  /** 0 = VCEK, 1 = VLEK, 7 = none. */
  signingKey: number;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: bigint;
  /** v3+ only. */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  committedTcb: bigint;
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  launchTcb: bigint;
  /** v5 only. */
  launchMitVector?: bigint;
  currentMitVector?: bigint;
  /** IEEE-P1363 r‖s (96 bytes, big-endian) ready for WebCrypto. */
  signature: Uint8Array;
}

/** Stable machine-readable reasons. Each becomes the problem `type` suffix at the HTTP layer. */
export type VerificationErrorCode =
  | "report-malformed" // wrong size, reserved bits or bytes not zero, VMPL above 3, bad signature field encoding
  | "report-version" // unsupported version
  | "unsupported-product" // CPUID not a known product, or product unknown for a v2 report
  | "unsupported-signer" // MASK_CHIP_KEY, SIGNING_KEY 7 or reserved, SIGNATURE_ALGO != 1
  | "cert-missing" // the VEK or an intermediate/root could not be found
  | "cert-malformed" // a certificate could not be parsed or has wrong algorithms/shape
  | "cert-untrusted-root" // the ARK is neither pinned nor listed by the operator
  | "cert-chain-invalid" // a chain signature does not verify, or issuer/subject mismatch
  | "cert-expired" // outside notBefore/notAfter at the verification time
  | "vek-mismatch" // VEK TCB extensions != REPORTED_TCB, hwID != CHIP_ID, or wrong signer kind / product
  | "signature-invalid" // the report signature does not verify with the VEK
  | "certs-unavailable" // the certificate provider (e.g. AMD KDS) is unreachable: retry later
  | "cert-revoked" // AMD's CRL lists the ASK/ASVK or the VEK
  | "crl-invalid" // a CRL is malformed, not issued by the chain's ARK, or its signature does not verify
  | "crl-unavailable" // strict revocation: no CRL, or only one past its nextUpdate (transient: retry later)
  | "policy"; // an appraisal rule failed

/** One appraisal rule's verdict, with what was expected and what the report showed (hex or text). */
export interface RuleResult {
  /** Stable dotted name, e.g. "measurement", "guest_policy.debug", "tcb.reported.microcode". */
  rule: string;
  ok: boolean;
  expected: string;
  actual: string;
  /** Present (false) only when the caller had no expectation to compare with: the rule neither passed nor failed. */
  checked?: false;
}

export class VerificationError extends TeeError {
  override readonly name = "VerificationError";
  constructor(
    override readonly code: VerificationErrorCode,
    message: string,
    readonly extra: {
      /** Seconds after which a retry may succeed (certs-unavailable only). */
      retryAfter?: number;
      /** The failing appraisal rules (code "policy" only). */
      rules?: RuleResult[];
    } = {},
  ) {
    super("snp", code, message);
  }
}

/** Where the verifier gets certificates the evidence did not carry (D1 cache + AMD KDS in the Worker, files in the CLI). */
export interface CertificateProvider {
  /** The VCEK (DER) for a chip at a REPORTED_TCB; hwid is CHIP_ID (64 bytes; Turin: first 8 bytes). */
  vcek(product: Product, hwid: Uint8Array, reportedTcb: Tcb): Promise<Uint8Array | undefined>;
  /** The intermediate (ASK for VCEK, ASVK for VLEK) and the ARK of a product, DER, any order. */
  chain(product: Product, signer: SignerKind): Promise<Uint8Array[]>;
  /** Called once a chain verified to a trusted ARK; the Worker caches exactly these certificates. */
  verified?(chain: VerifiedChain): Promise<void> | void;
}

export interface VerifiedChain {
  product: Product;
  signer: SignerKind;
  ark: Uint8Array;
  intermediate: Uint8Array;
  vek: Uint8Array;
  hwid?: Uint8Array;
  reportedTcb: Tcb;
  vekNotAfter: Date;
}

/** Pinned AMD ARKs plus operator-listed extra ARKs, by SHA-256 of their DER (lowercase hex). */
export interface TrustAnchors {
  /** fingerprint → product the ARK is AMD's root for. */
  pinned: ReadonlyMap<string, Product>;
  /** fingerprint → product of the extra ARKs the operator listed (lab/test chips), from each ARK's CN (ARK-<Product>). */
  extra: ReadonlyMap<string, Product>;
}

/** Where the verifier gets AMD's CRLs (D1 cache + KDS `/{vcek|vlek}/v1/{product}/crl` in the Worker, a file in the CLI). */
export interface CrlSource {
  /**
   * The DER CRL AMD's ARK issues for this product's VCEK or VLEK side, or undefined when none is at
   * hand. A stale CRL is better than none: the verifier judges its nextUpdate. Throwing counts as
   * unavailable. The bytes need not be trusted: the verifier checks them under the chain's ARK.
   */
  crl(product: Product, signer: SignerKind): Promise<Uint8Array | undefined>;
  /** Called when CRL bytes verified under a trusted ARK for the first time in this isolate (the Worker caches exactly these). */
  verified?(crl: VerifiedCrl): Promise<void> | void;
}

export interface VerifiedCrl {
  product: Product;
  signer: SignerKind;
  /** SHA-256 (hex) of the ARK that issued it: the Worker caches only AMD's (pinned) lists. */
  arkFingerprint: string;
  der: Uint8Array;
  thisUpdate: Date;
  /** Absent when the CRL names none (it is then treated as stale). */
  nextUpdate?: Date;
}

export interface RevocationOptions {
  source: CrlSource;
  /**
   * What a missing or stale CRL (nextUpdate passed) means. "strict": refuse with crl-unavailable.
   * "best-effort": accept and record the gap in VerifiedReport.revocation. In both modes a revoked
   * certificate is refused (cert-revoked) and a CRL that does not verify is refused (crl-invalid).
   */
  mode: "strict" | "best-effort";
}

export type RevocationStatus =
  | "checked" // a current CRL verified under the ARK and lists neither the intermediate nor the VEK
  | "not-checked" // no revocation source configured
  | "unavailable" // best-effort: no CRL could be had
  | "stale"; // best-effort: the CRL verified and lists neither, but its nextUpdate has passed (or it has none)

export interface Revocation {
  status: RevocationStatus;
  /** One human sentence, e.g. "CRL of 2026-11-01T00:00:00.000Z, next update 2026-12-01T00:00:00.000Z". */
  detail: string;
}

export interface VerifyOptions {
  trust: TrustAnchors;
  /** Product hint for v2 reports (the legacy `gen` field or the CLI's --product). v3+ reports use CPUID. */
  productHint?: Product;
  /** DER certificates supplied with the evidence (any of VEK, ASK, ASVK, ARK; any order). */
  certificates?: Uint8Array[];
  provider?: CertificateProvider;
  /** Time at which certificate validity and CRL freshness are judged (default: now). */
  now?: Date;
  /** Revocation checking against AMD's CRLs; without it VerifiedReport.revocation is "not-checked". */
  revocation?: RevocationOptions;
}

/** The outcome of cryptographic verification: everything in the report is now AMD-attested. */
export interface VerifiedReport {
  report: SnpReport;
  product: Product;
  signer: SignerKind;
  reportedTcb: Tcb;
  currentTcb: Tcb;
  committedTcb: Tcb;
  launchTcb: Tcb;
  guestPolicy: GuestPolicy;
  platformInfo: PlatformInfo;
  /** SHA-256 (hex) of the VEK certificate DER used. */
  vekFingerprint: string;
  revocation: Revocation;
}
