// The SNP evidence a Trustee guest sends (guest-components' SnpEvidence): the virtee/sev crate's serde JSON
// of AttestationReport (its current form: integers, byte arrays as arrays of integers, TCBs as {fmc, bootloader,
// tee, snp, microcode}, key_info, cpuid_*, current/committed as {major, minor, build}) and of its CertTableEntry
// list. The report is re-encoded into the 1184 ABI bytes, so the verifier checks exactly the bytes the
// firmware signed: what the serde form cannot carry (reserved bytes) is zero, as the firmware writes it, and
// a form that does not round-trip simply fails the signature.
//
// Decisions. Unknown members are refused (evidence-malformed), at every level: each member maps to report
// bytes, so one we do not know is bytes we would drop. Option members (fmc, cpuid_*, *_mit_vector) may be
// null or absent, as serde reads them. v5 mitigation vectors absent or null are written as zero: older sev
// releases have no such members (Trustee's own e2e evidence lacks them), and the signature decides whether
// zero was right.

import { TeeError } from "../../errors";
import { REPORT_SIZE } from "./report";

const MAX_CERTS = 8;
const MAX_CERT_BYTES = 16 * 1024;
const U8 = 0xff;
const U32 = 0xffff_ffff;
/** A u64 above 2^53 cannot arrive exactly through JSON.parse, so it is refused rather than rounded. */
const U64 = Number.MAX_SAFE_INTEGER;

function malformed(path: string, problem: string): never {
  throw new TeeError("snp", "evidence-malformed", `${path}: ${problem}`);
}

type Fields = Record<string, unknown>;

/** An object with exactly these members; `optional` ones may be missing (serde's Option). */
function object(value: unknown, path: string, members: readonly string[], optional: readonly string[] = []): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) malformed(path, "expected an object");
  // The name is the sender's: cut, so an error detail stays short.
  for (const key of Object.keys(value)) if (!members.includes(key)) malformed(`${path}.${key.slice(0, 40)}`, "unknown member");
  for (const key of members) if (!Object.hasOwn(value, key) && !optional.includes(key)) malformed(`${path}.${key}`, "missing");
  return value as Fields;
}

function uint(value: unknown, path: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) malformed(path, `expected an integer 0-${max}`);
  return value;
}

/** An Option<u8|u64>: null or absent gives undefined. */
function optionalUint(value: unknown, path: string, max: number): number | undefined {
  return value === null || value === undefined ? undefined : uint(value, path, max);
}

function byteArray(value: unknown, path: string, length: number | { max: number }): Uint8Array {
  if (!Array.isArray(value)) malformed(path, "expected an array of bytes");
  if (typeof length === "number" ? value.length !== length : value.length > length.max) {
    malformed(path, typeof length === "number" ? `expected ${length} bytes, got ${value.length}` : `more than ${length.max} bytes`);
  }
  return Uint8Array.from(value, (b, i) => uint(b, `${path}[${i}]`, U8));
}

const REPORT_MEMBERS = [
  "version", "guest_svn", "policy", "family_id", "image_id", "vmpl", "sig_algo", "current_tcb", "plat_info", "key_info",
  "report_data", "measurement", "host_data", "id_key_digest", "author_key_digest", "report_id", "report_id_ma",
  "reported_tcb", "cpuid_fam_id", "cpuid_mod_id", "cpuid_step", "chip_id", "committed_tcb", "current", "committed",
  "launch_tcb", "launch_mit_vector", "current_mit_vector", "signature",
] as const;
const OPTIONAL_MEMBERS = ["cpuid_fam_id", "cpuid_mod_id", "cpuid_step", "launch_mit_vector", "current_mit_vector"];

/** Byte fields: member → [offset, length] (AMD pub. 56860, ATTESTATION_REPORT). */
const BYTE_FIELDS: [string, number, number][] = [
  ["family_id", 0x010, 16],
  ["image_id", 0x020, 16],
  ["report_data", 0x050, 64],
  ["measurement", 0x090, 48],
  ["host_data", 0x0c0, 32],
  ["id_key_digest", 0x0e0, 48],
  ["author_key_digest", 0x110, 48],
  ["report_id", 0x140, 32],
  ["report_id_ma", 0x160, 32],
  ["chip_id", 0x1a0, 64],
];

/**
 * The 8 TCB_VERSION bytes, least significant first. virtee's TcbVersion carries fmc only in the Turin
 * layout (fmc, bl, tee, snp, 0, 0, 0, ucode); the other products' is (bl, tee, 0, 0, 0, 0, snp, ucode).
 */
function tcbBytes(value: unknown, path: string, turin: boolean): number[] {
  const t = object(value, path, ["fmc", "bootloader", "tee", "snp", "microcode"], ["fmc"]);
  const fmc = optionalUint(t.fmc, `${path}.fmc`, U8);
  if (turin !== (fmc !== undefined)) malformed(`${path}.fmc`, turin ? "missing in a Turin-layout TCB" : "present in a pre-Turin TCB");
  const [bl, tee, snp, ucode] = (["bootloader", "tee", "snp", "microcode"] as const).map((k) => uint(t[k], `${path}.${k}`, U8)) as [number, number, number, number];
  return turin ? [fmc!, bl, tee, snp, 0, 0, 0, ucode] : [bl, tee, 0, 0, 0, 0, snp, ucode];
}

/** A firmware Version {major, minor, build}, stored build, minor, major. */
function firmwareBytes(value: unknown, path: string): number[] {
  const v = object(value, path, ["major", "minor", "build"]);
  return [uint(v.build, `${path}.build`, U8), uint(v.minor, `${path}.minor`, U8), uint(v.major, `${path}.major`, U8)];
}

/**
 * Whether the report's TCBs use the Turin layout, as virtee decided when it serialised them: from CPUID for
 * v3+ (family 0x1A and above), from the presence of fmc for v2 (virtee guesses from CHIP_ID there).
 */
function turinLayout(r: Fields, family: number | undefined): boolean {
  if (family !== undefined) return family >= 0x1a;
  const tcb = r.reported_tcb;
  return typeof tcb === "object" && tcb !== null && (tcb as Fields).fmc !== null && (tcb as Fields).fmc !== undefined;
}

/**
 * The 1184 report bytes of a virtee/sev serde AttestationReport. Throws TeeError evidence-malformed
 * "<path>: <problem>" for any member of the wrong type, length or range, a missing or unknown member, CPUID
 * present in a v2 report or missing from a v3+ one, mitigation vectors before v5, or an fmc that does not
 * match the layout. What the bytes mean (version supported, reserved bits, signature) is the parser's and
 * the verifier's business.
 */
export function reportFromSerde(json: unknown): Uint8Array {
  const path = "attestation_report";
  const r = object(json, path, REPORT_MEMBERS, OPTIONAL_MEMBERS);
  const at = (member: string) => `${path}.${member}`;
  const out = new Uint8Array(REPORT_SIZE);
  const view = new DataView(out.buffer);
  const u32 = (member: string, offset: number) => view.setUint32(offset, uint(r[member], at(member), U32), true);
  const u64 = (offset: number, value: number) => view.setBigUint64(offset, BigInt(value), true);

  const version = uint(r.version, at("version"), U32);
  const cpuid = (["cpuid_fam_id", "cpuid_mod_id", "cpuid_step"] as const).map((member) => {
    const value = optionalUint(r[member], at(member), U8);
    if (version >= 3 && value === undefined) malformed(at(member), `missing in a version ${version} report`);
    if (version < 3 && value !== undefined) malformed(at(member), `present in a version ${version} report`);
    return value;
  });
  if (cpuid[0] !== undefined) out.set(cpuid as number[], 0x188);
  const turin = turinLayout(r, cpuid[0]);

  u32("version", 0x000);
  u32("guest_svn", 0x004);
  u64(0x008, uint(r.policy, at("policy"), U64));
  u32("vmpl", 0x030);
  u32("sig_algo", 0x034);
  u64(0x040, uint(r.plat_info, at("plat_info"), U64));
  u32("key_info", 0x048);
  for (const [member, offset, length] of BYTE_FIELDS) out.set(byteArray(r[member], at(member), length), offset);
  for (const [member, offset] of [["current_tcb", 0x038], ["reported_tcb", 0x180], ["committed_tcb", 0x1e0], ["launch_tcb", 0x1f0]] as const) {
    out.set(tcbBytes(r[member], at(member), turin), offset);
  }
  out.set(firmwareBytes(r.current, at("current")), 0x1e8);
  out.set(firmwareBytes(r.committed, at("committed")), 0x1ec);
  (["launch_mit_vector", "current_mit_vector"] as const).forEach((member, i) => {
    const value = optionalUint(r[member], at(member), U64);
    if (version < 5 && value !== undefined) malformed(at(member), `present in a version ${version} report`);
    if (value !== undefined) u64(0x1f8 + 8 * i, value);
  });

  // Each of R and S is a 72-byte little-endian field, as in the report.
  const signature = object(r.signature, at("signature"), ["r", "s"]);
  out.set(byteArray(signature.r, at("signature.r"), 72), 0x2a0);
  out.set(byteArray(signature.s, at("signature.s"), 72), 0x2e8);
  return out;
}

/** virtee's CertType names whose data is a certificate the verifier can use. */
const CERTIFICATE_TYPES = ["ARK", "ASK", "VCEK", "VLEK"];
/** CertType names whose data is no certificate for us: the closing entry and a CRL (CRLs come from the CrlSource). */
const SKIPPED_TYPES = ["Empty", "CRL"];
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The DER certificates of a serde `cert_chain`: null (or absent) for none, else at most 8 entries
 * {cert_type, data}, each at most 16 KiB. cert_type is virtee's CertType: "ARK", "ASK", "VCEK", "VLEK"
 * (kept), "Empty", "CRL" or {"OTHER": "<uuid>"} (skipped: no certificate the verifier knows). Throws
 * TeeError evidence-malformed "<path>: <problem>" for anything else.
 */
export function certificatesFromSerde(chain: unknown): Uint8Array[] {
  if (chain === null || chain === undefined) return [];
  if (!Array.isArray(chain)) malformed("cert_chain", "expected null or an array");
  if (chain.length > MAX_CERTS) malformed("cert_chain", `more than ${MAX_CERTS} entries`);
  return chain.flatMap((item: unknown, i) => {
    const path = `cert_chain[${i}]`;
    const entry = object(item, path, ["cert_type", "data"]);
    const data = byteArray(entry.data, `${path}.data`, { max: MAX_CERT_BYTES });
    const type = entry.cert_type;
    if (typeof type === "string" && CERTIFICATE_TYPES.includes(type)) return [data];
    if (typeof type === "string" && SKIPPED_TYPES.includes(type)) return [];
    const other = typeof type === "object" ? object(type, `${path}.cert_type`, ["OTHER"]).OTHER : undefined;
    if (typeof other === "string" && UUID_RE.test(other)) return [];
    return malformed(`${path}.cert_type`, `expected one of ${[...CERTIFICATE_TYPES, ...SKIPPED_TYPES].join(", ")} or {"OTHER": "<uuid>"}`);
  });
}
