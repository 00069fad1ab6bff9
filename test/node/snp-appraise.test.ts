// The SNP appraisal rules, each with a passing and a failing report: synthetic reports signed by a test
// VCEK, verified, then appraised. Bit positions come from AMD pub. 56860 as summarised in
// docs/snp-verification.md §Guest POLICY and PLATFORM_INFO, not from the code.

import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../src/crypto/bytes";
import { appraiseSnp, assertAppraised, type Appraisal, type Expectations } from "../../src/tee/snp/appraise";
import { parseSnpPolicy } from "../../src/tee/snp/policy";
import { trustAnchors } from "../../src/tee/snp/trust";
import { VerificationError, type RuleResult } from "../../src/tee/snp/types";
import { verifySnpReport } from "../../src/tee/snp/verify";
import { certificatesOf, createSyntheticChip, type ReportFields, type SyntheticChip } from "../../lab/synthetic-amd";

const fill = (n: number, b: number) => new Uint8Array(n).fill(b);
const MEASUREMENT = fill(48, 0xbb);
const REPORT_DATA = fill(64, 0xaa);
const expectation = { measurement: MEASUREMENT, reportData: REPORT_DATA };
/** POLICY with only the must-be-one bit 17. */
const POLICY_BASE = 1n << 17n;

let milan: SyntheticChip;
let turin: SyntheticChip;

beforeAll(async () => {
  [milan, turin] = await Promise.all([createSyntheticChip({ product: "Milan" }), createSyntheticChip({ product: "Turin" })]);
});

/** A report of `chip` (expected measurement and REPORT_DATA unless overridden), verified, then appraised under `policy`. */
async function appraise(fields: Partial<ReportFields>, policy: object | string = "", chip = milan, expect_: Expectations = expectation): Promise<Appraisal> {
  const report = await chip.report({ measurement: MEASUREMENT, reportData: REPORT_DATA, ...fields });
  const verified = await verifySnpReport(report, { trust: await trustAnchors(chip.arkPem), certificates: certificatesOf(chip) });
  return appraiseSnp(verified, expect_, parseSnpPolicy(typeof policy === "string" ? policy : JSON.stringify(policy)));
}

const ruleOf = (a: Appraisal, name: string): RuleResult | undefined => a.rules.find((r) => r.rule === name);
const failing = (a: Appraisal) => a.rules.filter((r) => !r.ok).map((r) => r.rule);

interface Case {
  rule: string;
  policy: object;
  pass: Partial<ReportFields>;
  fail: Partial<ReportFields>;
  /** Policy for the failing report when it differs (rules that compare with the chip's own fixed values). */
  failPolicy?: object;
  expected: string;
  actual: string;
  chip?: () => SyntheticChip;
}

const GUEST_BITS: [string, number][] = [
  ["smt", 16],
  ["migrate_ma", 18],
  ["single_socket", 20],
  ["cxl_allow", 21],
  ["mem_aes_256_xts", 22],
  ["rapl_dis", 23],
  ["ciphertext_hiding", 24],
  ["page_swap_disable", 25],
];
const PLATFORM_BITS: [string, number][] = [
  ["smt_enabled", 0],
  ["tsme_enabled", 1],
  ["ecc_enabled", 2],
  ["rapl_disabled", 3],
  ["ciphertext_hiding_enabled", 4],
  ["alias_check_complete", 5],
  ["tio_enabled", 7],
];
const bitCases = (prefix: string, bits: [string, number][], field: "policy" | "platformInfo", base: bigint): Case[] =>
  bits.flatMap(([name, n]) => [
    {
      rule: `${prefix}.${name}`,
      policy: { [prefix]: { [name]: "required" } },
      pass: { [field]: base | (1n << BigInt(n)) },
      fail: { [field]: base },
      expected: "set",
      actual: "clear",
    },
    {
      rule: `${prefix}.${name}`,
      policy: { [prefix]: { [name]: "forbidden" } },
      pass: { [field]: base },
      fail: { [field]: base | (1n << BigInt(n)) },
      expected: "clear",
      actual: "set",
    },
  ]);

/** Milan TCB parts (docs/snp-verification.md §TCB_VERSION: bl byte 0, tee 1, snp 6, ucode 7) and the chip's default values. */
const MILAN_TCB = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };
const TURIN_TCB = { fmc: 0, bootloader: 1, tee: 0, snp: 2, microcode: 71 };
/** Floors at a TCB's own components pass; one above fails. */
const tcbCases = (which: "reported" | "launch" | "committed", parts: Record<string, number>, chip: () => SyntheticChip, fields: Partial<ReportFields> = {}): Case[] =>
  Object.entries(parts).map(([part, value]) => ({
    rule: `tcb.${which}.${part}`,
    policy: { tcb: { [which]: { [part]: value } } },
    pass: fields,
    fail: fields,
    failPolicy: { tcb: { [which]: { [part]: value + 1 } } },
    expected: `>= ${value + 1}`,
    actual: String(value),
    chip,
  }));
/** An older LAUNCH_TCB than the chip reports now. */
const MILAN_LAUNCH_TCB = { bootloader: 3, tee: 0, snp: 23, microcode: 218 };

const OTHER = (n: number) => "0f".repeat(n);
const cases: Case[] = [
  { rule: "product", policy: { products: ["Milan", "Turin"] }, pass: {}, fail: {}, failPolicy: { products: ["Genoa"] }, expected: "Genoa", actual: "Milan" },
  { rule: "report_version", policy: { min_report_version: 3 }, pass: { version: 3 }, fail: { version: 2 }, expected: ">= 3", actual: "2" },
  { rule: "signer", policy: { signers: ["VCEK"] }, pass: {}, fail: {}, failPolicy: { signers: ["VLEK"] }, expected: "VLEK", actual: "VCEK" },
  { rule: "vmpl", policy: { vmpl: [0, 2] }, pass: { vmpl: 2 }, fail: { vmpl: 1 }, expected: "0 or 2", actual: "1" },
  { rule: "guest_policy.debug", policy: {}, pass: { policy: POLICY_BASE }, fail: { policy: POLICY_BASE | (1n << 19n) }, expected: "clear", actual: "set" },
  ...bitCases("guest_policy", GUEST_BITS, "policy", POLICY_BASE),
  {
    rule: "guest_policy.min_abi",
    policy: { guest_policy: { min_abi: "1.51" } },
    pass: { policy: POLICY_BASE | (1n << 8n) | 51n },
    fail: { policy: POLICY_BASE | 31n },
    expected: ">= 1.51",
    actual: "0.31",
  },
  ...bitCases("platform", PLATFORM_BITS, "platformInfo", 0n),
  ...tcbCases("reported", MILAN_TCB, () => milan),
  ...tcbCases("reported", TURIN_TCB, () => turin),
  ...tcbCases("launch", MILAN_LAUNCH_TCB, () => milan, { launchTcb: MILAN_LAUNCH_TCB }),
  ...tcbCases("committed", TURIN_TCB, () => turin),
  {
    rule: "firmware.min_version",
    policy: { firmware: { min_version: "1.55.40" } },
    pass: { currentVersion: { major: 1, minor: 56, build: 0 } },
    fail: { currentVersion: { major: 1, minor: 55, build: 39 }, committedVersion: { major: 1, minor: 55, build: 39 } },
    expected: ">= 1.55.40",
    actual: "1.55.39",
  },
  {
    rule: "firmware.provisional",
    policy: { firmware: { allow_provisional: false } },
    pass: {},
    fail: { currentTcb: { ...MILAN_TCB, microcode: 220 } },
    expected: "current = committed",
    actual: "current dc18000000000004 1.55.40, committed db18000000000004 1.55.40",
  },
  { rule: "host_data", policy: { host_data: "12".repeat(32) }, pass: { hostData: fill(32, 0x12) }, fail: {}, expected: "12".repeat(32), actual: "00".repeat(32) },
  { rule: "report_id_ma", policy: { report_id_ma: "FF".repeat(32) }, pass: {}, fail: { reportIdMa: fill(32, 1) }, expected: "ff".repeat(32), actual: "01".repeat(32) },
  {
    rule: "id_key_digest",
    policy: { id_key_digests: [OTHER(48), "34".repeat(48)] },
    pass: { idKeyDigest: fill(48, 0x34) },
    fail: {},
    expected: `${OTHER(48)} or ${"34".repeat(48)}`,
    actual: "00".repeat(48),
  },
  {
    rule: "author_key_digest",
    policy: { author_key_digests: ["56".repeat(48)] },
    pass: { authorKeyEn: true, authorKeyDigest: fill(48, 0x56) },
    fail: { authorKeyEn: true, authorKeyDigest: fill(48, 0x57) },
    expected: `AUTHOR_KEY_EN set and digest ${"56".repeat(48)}`,
    actual: `AUTHOR_KEY_EN set, digest ${"57".repeat(48)}`,
  },
  { rule: "family_id", policy: { family_id: "78".repeat(16) }, pass: { familyId: fill(16, 0x78) }, fail: { familyId: fill(16, 0x79) }, expected: "78".repeat(16), actual: "79".repeat(16) },
  { rule: "image_id", policy: { image_id: "9a".repeat(16) }, pass: { imageId: fill(16, 0x9a) }, fail: {}, expected: "9a".repeat(16), actual: "00".repeat(16) },
  { rule: "guest_svn", policy: { min_guest_svn: 5 }, pass: { guestSvn: 5 }, fail: { guestSvn: 4 }, expected: ">= 5", actual: "4" },
  {
    rule: "mitigation_vector.current",
    policy: { mitigation_vector: { current: [0, 1, 3] } },
    pass: { version: 5, currentMitVector: 0xbn },
    fail: { version: 5, currentMitVector: 0x3n },
    expected: "bits 0,1,3 set",
    actual: "0x3",
  },
  {
    rule: "mitigation_vector.launch",
    policy: { mitigation_vector: { launch: [2] } },
    pass: { version: 5, launchMitVector: 0x4n },
    fail: { version: 3 },
    expected: "bits 2 set",
    actual: "none: a v3 report has no mitigation vectors",
  },
];

describe("each rule passes and fails with its reason", () => {
  it.each(cases.map((c) => [`${c.rule} ${JSON.stringify(c.failPolicy ?? c.policy)}`, c] as const))("%s", async (_name, c) => {
    const chip = c.chip?.() ?? milan;
    const pass = await appraise(c.pass, c.policy, chip);
    expect(failing(pass)).toEqual([]);
    expect(ruleOf(pass, c.rule)?.ok).toBe(true);
    const fail = await appraise(c.fail, c.failPolicy ?? c.policy, chip);
    expect(failing(fail)).toEqual([c.rule]);
    expect(ruleOf(fail, c.rule)).toEqual({ rule: c.rule, ok: false, expected: c.expected, actual: c.actual });
    expect(fail.ok).toBe(false);
  });

  it("report_data must match byte for byte", async () => {
    const other = fill(64, 0xaa);
    other[63] = 0;
    const a = await appraise({ reportData: other });
    expect(failing(a)).toEqual(["report_data"]);
    expect(ruleOf(a, "report_data")).toEqual({ rule: "report_data", ok: false, expected: "aa".repeat(64), actual: `${"aa".repeat(63)}00` });
    // A shorter expectation is not a prefix match.
    expect(failing(await appraise({}, "", milan, { ...expectation, reportData: fill(32, 0xaa) }))).toEqual(["report_data"]);
  });

  it("measurement: the registered one or one the policy adds", async () => {
    const upgraded = fill(48, 0xcc);
    const refused = await appraise({ measurement: upgraded });
    expect(ruleOf(refused, "measurement")).toEqual({ rule: "measurement", ok: false, expected: "bb".repeat(48), actual: "cc".repeat(48) });
    const rolling = await appraise({ measurement: upgraded }, { measurements: ["CC".repeat(48)] });
    expect(ruleOf(rolling, "measurement")).toEqual({ rule: "measurement", ok: true, expected: `${"bb".repeat(48)} or ${"cc".repeat(48)}`, actual: "cc".repeat(48) });
  });

  it("debug: the legacy allow_debug and guest_policy.debug \"any\" admit a debuggable guest", async () => {
    const debug = { policy: POLICY_BASE | (1n << 19n) };
    for (const policy of [{ allow_debug: true }, { guest_policy: { debug: "any" } }]) {
      const a = await appraise(debug, policy);
      expect(ruleOf(a, "guest_policy.debug")).toEqual({ rule: "guest_policy.debug", ok: true, expected: "any", actual: "set" });
    }
    expect(failing(await appraise(debug, { allow_debug: false }))).toEqual(["guest_policy.debug"]);
    // "required" is expressible too (a debug-only test workload).
    expect(failing(await appraise({ policy: POLICY_BASE }, { guest_policy: { debug: "required" } }))).toEqual(["guest_policy.debug"]);
  });

  it("an fmc floor does not apply to Milan, and unknown PLATFORM_INFO bits are tolerated", async () => {
    const a = await appraise({ platformInfo: 1n << 6n | (0xffn << 8n) }, { tcb: { reported: { fmc: 9 } }, platform: { tio_enabled: "forbidden" } });
    expect(a.ok).toBe(true);
    expect(a.rules.map((r) => r.rule)).not.toContain("tcb.reported.fmc");
  });

  it("firmware: provisional firmware is also a differing firmware version, and versions compare part by part", async () => {
    const strict = { firmware: { allow_provisional: false, min_version: "1.55.255" } };
    const a = await appraise({ currentVersion: { major: 1, minor: 56, build: 0 }, committedVersion: { major: 1, minor: 55, build: 40 } }, strict);
    expect(failing(a)).toEqual(["firmware.provisional"]);
    expect(ruleOf(a, "firmware.provisional")!.actual).toBe("current db18000000000004 1.56.0, committed db18000000000004 1.55.40");
  });
});

describe("which rules appear", () => {
  it("the default policy: the expectations, signer, VMPL, DEBUG, MIGRATE_MA and the two TCB relations", async () => {
    const a = await appraise({});
    expect(a.ok).toBe(true);
    expect(a.rules.map((r) => r.rule)).toEqual([
      "report_data",
      "measurement",
      "signer",
      "vmpl",
      "guest_policy.debug",
      "guest_policy.migrate_ma",
      "tcb.reported_not_above_current",
      "firmware.provisional",
    ]);
    expect(a.rules.find((r) => r.rule === "signer")).toEqual({ rule: "signer", ok: true, expected: "VCEK or VLEK", actual: "VCEK" });
    expect(a.policy).toEqual(parseSnpPolicy(""));
  });

  it("every configured rule is evaluated, all failures are listed", async () => {
    const policy = { host_data: "11".repeat(32), min_guest_svn: 1, vmpl: [1], guest_policy: { smt: "forbidden" } };
    const a = await appraise({ measurement: fill(48, 0) }, policy);
    expect(failing(a)).toEqual(["measurement", "vmpl", "guest_policy.smt", "host_data", "guest_svn"]);
  });

  it("without an expectation, report_data and measurement are reported unchecked, not failed", async () => {
    const a = await appraise({}, "", milan, { measurement: null, reportData: null });
    expect(a.ok).toBe(true);
    expect(a.rules.slice(0, 2)).toEqual([
      { rule: "report_data", ok: true, checked: false, expected: "not checked", actual: "aa".repeat(64) },
      { rule: "measurement", ok: true, checked: false, expected: "not checked", actual: "bb".repeat(48) },
    ]);
    // The policy's own measurement list is still an expectation.
    const listed = await appraise({}, { measurements: ["cc".repeat(48)] }, milan, { measurement: null, reportData: null });
    expect(failing(listed)).toEqual(["measurement"]);
  });
});

describe("assertAppraised", () => {
  const caught = (a: Appraisal): VerificationError => {
    try {
      assertAppraised(a);
    } catch (e) {
      if (e instanceof VerificationError) return e;
      throw e;
    }
    throw new Error("did not throw");
  };

  it("passes a passing appraisal", () => {
    expect(() => assertAppraised({ ok: true, rules: [], policy: parseSnpPolicy("") })).not.toThrow();
  });

  it("names the first failing rule, shortens hex, and carries all failing rules", async () => {
    const e = caught(await appraise({ measurement: fill(48, 0xcc), vmpl: 3 }));
    expect(e.code).toBe("policy");
    expect(e.message).toBe(`measurement: expected ${"bb".repeat(8)}…, got ${"cc".repeat(8)}…`);
    expect(e.extra.rules?.map((r) => r.rule)).toEqual(["measurement", "vmpl"]);
  });

  it("keeps every message within 180 bytes (a C client's 200-byte error buffer)", async () => {
    const long = "x".repeat(300);
    const rules = [{ rule: "tcb.committed.microcode", ok: false, expected: `${long}é`, actual: long }];
    const message = caught({ ok: false, rules, policy: parseSnpPolicy("") }).message;
    expect(new TextEncoder().encode(message).length).toBeLessThanOrEqual(180);
    expect(message.startsWith("tcb.committed.microcode: expected xxx")).toBe(true);
    expect(message.endsWith("…")).toBe(true);
    const provisional = caught(await appraise({ currentTcb: { ...MILAN_TCB, microcode: 220 } }, { firmware: { allow_provisional: false } })).message;
    expect(provisional).toBe("firmware.provisional: expected current = committed, got current dc18000000000004 1.55.40, committed db18000000000004 1.55.40");
  });
});

it("the parsed policy travels with the appraisal and parses back to itself", async () => {
  const a = await appraise({}, { tcb: { reported: MILAN_TCB }, allow_debug: true });
  expect(parseSnpPolicy(JSON.stringify(a.policy))).toEqual(a.policy);
  expect(toHex(MEASUREMENT)).toBe(ruleOf(a, "measurement")!.expected);
});
