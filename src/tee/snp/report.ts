// Parser for the SEV-SNP ATTESTATION_REPORT (versions 2–5) and decoders for its bit fields.
// Layout: AMD pub. 56860, ATTESTATION_REPORT and TCB_VERSION structures; what is relied on and checked:
// docs/snp-verification.md §Report layout to §Guest POLICY and PLATFORM_INFO.

import { concat, reversed } from "../../crypto/bytes";
import { VerificationError, type GuestPolicy, type PlatformInfo, type Product, type SnpReport, type Tcb } from "./types";

export const REPORT_SIZE = 0x4a0;
/** The report signature covers exactly the bytes before the signature field. */
export const SIGNED_SIZE = 0x2a0;
export const SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];

/** SIGNATURE_ALGO 1 = ECDSA P-384 with SHA-384, the only value AMD defines. */
const ECDSA_P384_SHA384 = 1;
/** R and S are 72-byte little-endian fields of which a P-384 scalar uses the low 48 bytes. */
const SIG_R = 0x2a0;
const SIG_S = 0x2e8;
const P384_SCALAR = 48;

/**
 * The reserved byte ranges [from, to) of a report of this version, all of which must be zero (go-sev-guest's
 * ReportToProto checks the same): v3 put CPUID into 0x188–0x18A, v5 the mitigation vectors into 0x1F8–0x207.
 * The last three are the unused upper 24 bytes of R and of S and the rest of the signature field.
 */
function reservedRanges(version: number): [number, number][] {
  return [
    [0x04c, 0x050],
    [version >= 3 ? 0x18b : 0x188, 0x1a0],
    [0x1eb, 0x1ec],
    [0x1ef, 0x1f0],
    [version >= 5 ? 0x208 : 0x1f8, SIGNED_SIZE],
    [SIG_R + P384_SCALAR, SIG_S],
    [SIG_S + P384_SCALAR, 0x330],
    [0x330, REPORT_SIZE],
  ];
}

function malformed(reason: string): never {
  throw new VerificationError("report-malformed", `SNP report: ${reason}`);
}

function bit(value: bigint, n: number): boolean {
  return ((value >> BigInt(n)) & 1n) === 1n;
}

/**
 * Parses and structurally checks a report. Checks the must-be-one/zero bits and bytes go-sev-guest checks,
 * and the VMPL range, but tolerates unknown PLATFORM_INFO bits: real Turin reports set the reserved bit 6.
 */
export function parseReport(bytes: Uint8Array): SnpReport {
  if (bytes.length !== REPORT_SIZE) malformed(`expected ${REPORT_SIZE} bytes, got ${bytes.length}`);
  const b = Uint8Array.from(bytes);
  const dv = new DataView(b.buffer);
  const u32 = (off: number) => dv.getUint32(off, true);
  const u64 = (off: number) => dv.getBigUint64(off, true);
  const field = (off: number, len: number) => b.slice(off, off + len);

  const version = u32(0x000);
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new VerificationError("report-version", `SNP report version ${version} is not supported (supported: ${SUPPORTED_VERSIONS.join(", ")})`);
  }
  const signatureAlgo = u32(0x034);
  if (signatureAlgo !== ECDSA_P384_SHA384) {
    throw new VerificationError("unsupported-signer", `SNP report SIGNATURE_ALGO ${signatureAlgo} is not ECDSA P-384/SHA-384 (1)`);
  }
  const policy = u64(0x008);
  if (!bit(policy, 17)) malformed("POLICY bit 17 must be 1");
  if (policy >> 26n !== 0n) malformed("POLICY bits 63:26 must be zero");
  const signerInfo = u32(0x048);
  if (signerInfo >>> 5 !== 0) malformed("signer info bits 31:5 must be zero");
  for (const [from, to] of reservedRanges(version)) {
    const at = b.subarray(from, to).findIndex((x) => x !== 0);
    if (at >= 0) malformed(`reserved byte 0x${(from + at).toString(16)} must be zero, is 0x${b[from + at]!.toString(16).padStart(2, "0")}`);
  }
  // A guest asks for its report at VMPL 0-3; AMD defines no other value for a guest's request.
  const vmpl = u32(0x030);
  if (vmpl > 3) malformed(`VMPL ${vmpl} is outside 0-3`);

  const report: SnpReport = {
    bytes: b,
    version,
    guestSvn: u32(0x004),
    policy,
    familyId: field(0x010, 16),
    imageId: field(0x020, 16),
    vmpl,
    signatureAlgo,
    currentTcb: u64(0x038),
    platformInfo: u64(0x040),
    authorKeyEn: (signerInfo & 1) !== 0,
    maskChipKey: (signerInfo & 2) !== 0,
    signingKey: (signerInfo >>> 2) & 7,
    reportData: field(0x050, 64),
    measurement: field(0x090, 48),
    hostData: field(0x0c0, 32),
    idKeyDigest: field(0x0e0, 48),
    authorKeyDigest: field(0x110, 48),
    reportId: field(0x140, 32),
    reportIdMa: field(0x160, 32),
    reportedTcb: u64(0x180),
    chipId: field(0x1a0, 64),
    committedTcb: u64(0x1e0),
    currentVersion: { build: b[0x1e8]!, minor: b[0x1e9]!, major: b[0x1ea]! },
    committedVersion: { build: b[0x1ec]!, minor: b[0x1ed]!, major: b[0x1ee]! },
    launchTcb: u64(0x1f0),
    // WebCrypto wants IEEE-P1363 r‖s, big-endian: reverse the low 48 bytes of each LE field.
    signature: concat(reversed(b.subarray(SIG_R, SIG_R + P384_SCALAR)), reversed(b.subarray(SIG_S, SIG_S + P384_SCALAR))),
  };
  if (version >= 3) report.cpuid = { family: b[0x188]!, model: b[0x189]!, stepping: b[0x18a]! };
  if (version >= 5) {
    report.launchMitVector = u64(0x1f8);
    report.currentMitVector = u64(0x200);
  }
  return report;
}

/** The TCB as 16 hex digits, most significant byte first (how AMD tools print it). */
export function tcbHex(raw: bigint): string {
  return raw.toString(16).padStart(16, "0");
}

/** SPL names as the VEK certificate extensions spell them (AMD pub. 57230; docs/snp-verification.md §AMD certificate extensions). */
export type SplName = "fmcSPL" | "blSPL" | "teeSPL" | "snpSPL" | "ucodeSPL" | "spl_4" | "spl_5" | "spl_6" | "spl_7";
export type SplValues = Partial<Record<SplName, number>>;

/** Byte position (0 = least significant) of each SPL in a TCB_VERSION; Turin moved them and added the FMC. */
const TCB_LAYOUT: Record<"v0" | "turin", SplValues> = {
  v0: { blSPL: 0, teeSPL: 1, spl_4: 2, spl_5: 3, spl_6: 4, spl_7: 5, snpSPL: 6, ucodeSPL: 7 },
  turin: { fmcSPL: 0, blSPL: 1, teeSPL: 2, snpSPL: 3, ucodeSPL: 7 },
};

/** Every SPL a TCB_VERSION carries for this product, by extension name (what a VEK must match). */
export function tcbSpls(raw: bigint, product: Product): SplValues {
  const out: SplValues = {};
  for (const [name, pos] of Object.entries(TCB_LAYOUT[product === "Turin" ? "turin" : "v0"])) {
    out[name as SplName] = Number((raw >> BigInt(8 * pos)) & 0xffn);
  }
  return out;
}

/**
 * Where TCB `a` is above TCB `b`, SPL by SPL in the product's layout (never the TCB as one number), e.g.
 * ["ucodeSPL 220 > 219"]; empty when a <= b in every SPL.
 */
export function splsAbove(a: bigint, b: bigint, product: Product): string[] {
  const lower = tcbSpls(b, product);
  return Object.entries(tcbSpls(a, product))
    .filter(([name, value]) => value > lower[name as SplName]!)
    .map(([name, value]) => `${name} ${value} > ${lower[name as SplName]}`);
}

/** The TCB_VERSION that these SPLs (a VCEK's extensions) spell for this product: tcbSpls's inverse. */
export function encodeTcb(spl: SplValues, product: Product): bigint {
  let raw = 0n;
  for (const [name, pos] of Object.entries(TCB_LAYOUT[product === "Turin" ? "turin" : "v0"])) raw |= BigInt(spl[name as SplName] ?? 0) << BigInt(8 * pos);
  return raw;
}

export function decodeTcb(raw: bigint, product: Product): Tcb {
  const spl = tcbSpls(raw, product);
  const tcb: Tcb = { raw: tcbHex(raw), bootloader: spl.blSPL!, tee: spl.teeSPL!, snp: spl.snpSPL!, microcode: spl.ucodeSPL! };
  if (spl.fmcSPL !== undefined) tcb.fmc = spl.fmcSPL;
  return tcb;
}

export function decodeGuestPolicy(policy: bigint): GuestPolicy {
  return {
    abiMinor: Number(policy & 0xffn),
    abiMajor: Number((policy >> 8n) & 0xffn),
    smt: bit(policy, 16),
    migrateMa: bit(policy, 18),
    debug: bit(policy, 19),
    singleSocket: bit(policy, 20),
    cxlAllow: bit(policy, 21),
    memAes256Xts: bit(policy, 22),
    raplDis: bit(policy, 23),
    ciphertextHiding: bit(policy, 24),
    pageSwapDisable: bit(policy, 25),
  };
}

export function decodePlatformInfo(info: bigint): PlatformInfo {
  return {
    smtEnabled: bit(info, 0),
    tsmeEnabled: bit(info, 1),
    eccEnabled: bit(info, 2),
    raplDisabled: bit(info, 3),
    ciphertextHidingEnabled: bit(info, 4),
    aliasCheckComplete: bit(info, 5),
    tioEnabled: bit(info, 7),
  };
}

/** CPUID family/model ranges per KDS product (virtee/trustee's table; docs/snp-verification.md §Product). */
const CPUID_PRODUCTS: readonly { family: number; models: [number, number]; product: Product }[] = [
  { family: 0x19, models: [0x00, 0x0f], product: "Milan" },
  { family: 0x19, models: [0x10, 0x1f], product: "Genoa" },
  { family: 0x19, models: [0xa0, 0xaf], product: "Genoa" }, // Siena/Bergamo use Genoa's keys
  { family: 0x1a, models: [0x00, 0x11], product: "Turin" },
];

export function productFromCpuid(family: number, model: number): Product | undefined {
  return CPUID_PRODUCTS.find((p) => p.family === family && model >= p.models[0] && model <= p.models[1])?.product;
}
