// The verifier against real AMD data (test/fixtures, see test/fixtures/MANIFEST.md). Expected values come
// from snp-reports-expected.json, produced by an independent parser; nothing here is hard-coded beyond
// what that file or docs/snp-verification.md states.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES, fixture, productOf, reportBytes } from "../helpers/fixtures";
import { codeOf } from "../helpers/verdict";
import { fromHex, toHex } from "../../src/crypto/bytes";
import { appraiseSnp } from "../../src/tee/snp/appraise";
import { pemBlocks } from "../../src/crypto/pem";
import { certificatesFrom, parseCertTable, CERT_TABLE_GUIDS } from "../../src/tee/snp/certtable";
import { parseSnpPolicy } from "../../src/tee/snp/policy";
import { decodeGuestPolicy, decodePlatformInfo, decodeTcb, parseReport, SIGNED_SIZE } from "../../src/tee/snp/report";
import { PINNED_ARKS, trustAnchors } from "../../src/tee/snp/trust";
import { PRODUCTS, VerificationError, type Product, type SignerKind, type VerifyOptions } from "../../src/tee/snp/types";
import { clearVerifierCaches, verifySnpReport } from "../../src/tee/snp/verify";
import { fingerprint, importVekKey, parseCertificate } from "../../src/tee/snp/x509";

const DATA = FIXTURES;

interface ExpectedTcb {
  raw: string;
  bl: number;
  tee: number;
  snp: number;
  ucode: number;
  fmc?: number;
}

interface Expected {
  version: number;
  cpuid: { fam: string; mod: string; step: string } | null;
  policy: string;
  vmpl: number;
  platform_info: string;
  signing_key: SignerKind;
  reported_tcb: ExpectedTcb;
  current_tcb: string;
  committed_tcb: string;
  launch_tcb: string;
  fw: string;
  committed_fw: string;
  report_data: string;
  measurement: string;
  host_data: string;
  chip_id: string;
  guest_svn: number;
  mit: [string | null, string | null];
  verifying_vek?: string[];
  vek_product_line?: string;
  chain_ok?: boolean;
  vek_not_after?: string;
  vek_exts?: Record<string, number | string>;
  policy_decoded?: Record<string, number | boolean>;
  platform_info_decoded?: Record<string, number | boolean>;
}

const expected: Record<string, Expected> = JSON.parse(readFileSync(resolve(DATA, "snp-reports-expected.json"), "utf8")).reports;
const entries = Object.entries(expected);
const verifiable = entries.filter(([, e]) => e.verifying_vek?.length && e.chain_ok);

/** A VEK named as in the JSON: a file, or "path#N" = N-th certificate of a PEM bundle / N-th GHCB table entry. */
function vekFrom(spec: string): Uint8Array {
  const [path, index] = spec.split("#") as [string, string | undefined];
  const bytes = fixture(path);
  const text = new TextDecoder().decode(bytes);
  if (index === undefined) return text.includes("-----BEGIN") ? pemBlocks(text)[0]! : bytes;
  const n = Number(index);
  return path.endsWith(".pem") ? pemBlocks(text)[n]! : certificatesFrom(parseCertTable(bytes)[n]!.data)[0]!;
}

/** AMD's intermediate (ASK for VCEKs, ASVK for VLEKs) and ARK from the canonical folder. */
function canonicalChain(product: Product, signer: SignerKind): Uint8Array[] {
  const p = product.toLowerCase();
  return [fixture(`amd-roots/canonical/${p}-${signer === "VCEK" ? "ask" : "asvk"}.der`), fixture(`amd-roots/canonical/${p}-ark.der`)];
}

/** Verification time: VLEKs live one year and all of ours have expired, so judge them while they were valid. */
const VLEK_TIME = new Date("2025-06-01T00:00:00Z");

async function optionsFor(e: Expected): Promise<VerifyOptions> {
  const product = productOf(e.vek_product_line!);
  return {
    trust: await trustAnchors(),
    certificates: [vekFrom(e.verifying_vek![0]!), ...canonicalChain(product, e.signing_key)],
    ...(e.signing_key === "VLEK" && { now: VLEK_TIME }),
  };
}


const firmware = (v: { major: number; minor: number; build: number }) => `${v.major}.${v.minor}.${v.build}`;
const u64 = (hex: string) => BigInt(hex);

describe("real SNP reports: parsing", () => {
  it.each(entries.filter(([, e]) => e.version >= 2))("%s", (path, e) => {
    const r = parseReport(reportBytes(path));
    expect(r.version).toBe(e.version);
    expect(r.policy).toBe(u64(e.policy));
    expect(r.vmpl).toBe(e.vmpl);
    expect(r.platformInfo).toBe(u64(e.platform_info));
    expect(r.signingKey).toBe(e.signing_key === "VCEK" ? 0 : 1);
    expect(r.reportedTcb).toBe(u64(e.reported_tcb.raw));
    expect(r.currentTcb).toBe(u64(e.current_tcb));
    expect(r.committedTcb).toBe(u64(e.committed_tcb));
    expect(r.launchTcb).toBe(u64(e.launch_tcb));
    expect(firmware(r.currentVersion)).toBe(e.fw);
    expect(firmware(r.committedVersion)).toBe(e.committed_fw);
    expect(toHex(r.reportData)).toBe(e.report_data);
    expect(toHex(r.measurement)).toBe(e.measurement);
    expect(toHex(r.hostData)).toBe(e.host_data);
    expect(toHex(r.chipId)).toBe(e.chip_id);
    expect(r.guestSvn).toBe(e.guest_svn);
    expect(r.cpuid && { fam: `0x${r.cpuid.family.toString(16)}`, mod: `0x${r.cpuid.model.toString(16)}`, step: `0x${r.cpuid.stepping.toString(16)}` }).toEqual(
      e.cpuid ?? undefined,
    );
    expect([r.launchMitVector, r.currentMitVector]).toEqual(e.mit.map((m) => (m === null ? undefined : u64(m))));
    expect(r.signature).toHaveLength(96);

    const policy = decodeGuestPolicy(r.policy);
    const pd = e.policy_decoded!;
    expect(policy).toEqual({
      abiMajor: pd.abi_major,
      abiMinor: pd.abi_minor,
      smt: pd.smt,
      migrateMa: pd.migrate_ma,
      debug: pd.debug,
      singleSocket: pd.single_socket,
      cxlAllow: pd.cxl_allow,
      memAes256Xts: pd.mem_aes_256_xts,
      raplDis: pd.rapl_dis,
      ciphertextHiding: pd.ciphertext_hiding,
      pageSwapDisable: pd.page_swap_disable,
    });
    const id = e.platform_info_decoded!;
    expect(decodePlatformInfo(r.platformInfo)).toEqual({
      smtEnabled: id.smt_en,
      tsmeEnabled: id.tsme_en,
      eccEnabled: id.ecc_en,
      raplDisabled: id.rapl_dis,
      ciphertextHidingEnabled: id.ciphertext_hiding_dram_en,
      aliasCheckComplete: id.alias_check_complete,
      tioEnabled: id.tio_en,
    });
  });

  it("rejects the version-0 'not a TEE' fake", async () => {
    const fake = reportBytes("synthetic/oak-fake-evidence-report-version0-not-a-tee.bin");
    expect(() => parseReport(fake)).toThrow(/version 0 is not supported \(supported: 2, 3, 4, 5\)/);
    expect(await codeOf(verifySnpReport(fake, { trust: await trustAnchors() }))).toMatch(/^report-version:/);
  });

  it("accepts the reserved PLATFORM_INFO bit 6 that real Turin reports set", () => {
    const turin = entries.find(([, e]) => e.platform_info_decoded?.bit6_reserved_but_seen_set)!;
    expect(turin).toBeDefined();
    expect(parseReport(reportBytes(turin[0])).platformInfo & 0x40n).toBe(0x40n);
  });
});

describe("real SNP reports: verification with the listed VEK and AMD's canonical chain", () => {
  it("the data set has reports to verify", () => {
    expect(verifiable.length).toBeGreaterThan(5);
  });

  it.each(verifiable)("%s", async (path, e) => {
    const product = productOf(e.vek_product_line!);
    const v = await verifySnpReport(reportBytes(path), await optionsFor(e));
    expect(v.product).toBe(product);
    expect(v.signer).toBe(e.signing_key);
    expect(v.report.version).toBe(e.version);
    expect(v.report.vmpl).toBe(e.vmpl);
    expect(toHex(v.report.measurement)).toBe(e.measurement);
    expect(toHex(v.report.chipId)).toBe(e.chip_id);
    const t = e.reported_tcb;
    expect(v.reportedTcb).toEqual({
      raw: t.raw.slice(2).padStart(16, "0"),
      bootloader: t.bl,
      tee: t.tee,
      snp: t.snp,
      microcode: t.ucode,
      ...(t.fmc !== undefined && { fmc: t.fmc }),
    });
    expect(BigInt(`0x${v.currentTcb.raw}`)).toBe(u64(e.current_tcb));
    expect(v.vekFingerprint).toBe(await fingerprint(vekFrom(e.verifying_vek![0]!)));
  });

  it.each(verifiable.filter(([, e]) => e.version === 2))("v2 %s: the product comes from the hint or the VEK's issuer", async (path, e) => {
    const product = productOf(e.vek_product_line!);
    const opts = await optionsFor(e);
    expect((await verifySnpReport(reportBytes(path), { ...opts, productHint: product })).product).toBe(product);
    expect((await verifySnpReport(reportBytes(path), opts)).product).toBe(product);
  });
});

describe("real SNP reports: rejections", () => {
  const find = (pred: (e: Expected, path: string) => boolean) => {
    const hit = verifiable.find(([path, e]) => pred(e, path));
    if (!hit) throw new Error("no such report in the data set");
    return hit;
  };

  it("a VLEK report verifies while its VLEK was valid and fails as cert-expired today", async () => {
    const [path, e] = find((x) => x.signing_key === "VLEK");
    const opts = await optionsFor(e);
    expect((await verifySnpReport(reportBytes(path), opts)).signer).toBe("VLEK");
    const today = await codeOf(verifySnpReport(reportBytes(path), { ...opts, now: new Date() }));
    expect(today).toMatch(/^cert-expired: VLEK certificate expired/);
    expect(today).toContain(new Date(`${e.vek_not_after!.replace(" ", "T")}`).toISOString());
  });

  it("a VLEK is never fetched: without it the report is cert-missing", async () => {
    const [path] = find((x) => x.signing_key === "VLEK");
    let fetched = false;
    const provider = {
      vcek: async () => ((fetched = true), undefined),
      chain: async () => [],
    };
    const code = await codeOf(verifySnpReport(reportBytes(path), { trust: await trustAnchors(), provider, now: VLEK_TIME }));
    expect(code).toMatch(/^cert-missing: .*VLEK must be supplied/);
    expect(fetched).toBe(false);
  });

  it("the Genoa v2 report without a VEK is cert-missing", async () => {
    const [path] = entries.find(([p, e]) => e.version === 2 && !e.verifying_vek?.length && p.startsWith("snp/genoa"))!;
    const opts = { trust: await trustAnchors(), productHint: "Genoa" as const };
    expect(await codeOf(verifySnpReport(reportBytes(path), opts))).toMatch(/^cert-missing:/);
    const provider = { vcek: async () => undefined, chain: async () => canonicalChain("Genoa", "VCEK") };
    expect(await codeOf(verifySnpReport(reportBytes(path), { ...opts, provider }))).toMatch(/^cert-missing: no VCEK for this Genoa chip/);
    // Without a product there is nothing to fetch for.
    expect(await codeOf(verifySnpReport(reportBytes(path), { trust: opts.trust, provider }))).toMatch(/^unsupported-product: .*Milan, Genoa, Turin/);
  });

  it.each(["synthetic/trustee-test-vcek-invalid-legacy.der", "synthetic/trustee-test-vcek-invalid-new.der"])("tampered VCEK %s is cert-chain-invalid", async (vek) => {
    const [path] = find((e) => e.vek_product_line === "milan" && e.signing_key === "VCEK");
    const code = await codeOf(
      verifySnpReport(reportBytes(path), { trust: await trustAnchors(), productHint: "Milan", certificates: [fixture(vek), ...canonicalChain("Milan", "VCEK")] }),
    );
    expect(code).toMatch(/^cert-chain-invalid: the VCEK signature by SEV-Milan does not verify/);
  });

  it("one flipped report byte is signature-invalid", async () => {
    const [path, e] = find((x) => x.signing_key === "VCEK" && x.version >= 3);
    const bytes = reportBytes(path);
    // REPORT_DATA, MEASUREMENT and LAUNCH_TCB, the last signed field before the reserved bytes.
    for (const offset of [0x050, 0x090, 0x1f7]) {
      const flipped = Uint8Array.from(bytes);
      flipped[offset]! ^= 0x01;
      expect(await codeOf(verifySnpReport(flipped, await optionsFor(e)))).toMatch(/^signature-invalid:/);
    }
    // The signature itself, too (a byte of r inside the 48 used bytes).
    const badSig = Uint8Array.from(bytes);
    badSig[SIGNED_SIZE]! ^= 0x01;
    expect(await codeOf(verifySnpReport(badSig, await optionsFor(e)))).toMatch(/^signature-invalid:/);
  });

  it("a VCEK of another chip at the same TCB is vek-mismatch on hwID", async () => {
    const [path, e] = find((_x, p) => p.includes("milan-report-v2-trustee"));
    const [otherPath] = find((x, p) => x.reported_tcb.raw === e.reported_tcb.raw && x.chip_id !== e.chip_id && p !== path);
    const other = expected[otherPath]!;
    const code = await codeOf(
      verifySnpReport(reportBytes(path), { trust: await trustAnchors(), certificates: [vekFrom(other.verifying_vek![0]!), ...canonicalChain("Milan", "VCEK")] }),
    );
    expect(code).toMatch(/^vek-mismatch: VCEK hwID [0-9a-f]{16}… is not CHIP_ID/);
    expect(code).toContain(e.chip_id.slice(0, 16));
  });

  it("a VCEK for another TCB is vek-mismatch naming the component and both values", async () => {
    const [path, e] = find((x) => x.vek_product_line === "milan" && x.signing_key === "VCEK" && x.version === 2);
    const [otherPath, other] = find((x) => x.vek_product_line === "milan" && x.signing_key === "VCEK" && x.reported_tcb.bl !== e.reported_tcb.bl);
    expect(otherPath).not.toBe(path);
    const code = await codeOf(
      verifySnpReport(reportBytes(path), { trust: await trustAnchors(), productHint: "Milan", certificates: [vekFrom(other.verifying_vek![0]!), ...canonicalChain("Milan", "VCEK")] }),
    );
    expect(code).toBe(`vek-mismatch: VCEK blSPL is ${other.reported_tcb.bl} but REPORTED_TCB has ${e.reported_tcb.bl}`);
  });

  it("an ARK that is neither pinned nor operator-listed is cert-untrusted-root", async () => {
    const [path, e] = find((x) => x.signing_key === "VCEK" && x.version >= 3);
    const opts = await optionsFor(e);
    const ark = opts.certificates![2]!;
    const untrusted = { pinned: new Map(), extra: new Map() };
    expect(await codeOf(verifySnpReport(reportBytes(path), { ...opts, trust: untrusted }))).toMatch(/^cert-untrusted-root:/);
    // The same ARK listed by the operator is trusted (as lab roots are).
    const listed = { pinned: new Map(), extra: new Map([[await fingerprint(ark), productOf(e.vek_product_line!)]]) };
    expect((await verifySnpReport(reportBytes(path), { ...opts, trust: listed })).product).toBe(productOf(e.vek_product_line!));
  });

  it("a Milan report checked as Genoa is refused at the root", async () => {
    const [path, e] = find((x) => x.vek_product_line === "milan" && x.signing_key === "VCEK" && x.version === 2);
    const opts = await optionsFor(e);
    expect(await codeOf(verifySnpReport(reportBytes(path), { ...opts, productHint: "Genoa" }))).toMatch(/^cert-untrusted-root: .*pinned Genoa root/);
    // With Genoa's chain from a provider the Milan VCEK's issuer is simply not there.
    const provider = { vcek: async () => undefined, chain: async () => canonicalChain("Genoa", "VCEK") };
    clearVerifierCaches();
    const code = await codeOf(verifySnpReport(reportBytes(path), { trust: opts.trust, productHint: "Genoa", certificates: [opts.certificates![0]!], provider }));
    expect(code).toMatch(/^cert-chain-invalid: the issuer CN=SEV-Milan is not among the Genoa ASK\/ARK certificates/);
  });

  it("a v3 Genoa report keeps its CPUID product whatever the hint", async () => {
    const [path, e] = find((x) => x.vek_product_line === "genoa" && x.version >= 3);
    expect((await verifySnpReport(reportBytes(path), { ...(await optionsFor(e)), productHint: "Milan" })).product).toBe("Genoa");
  });
});

describe("real SNP reports: appraisal", () => {
  const one = (pred: (e: Expected, path: string) => boolean) => verifiable.filter(([path, e]) => pred(e, path));

  /** Verifies the report (VLEKs at VLEK_TIME unless `now` is given) and appraises it, expecting its own measurement and REPORT_DATA. */
  async function appraise(path: string, e: Expected, policy: object, now?: Date) {
    const v = await verifySnpReport(reportBytes(path), { ...(await optionsFor(e)), ...(now && { now }) });
    const a = appraiseSnp(v, { measurement: fromHex(e.measurement), reportData: fromHex(e.report_data) }, parseSnpPolicy(JSON.stringify(policy)));
    return { ...a, failing: a.rules.filter((r) => !r.ok) };
  }

  it("the go-sev-guest report with DEBUG set is refused by default and accepted with debug allowed", async () => {
    const debug = one((e) => e.policy_decoded!.debug === true);
    expect(debug.map(([p]) => p)).toEqual(["snp/milan-report-v2-gosevguest-attestation.bin"]);
    const [path, e] = debug[0]!;
    expect((await appraise(path, e, {})).failing).toEqual([{ rule: "guest_policy.debug", ok: false, expected: "clear", actual: "set" }]);
    for (const policy of [{ allow_debug: true }, { guest_policy: { debug: "any" } }]) expect((await appraise(path, e, policy)).ok).toBe(true);
  });

  it("every other verifiable VMPL 0 report passes the default policy", async () => {
    for (const [path, e] of one((x) => x.vmpl === 0 && !x.policy_decoded!.debug)) expect((await appraise(path, e, {})).failing, path).toEqual([]);
  });

  it("VMPL 1 reports are refused by default", async () => {
    const vmpl1 = one((e) => e.vmpl === 1);
    expect(vmpl1.length).toBeGreaterThan(0);
    for (const [path, e] of vmpl1) expect((await appraise(path, e, {})).failing.map((r) => r.rule), path).toEqual(["vmpl"]);
  });

  it("the VLEK sample passes only with VLEK (and its VMPL) allowed, judged at a date its VLEK was valid", async () => {
    const [path, e] = one((x) => x.signing_key === "VLEK")[0]!;
    const policy = { vmpl: [e.vmpl] };
    expect((await appraise(path, e, policy)).ok).toBe(true);
    expect((await appraise(path, e, { ...policy, signers: ["VLEK"] })).ok).toBe(true);
    expect((await appraise(path, e, { ...policy, signers: ["VCEK"] })).failing).toEqual([{ rule: "signer", ok: false, expected: "VCEK", actual: "VLEK" }]);
    expect(await codeOf(appraise(path, e, policy, new Date()))).toMatch(/^cert-expired: VLEK certificate expired/);
  });

  const v5 = verifiable.filter(([, e]) => e.version === 5);
  it("the v5 samples are Genoa and Turin", () => {
    expect(v5.map(([, e]) => e.vek_product_line).sort()).toEqual(["genoa", "genoa", "turin"]);
  });

  it.each(v5)("%s passes its own TCB, firmware and mitigations as the floor and fails floor + 1 on each", async (path, e) => {
    const t = e.reported_tcb;
    const floor: Record<string, number> = { bootloader: t.bl, tee: t.tee, snp: t.snp, microcode: t.ucode, ...(t.fmc !== undefined && { fmc: t.fmc }) };
    const current = BigInt(e.mit[1]!);
    const setBits = [...Array(64).keys()].filter((b) => ((current >> BigInt(b)) & 1n) === 1n);
    const own = { tcb: { reported: floor, launch: floor, committed: floor }, firmware: { min_version: e.fw, allow_provisional: false }, mitigation_vector: { current: setBits } };
    expect((await appraise(path, e, own)).failing).toEqual([]);
    expect(Object.keys(floor)).toHaveLength(e.vek_product_line === "turin" ? 5 : 4);
    for (const [part, value] of Object.entries(floor)) {
      const { failing } = await appraise(path, e, { tcb: { reported: { ...floor, [part]: value + 1 } } });
      expect(failing).toEqual([{ rule: `tcb.reported.${part}`, ok: false, expected: `>= ${value + 1}`, actual: String(value) }]);
    }
    const [major, minor, build] = e.fw.split(".").map(Number) as [number, number, number];
    const newer = `${major}.${minor}.${build + 1}`;
    expect((await appraise(path, e, { firmware: { min_version: newer } })).failing).toEqual([{ rule: "firmware.min_version", ok: false, expected: `>= ${newer}`, actual: e.fw }]);
    const unset = [...Array(64).keys()].find((b) => !setBits.includes(b))!;
    expect((await appraise(path, e, { mitigation_vector: { current: [unset] } })).failing.map((r) => r.rule)).toEqual(["mitigation_vector.current"]);
  });

  // Why firmware.allow_provisional defaults to true: a VMPL 0 guest's real report runs provisional firmware.
  it("the reports with CURRENT_TCB above COMMITTED_TCB pass by default and are refused when provisional firmware is not allowed", async () => {
    const provisional = one((x) => x.current_tcb !== x.committed_tcb);
    expect(provisional.map(([path, e]) => `${path} VMPL ${e.vmpl}`)).toEqual([
      "aws/milan-report-v3-vmpl1-aws-vlek-trustee-test-vlek-report.bin VMPL 1",
      "snp/milan-report-v2-trustee-test-report.bin VMPL 0",
    ]);
    for (const [path, e] of provisional) {
      const vmpl = { vmpl: [e.vmpl] };
      expect((await appraise(path, e, vmpl)).failing, path).toEqual([]);
      expect((await appraise(path, e, { ...vmpl, firmware: { allow_provisional: false } })).failing, path).toEqual([
        {
          rule: "firmware.provisional",
          ok: false,
          expected: "current = committed",
          actual: `current ${e.current_tcb.slice(2)} ${e.fw}, committed ${e.committed_tcb.slice(2)} ${e.committed_fw}`,
        },
      ]);
    }
  });
});

describe("real SNP reports: certificates from a provider", () => {
  it("fetches the VCEK and chain once, reports the verified chain, then verifies warm", async () => {
    clearVerifierCaches();
    const [path, e] = verifiable.find(([, x]) => x.signing_key === "VCEK" && x.version >= 3 && x.vek_product_line === "turin")!;
    const vek = vekFrom(e.verifying_vek![0]!);
    const calls: string[] = [];
    const chains: unknown[] = [];
    const provider = {
      vcek: async (product: Product, hwid: Uint8Array, tcb: { raw: string }) => (calls.push(`vcek ${product} ${toHex(hwid)} ${tcb.raw}`), vek),
      chain: async (product: Product, signer: SignerKind) => (calls.push(`chain ${product} ${signer}`), canonicalChain(product, signer)),
      verified: (chain: unknown) => void chains.push(chain),
    };
    const opts = { trust: await trustAnchors(), provider };
    await verifySnpReport(reportBytes(path), opts);
    // Turin VCEKs are keyed by the first 8 bytes of CHIP_ID.
    expect(calls).toEqual([`vcek Turin ${e.chip_id.slice(0, 16)} ${e.reported_tcb.raw.slice(2).padStart(16, "0")}`, "chain Turin VCEK"]);
    expect(chains).toHaveLength(1);
    expect(chains[0]).toMatchObject({ product: "Turin", signer: "VCEK", vek, hwid: fromHex(e.chip_id.slice(0, 16)), ark: canonicalChain("Turin", "VCEK")[1] });
    await verifySnpReport(reportBytes(path), opts);
    expect(calls).toHaveLength(2);
    expect(chains).toHaveLength(1);
  });

  it("provider failures: VerificationError passes through, anything else is certs-unavailable", async () => {
    clearVerifierCaches();
    const [path] = verifiable.find(([, x]) => x.signing_key === "VCEK" && x.version >= 3)!;
    const trust = await trustAnchors();
    const throttled = new VerificationError("certs-unavailable", "KDS said 429", { retryAfter: 120 });
    const err = await verifySnpReport(reportBytes(path), { trust, provider: { vcek: () => Promise.reject(throttled), chain: async () => [] } }).catch((x) => x);
    expect(err).toBe(throttled);
    const code = await codeOf(verifySnpReport(reportBytes(path), { trust, provider: { vcek: () => Promise.reject(new TypeError("fetch failed")), chain: async () => [] } }));
    expect(code).toMatch(/^certs-unavailable: could not get the VCEK/);
  });
});

describe("real certificates: the reader", () => {
  it("pins exactly the canonical ARKs, each for its own product", async () => {
    for (const product of PRODUCTS) {
      expect(PINNED_ARKS.get(await fingerprint(fixture(`amd-roots/canonical/${product.toLowerCase()}-ark.der`)))).toBe(product);
    }
    expect(PINNED_ARKS.size).toBe(3);
  });

  it.each(verifiable)("VEK of %s: extensions as the independent parser read them", async (_path, e) => {
    const cert = parseCertificate(vekFrom(e.verifying_vek![0]!));
    const x = e.vek_exts!;
    expect(cert.keyType).toBe("ec-p384");
    expect(cert.serial).toBe(0n);
    expect(cert.subjectCn).toBe(e.signing_key === "VCEK" ? "SEV-VCEK" : "SEV-VLEK");
    expect(cert.issuerCn).toBe(`SEV-${e.signing_key === "VLEK" ? "VLEK-" : ""}${productOf(e.vek_product_line!)}`);
    expect(cert.amd.structVersion).toBe(x.structVersion);
    expect(cert.amd.productName).toBe(x.productName);
    for (const name of ["blSPL", "teeSPL", "snpSPL", "ucodeSPL", "fmcSPL", "spl_4", "spl_5", "spl_6", "spl_7"] as const) {
      expect(cert.amd.spl[name]).toBe(x[name]);
    }
    expect(cert.amd.cspId).toBe(x.cspID);
    expect(cert.amd.hwid && `raw:${toHex(cert.amd.hwid)}`).toBe(x.hwID);
    expect(cert.notAfter.toISOString()).toBe(new Date(e.vek_not_after!.replace(" ", "T")).toISOString());
    await expect(importVekKey(cert.spki)).resolves.toBeDefined();
  });

  it("reads the hwID in both encodings: raw bytes and a DER OCTET STRING", () => {
    const legacy = parseCertificate(fixture("synthetic/trustee-test-vcek-invalid-legacy.der"));
    const wrapped = parseCertificate(fixture("synthetic/trustee-test-vcek-invalid-new.der"));
    const expectedId = Uint8Array.from({ length: 64 }, (_, i) => i); // MANIFEST: "hwID replaced by 00..3f"
    expect(legacy.amd.hwid).toEqual(expectedId);
    expect(wrapped.amd.hwid).toEqual(expectedId);
  });

  it.each(["milan", "genoa", "turin"])("%s canonical chain: RSA roots with AMD's PSS parameters", (p) => {
    for (const name of ["ark", "ask", "asvk"]) {
      const cert = parseCertificate(fixture(`amd-roots/canonical/${p}-${name}.der`));
      expect(cert.keyType).toBe("rsa");
      expect(cert.amd).toEqual({ spl: {} });
    }
    const ark = parseCertificate(fixture(`amd-roots/canonical/${p}-ark.der`));
    expect(ark.issuer).toEqual(ark.subject);
  });

  it("refuses certificates that are not AMD-shaped", () => {
    const ark = fixture("amd-roots/canonical/milan-ark.der");
    expect(() => parseCertificate(ark.subarray(0, ark.length - 1))).toThrow(VerificationError);
    expect(() => parseCertificate(new Uint8Array([...ark, 0]))).toThrow(/not a single DER element/);
    // salt 48 (02 01 30) → 32 (02 01 20) in both algorithm identifiers.
    const hex = toHex(ark).replaceAll("a203020130", "a203020120");
    expect(() => parseCertificate(fromHex(hex))).toThrow(/not SHA-384 \/ MGF1-SHA-384 \/ salt 48/);
  });

  it("the Turin VCEK without a spl_4 extension parses (Turin omits it)", () => {
    const cert = parseCertificate(fixture("snp/turin-vcek-unpaired-virteesev.der"));
    expect(cert.amd.structVersion).toBe(1);
    expect(cert.amd.spl.spl_4).toBeUndefined();
    expect(cert.amd.hwid).toHaveLength(8);
  });
});

describe("evidence certificates: GHCB table, PEM, DER", () => {
  const AUXBLOB = "snp/genoa-ghcb-certtable-auxblob-veraison-tsm.bin";

  it("parses the GHCB table of a real extended report", async () => {
    const table = parseCertTable(fixture(AUXBLOB));
    expect(table.map((t) => t.guid)).toEqual([CERT_TABLE_GUIDS.ARK, CERT_TABLE_GUIDS.ASK, CERT_TABLE_GUIDS.VCEK]);
    const certs = certificatesFrom(fixture(AUXBLOB));
    expect(certs).toHaveLength(3);
    expect(PINNED_ARKS.get(await fingerprint(certs[0]!))).toBe("Genoa");
    expect(parseCertificate(certs[2]!).subjectCn).toBe("SEV-VCEK");
  });

  it("the cert table alone is enough evidence for its report", async () => {
    const [path] = verifiable.find(([, x]) => x.verifying_vek![0]!.startsWith(AUXBLOB))!;
    const v = await verifySnpReport(reportBytes(path), { trust: await trustAnchors(), certificates: certificatesFrom(fixture(AUXBLOB)) });
    expect(v.product).toBe("Genoa");
  });

  it("reads PEM bundles and single DER certificates", () => {
    const bundle = fixture("snp/yaxi-routex-vcek-chain-genoa.pem");
    const certs = certificatesFrom(bundle);
    expect(certs).toEqual(pemBlocks(new TextDecoder().decode(bundle)));
    expect(certs.length).toBe(3);
    const der = fixture("amd-roots/canonical/genoa-ark.der");
    expect(certificatesFrom(der)).toEqual([der]);
  });

  it("skips non-certificate entries and NUL padding in a DER cert table", () => {
    const vek = fixture("oak/genoa-vcek-oak-genoa_oc.der");
    const guid = (g: string) => fromHex(g.replaceAll("-", ""));
    // go-sev-guest's "extra platform info" entry, then the VCEK padded to 4 KiB, then the terminator.
    const extra = new Uint8Array([8, 0, 0, 0, 0x11, 0x0f, 0xa1, 0x00]);
    const header = 3 * 24;
    const table = new Uint8Array(header + extra.length + 4096);
    const dv = new DataView(table.buffer);
    table.set(guid("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6"), 0);
    dv.setUint32(16, header, true);
    dv.setUint32(20, extra.length, true);
    table.set(guid(CERT_TABLE_GUIDS.VCEK), 24);
    dv.setUint32(40, header + extra.length, true);
    dv.setUint32(44, 4096, true);
    table.set(extra, header);
    table.set(vek, header + extra.length);
    expect(parseCertTable(table).map((e) => e.guid)).toEqual(["ecae0c0f-9502-43b1-afa2-0ae2e0d565b6", CERT_TABLE_GUIDS.VCEK]);
    expect(certificatesFrom(table)).toEqual([vek]);
  });

  it("refuses tables whose entries point outside the data or lack a terminator", () => {
    const table = fixture(AUXBLOB);
    const truncated = table.slice(0, 60);
    expect(() => parseCertTable(truncated)).toThrow(/no terminating all-zero entry/);
    const outside = Uint8Array.from(table);
    new DataView(outside.buffer).setUint32(20, table.length, true); // first entry's length
    expect(() => certificatesFrom(outside)).toThrow(/points outside the data/);
  });
});

describe("trust anchors", () => {
  it("adds operator-listed ARKs by fingerprint and refuses malformed PEM", async () => {
    expect((await trustAnchors("")).extra.size).toBe(0);
    const pem = new TextDecoder().decode(fixture("amd-roots/canonical/turin-ark.pem"));
    const anchors = await trustAnchors(pem + pem);
    expect([...anchors.extra]).toEqual([[await fingerprint(fixture("amd-roots/canonical/turin-ark.der")), "Turin"]]);
    expect(anchors.pinned).toBe(PINNED_ARKS);
    await expect(trustAnchors("not a certificate")).rejects.toThrow(/EXTRA_TRUSTED_ARKS/);
    await expect(trustAnchors(pem.slice(0, pem.indexOf("-----END")))).rejects.toThrow(/EXTRA_TRUSTED_ARKS/);
    await expect(trustAnchors(pem.replace(/\n[A-Za-z0-9+/]{10}/, "\n!!!!!!!!!!"))).rejects.toThrow(/EXTRA_TRUSTED_ARKS/);
  });
});

// The examples are those of docs/snp-verification.md §TCB_VERSION (the name below predates docs/).
describe("TCB layouts (docs/snp-verification.md, TCB_VERSION examples)", () => {
  it("decodes Milan/Genoa and Turin TCBs", () => {
    expect(decodeTcb(0xdb18000000000004n, "Milan")).toEqual({ raw: "db18000000000004", bootloader: 4, tee: 0, snp: 24, microcode: 219 });
    expect(decodeTcb(0x4700000002000100n, "Turin")).toEqual({ raw: "4700000002000100", fmc: 0, bootloader: 1, tee: 0, snp: 2, microcode: 71 });
    expect(decodeTcb(0x5100000004010101n, "Turin")).toEqual({ raw: "5100000004010101", fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 });
  });
});
