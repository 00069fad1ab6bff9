// Appraisal of a verified SNP report against the workload owner's expectations and SNP policy
// (policy.ts). Every applicable rule is evaluated and reported with a stable dotted name and what was
// expected and seen, so a refusal says exactly which rule failed and why.

import { equalBytes, toHex } from "../../crypto/bytes";
import { versionParts, type BitRule, type SnpPolicy } from "./policy";
import { splsAbove } from "./report";
import { PRODUCTS, VerificationError, type FirmwareVersion, type GuestPolicy, type PlatformInfo, type RuleResult, type Tcb, type VerifiedReport } from "./types";

/** What the caller expects beyond the policy. null (the offline CLI only): no expectation, the rule is reported unchecked. */
export interface Expectations {
  /** The workload's registered launch_measurement (policy `measurements` adds further allowed ones). */
  measurement: Uint8Array | null;
  /** The exact 64-byte REPORT_DATA the session binds to. */
  reportData: Uint8Array | null;
}

export interface Appraisal {
  /** Every rule passed (unchecked ones count as passed: they had nothing to compare with). */
  ok: boolean;
  rules: RuleResult[];
  /** The policy the rules came from, defaults filled in. */
  policy: SnpPolicy;
}

/** The boolean fields of a decoded structure. */
type Flag<T> = { [K in keyof T]: T[K] extends boolean ? K : never }[keyof T];

type GuestBit = Exclude<keyof SnpPolicy["guest_policy"], "min_abi">;
const GUEST_BITS: Record<GuestBit, Flag<GuestPolicy>> = {
  debug: "debug",
  migrate_ma: "migrateMa",
  smt: "smt",
  single_socket: "singleSocket",
  cxl_allow: "cxlAllow",
  mem_aes_256_xts: "memAes256Xts",
  rapl_dis: "raplDis",
  ciphertext_hiding: "ciphertextHiding",
  page_swap_disable: "pageSwapDisable",
};

const PLATFORM_BITS: Record<keyof SnpPolicy["platform"], Flag<PlatformInfo>> = {
  smt_enabled: "smtEnabled",
  tsme_enabled: "tsmeEnabled",
  ecc_enabled: "eccEnabled",
  rapl_disabled: "raplDisabled",
  ciphertext_hiding_enabled: "ciphertextHidingEnabled",
  alias_check_complete: "aliasCheckComplete",
  tio_enabled: "tioEnabled",
};

const TCB_PARTS = ["bootloader", "tee", "snp", "microcode", "fmc"] as const;

const BIT_EXPECTED: Record<BitRule, string> = { required: "set", forbidden: "clear", any: "any" };

/** An allow-list as a short human string: up to three values, then a count. */
function oneOf(values: readonly (string | number)[]): string {
  const shown = values.slice(0, 3).join(" or ");
  return values.length > 3 ? `${shown} or ${values.length - 3} more` : shown;
}

const fw = (v: FirmwareVersion) => `${v.major}.${v.minor}.${v.build}`;
const fwParts = (v: FirmwareVersion) => [v.major, v.minor, v.build];

/** a ≥ b, comparing version parts in order. */
function atLeast(a: number[], b: number[]): boolean {
  for (let i = 0; i < b.length; i++) if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  return true;
}

export function appraiseSnp(v: VerifiedReport, expect: Expectations, policy: SnpPolicy): Appraisal {
  const r = v.report;
  const rules: RuleResult[] = [];
  const add = (rule: string, ok: boolean, expected: string, actual: string) => rules.push({ rule, ok, expected, actual });
  const unchecked = (rule: string, actual: string) => rules.push({ rule, ok: true, expected: "not checked", actual, checked: false });
  const allowed = (rule: string, values: readonly string[], actual: string) => add(rule, values.includes(actual), oneOf(values), actual);
  const bit = (rule: string, want: BitRule, actual: boolean) =>
    add(rule, want === "any" || (want === "required") === actual, BIT_EXPECTED[want], actual ? "set" : "clear");

  // Expectations first: a stale nonce or a wrong image is the likeliest refusal.
  const reportData = toHex(r.reportData);
  if (expect.reportData) add("report_data", equalBytes(expect.reportData, r.reportData), toHex(expect.reportData), reportData);
  else unchecked("report_data", reportData);
  const measurements = [...(expect.measurement ? [toHex(expect.measurement)] : []), ...policy.measurements];
  if (measurements.length) allowed("measurement", measurements, toHex(r.measurement));
  else unchecked("measurement", toHex(r.measurement));

  if (policy.products.length < PRODUCTS.length) allowed("product", policy.products, v.product);
  if (policy.min_report_version > 2) add("report_version", r.version >= policy.min_report_version, `>= ${policy.min_report_version}`, String(r.version));
  allowed("signer", policy.signers, v.signer);
  add("vmpl", policy.vmpl.includes(r.vmpl), oneOf(policy.vmpl), String(r.vmpl));

  for (const [key, field] of Object.entries(GUEST_BITS) as [GuestBit, Flag<GuestPolicy>][]) {
    const want = policy.guest_policy[key];
    if (want !== "any" || key === "debug") bit(`guest_policy.${key}`, want, v.guestPolicy[field]);
  }
  const minAbi = policy.guest_policy.min_abi;
  if (minAbi !== undefined) {
    const { abiMajor, abiMinor } = v.guestPolicy;
    add("guest_policy.min_abi", atLeast([abiMajor, abiMinor], versionParts(minAbi, 2)!), `>= ${minAbi}`, `${abiMajor}.${abiMinor}`);
  }
  for (const [key, field] of Object.entries(PLATFORM_BITS) as [keyof SnpPolicy["platform"], Flag<PlatformInfo>][]) {
    const want = policy.platform[key];
    if (want !== "any") bit(`platform.${key}`, want, v.platformInfo[field]);
  }

  const tcbs: Record<keyof SnpPolicy["tcb"], Tcb> = { reported: v.reportedTcb, launch: v.launchTcb, committed: v.committedTcb };
  for (const [which, tcb] of Object.entries(tcbs) as [keyof SnpPolicy["tcb"], Tcb][]) {
    const floor = policy.tcb[which];
    if (!floor) continue;
    for (const part of TCB_PARTS) {
      const min = floor[part];
      const got = tcb[part];
      // fmc floors do not apply to Milan/Genoa, whose TCB has no FMC (got is undefined).
      if (min !== undefined && got !== undefined) add(`tcb.${which}.${part}`, got >= min, `>= ${min}`, String(got));
    }
  }
  // Always (go-sev-guest validateTcb): the VEK is bound to REPORTED_TCB, which the host chooses; above
  // CURRENT_TCB it would vouch for fixes the running firmware lacks.
  const reportedAbove = splsAbove(r.reportedTcb, r.currentTcb, v.product);
  add("tcb.reported_not_above_current", !reportedAbove.length, `<= ${v.currentTcb.raw} in every SPL`, [v.reportedTcb.raw, ...reportedAbove].join(": "));

  const cur = r.currentVersion;
  const minFw = policy.firmware.min_version;
  if (minFw !== undefined) add("firmware.min_version", atLeast(fwParts(cur), versionParts(minFw, 3)!), `>= ${minFw}`, fw(cur));
  // Always, as go-sev-guest (validateTcb, validateVersion): provisional firmware (CURRENT above COMMITTED)
  // only where allowed, and never the committed (anti-rollback) level above the running one.
  const com = r.committedVersion;
  const firmwareState = `current ${v.currentTcb.raw} ${fw(cur)}, committed ${v.committedTcb.raw} ${fw(com)}`;
  if (policy.firmware.allow_provisional) {
    const committedAbove = splsAbove(r.committedTcb, r.currentTcb, v.product);
    add("firmware.provisional", !committedAbove.length && atLeast(fwParts(cur), fwParts(com)), "committed <= current", [firmwareState, ...committedAbove].join(": "));
  } else {
    add("firmware.provisional", r.currentTcb === r.committedTcb && fw(cur) === fw(com), "current = committed", firmwareState);
  }

  const exact: [string, string | undefined, Uint8Array][] = [
    ["host_data", policy.host_data, r.hostData],
    ["report_id_ma", policy.report_id_ma, r.reportIdMa],
    ["family_id", policy.family_id, r.familyId],
    ["image_id", policy.image_id, r.imageId],
  ];
  for (const [rule, want, got] of exact) if (want !== undefined) allowed(rule, [want], toHex(got));
  if (policy.id_key_digests) allowed("id_key_digest", policy.id_key_digests, toHex(r.idKeyDigest));
  const authorKeys = policy.author_key_digests;
  if (authorKeys) {
    // The firmware vouches for AUTHOR_KEY_DIGEST only with AUTHOR_KEY_EN set (go-sev-guest validateKeys).
    const digest = toHex(r.authorKeyDigest);
    const actual = `AUTHOR_KEY_EN ${r.authorKeyEn ? "set" : "clear"}, digest ${digest}`;
    add("author_key_digest", r.authorKeyEn && authorKeys.includes(digest), `AUTHOR_KEY_EN set and digest ${oneOf(authorKeys)}`, actual);
  }
  if (policy.chip_ids) allowed("chip_id", policy.chip_ids, toHex(r.chipId));
  if (policy.min_guest_svn !== undefined) add("guest_svn", r.guestSvn >= policy.min_guest_svn, `>= ${policy.min_guest_svn}`, String(r.guestSvn));

  const vectors = { current: r.currentMitVector, launch: r.launchMitVector };
  for (const [which, vector] of Object.entries(vectors) as ["current" | "launch", bigint | undefined][]) {
    const bits = policy.mitigation_vector[which];
    if (!bits?.length) continue;
    const expected = `bits ${bits.join(",")} set`;
    if (vector === undefined) add(`mitigation_vector.${which}`, false, expected, `none: a v${r.version} report has no mitigation vectors`);
    else add(`mitigation_vector.${which}`, bits.every((b) => ((vector >> BigInt(b)) & 1n) === 1n), expected, `0x${vector.toString(16)}`);
  }

  return { ok: rules.every((x) => x.ok), rules, policy };
}

const MESSAGE_BYTES = 180;

/**
 * The refusal message for a failing rule, at most 180 bytes: a C client copies error bodies into a
 * 200-byte buffer. Long hex keeps a recognisable 16-digit prefix.
 */
function refusal({ rule, expected, actual }: RuleResult): string {
  const shortHex = (s: string) => s.replace(/[0-9a-f]{25,}/g, (h) => `${h.slice(0, 16)}…`);
  const message = `${rule}: expected ${shortHex(expected)}, got ${shortHex(actual)}`;
  const bytes = new TextEncoder().encode(message);
  if (bytes.length <= MESSAGE_BYTES) return message;
  // Cut to leave room for "…" (3 bytes); a character split by the cut decodes as U+FFFD and is dropped.
  return `${new TextDecoder().decode(bytes.subarray(0, MESSAGE_BYTES - 3)).replace(/\uFFFD$/, "")}…`;
}

/** Throws VerificationError("policy") naming the first failing rule; all failing rules travel in `extra.rules`. */
export function assertAppraised(appraisal: Appraisal): void {
  const failing = appraisal.rules.filter((r) => !r.ok);
  if (failing.length) throw new VerificationError("policy", refusal(failing[0]!), { rules: failing });
}
