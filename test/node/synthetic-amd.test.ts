// Tests of the synthetic AMD fixtures themselves: if these fail, verifier tests built on them mean nothing.

import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { beforeAll, describe, expect, it } from "vitest";
import { buf, fromHex, isAllZero, reversed, toHex } from "../../src/crypto/bytes";
import { pemBlocks } from "../../src/crypto/pem";
import { kdsResponder } from "../helpers/kds-mock";
import {
  createCrl,
  createSyntheticChip,
  createVekFor,
  decodeTcb,
  encodeTcb,
  mutateReport,
  REPORT_OFFSETS,
  REPORT_SIZE,
  SERIALS,
  SIGNED_LENGTH,
  type SyntheticChip,
} from "../../lab/synthetic-amd";

const AMD = "1.3.6.1.4.1.3704.1";
const RSA_PSS = "1.2.840.113549.1.1.10";

const parse = (der: Uint8Array) => pkijs.Certificate.fromBER(buf(der));

/** Verifies a certificate or CRL under `issuer` by hand: RSA-PSS SHA-384 salt 48 over the original TBS bytes. */
async function pssVerifies(cert: pkijs.Certificate | pkijs.CertificateRevocationList, issuer: pkijs.Certificate): Promise<boolean> {
  const key = await crypto.subtle.importKey(
    "spki",
    buf(new Uint8Array(issuer.subjectPublicKeyInfo.toSchema().toBER(false))),
    { name: "RSA-PSS", hash: "SHA-384" },
    false,
    ["verify"],
  );
  return crypto.subtle.verify(
    { name: "RSA-PSS", saltLength: 48 },
    key,
    buf(cert.signatureValue.valueBlock.valueHexView),
    buf(cert.tbsView),
  );
}

/** The PSS parameters as [tag number, inner DER hex] pairs. */
function pssParams(alg: pkijs.AlgorithmIdentifier): [number, string][] {
  expect(alg.algorithmId).toBe(RSA_PSS);
  const seq = alg.algorithmParams as asn1js.Sequence;
  return seq.valueBlock.value.map((tagged) => [
    tagged.idBlock.tagNumber,
    toHex(new Uint8Array((tagged as asn1js.Constructed).valueBlock.value[0]!.toBER(false))),
  ]);
}

const SHA384_ALG = "300d06096086480165030402020500";
const PSS_NO_TRAILER: [number, string][] = [
  [0, SHA384_ALG],
  [1, `301a06092a864886f70d010108${SHA384_ALG}`],
  [2, "020130"],
];

/** AMD extension arc (after 1.3.6.1.4.1.3704.1.) → extnValue contents as hex. */
function amdExtensions(cert: pkijs.Certificate): Map<string, string> {
  const out = new Map<string, string>();
  for (const ext of cert.extensions ?? []) {
    if (ext.extnID.startsWith(`${AMD}.`)) out.set(ext.extnID.slice(AMD.length + 1), toHex(ext.extnValue.valueBlock.valueHexView));
  }
  return out;
}

function decodeInteger(hex: string): number {
  const node = asn1js.fromBER(buf(fromHex(hex))).result;
  expect(node).toBeInstanceOf(asn1js.Integer);
  return (node as asn1js.Integer).valueBlock.valueDec;
}

function decodeIa5(hex: string): string {
  const node = asn1js.fromBER(buf(fromHex(hex))).result;
  expect(node).toBeInstanceOf(asn1js.IA5String);
  return (node as asn1js.IA5String).valueBlock.value;
}

const cn = (name: pkijs.RelativeDistinguishedNames) =>
  name.typesAndValues.find((t) => t.type === "2.5.4.3")?.value.valueBlock.value;

async function reportSignatureVerifies(report: Uint8Array, vekDer: Uint8Array): Promise<boolean> {
  const vek = parse(vekDer);
  const key = await crypto.subtle.importKey(
    "spki",
    buf(new Uint8Array(vek.subjectPublicKeyInfo.toSchema().toBER(false))),
    { name: "ECDSA", namedCurve: "P-384" },
    false,
    ["verify"],
  );
  const r = reversed(report.subarray(REPORT_OFFSETS.signatureR, REPORT_OFFSETS.signatureR + 48));
  const s = reversed(report.subarray(REPORT_OFFSETS.signatureS, REPORT_OFFSETS.signatureS + 48));
  const sig = new Uint8Array(96);
  sig.set(r, 0);
  sig.set(s, 48);
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, buf(sig), buf(report.subarray(0, SIGNED_LENGTH)));
}

const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
const u64 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);

describe("TCB encoding", () => {
  it("Milan 0xdb18000000000004 = bl 4, tee 0, snp 24, ucode 219", () => {
    const parts = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };
    expect(encodeTcb(parts, "Milan")).toBe(0xdb18000000000004n);
    expect(decodeTcb(0xdb18000000000004n, "Milan")).toStrictEqual({ raw: "db18000000000004", ...parts });
    expect(encodeTcb(parts, "Genoa")).toBe(0xdb18000000000004n);
  });

  it("Turin 0x4700000002000100 = fmc 0, bl 1, tee 0, snp 2, ucode 71", () => {
    const parts = { fmc: 0, bootloader: 1, tee: 0, snp: 2, microcode: 71 };
    expect(encodeTcb(parts, "Turin")).toBe(0x4700000002000100n);
    expect(decodeTcb(0x4700000002000100n, "Turin")).toStrictEqual({ raw: "4700000002000100", ...parts });
    expect(encodeTcb({ fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 }, "Turin")).toBe(0x5100000004010101n);
  });

  it("rejects an FMC on Milan and out-of-range parts", () => {
    expect(() => encodeTcb({ fmc: 1, bootloader: 0, tee: 0, snp: 0, microcode: 0 }, "Milan")).toThrow(RangeError);
    expect(() => encodeTcb({ bootloader: 256, tee: 0, snp: 0, microcode: 0 }, "Genoa")).toThrow(RangeError);
  });
});

describe.each(["Milan", "Genoa", "Turin"] as const)("%s VCEK chip", (product) => {
  let chip: SyntheticChip;
  let ark: pkijs.Certificate, ask: pkijs.Certificate, vek: pkijs.Certificate;
  beforeAll(async () => {
    chip = await createSyntheticChip({ product });
    [ark, ask, vek] = [parse(chip.arkDer), parse(chip.askDer), parse(chip.vekDer)];
  });

  it("chains ARK (self) → ASK → VCEK with RSA-PSS SHA-384 salt 48", async () => {
    expect(await pssVerifies(ark, ark)).toBe(true);
    expect(await pssVerifies(ask, ark)).toBe(true);
    expect(await pssVerifies(vek, ask)).toBe(true);
    expect(await pssVerifies(vek, ark)).toBe(false);
    expect(await pssVerifies(ask, ask)).toBe(false);
    // pkijs's own verifier must agree (the verifier may rely on it).
    expect(await ark.verify()).toBe(true);
    expect(await vek.verify(ask)).toBe(true);
  });

  it("has AMD's certificate shape", () => {
    expect(cn(ark.subject)).toBe(`ARK-${product}`);
    expect(cn(ark.issuer)).toBe(`ARK-${product}`);
    expect(cn(ask.subject)).toBe(`SEV-${product}`);
    expect(cn(vek.subject)).toBe("SEV-VCEK");
    expect(ark.subject.typesAndValues.map((t) => t.type)).toEqual(["2.5.4.11", "2.5.4.6", "2.5.4.7", "2.5.4.8", "2.5.4.10", "2.5.4.3"]);
    expect(toHex(new Uint8Array(vek.issuer.toSchema().toBER(false)))).toBe(toHex(new Uint8Array(ask.subject.toSchema().toBER(false))));
    expect(toHex(vek.serialNumber.valueBlock.valueHexView)).toBe("00");
    expect(vek.extensions!.every((e) => e.extnID.startsWith(`${AMD}.`))).toBe(true);
    // RSA keys carry plain rsaEncryption (importable by WebCrypto), the VEK is P-384.
    expect(ark.subjectPublicKeyInfo.algorithm.algorithmId).toBe("1.2.840.113549.1.1.1");
    expect(ask.subjectPublicKeyInfo.algorithm.algorithmId).toBe("1.2.840.113549.1.1.1");
    expect(vek.subjectPublicKeyInfo.algorithm.algorithmId).toBe("1.2.840.10045.2.1");
    expect((vek.subjectPublicKeyInfo.algorithm.algorithmParams as asn1js.ObjectIdentifier).valueBlock.toString()).toBe(
      "1.3.132.0.34",
    );
    // ARK/ASK spell out trailerField 1, the VCEK omits it; tbs and outer algorithms agree.
    expect(pssParams(ark.signatureAlgorithm)).toEqual([...PSS_NO_TRAILER, [3, "020101"]]);
    expect(pssParams(ask.signature)).toEqual([...PSS_NO_TRAILER, [3, "020101"]]);
    expect(pssParams(vek.signatureAlgorithm)).toEqual(PSS_NO_TRAILER);
    expect(pssParams(vek.signature)).toEqual(PSS_NO_TRAILER);
    const ekus = (c: pkijs.Certificate) => c.extensions!.map((e) => [e.extnID, e.critical]);
    expect(ekus(ark)).toEqual([["2.5.29.15", true], ["2.5.29.14", false], ["2.5.29.19", true], ["2.5.29.31", false]]);
    expect(ekus(ask)).toEqual([["2.5.29.14", false], ["2.5.29.35", false], ["2.5.29.19", true], ["2.5.29.15", true], ["2.5.29.31", false]]);
    expect(toHex(ark.extensions![0]!.extnValue.valueBlock.valueHexView)).toBe("03020106");
    // keyCertSign with one unused bit (not DER's two), byte for byte as AMD's real ASK has it.
    expect(toHex(ask.extensions![3]!.extnValue.valueBlock.valueHexView)).toBe("03020104");
    const bc = ask.extensions![2]!.parsedValue as pkijs.BasicConstraints;
    expect([bc.cA, bc.pathLenConstraint]).toEqual([true, 0]);
  });

  it("dates: VCEK now−1 day … +7 years", () => {
    const now = Date.now();
    expect(now - vek.notBefore.value.getTime()).toBeGreaterThan(86_000_000);
    expect(now - vek.notBefore.value.getTime()).toBeLessThan(90_000_000);
    const years = (vek.notAfter.value.getTime() - now) / (365.25 * 86_400_000);
    expect(years).toBeGreaterThan(6.9);
    expect(years).toBeLessThan(7.1);
    expect(ark.notAfter.value.getTime()).toBeGreaterThan(vek.notAfter.value.getTime());
  });

  it("carries the AMD extensions for its TCB and CHIP_ID", () => {
    const ext = amdExtensions(vek);
    const turin = product === "Turin";
    expect(decodeInteger(ext.get("1")!)).toBe(turin ? 1 : 0);
    expect(decodeIa5(ext.get("2")!)).toBe(product === "Milan" ? "Milan-B0" : product);
    expect(decodeInteger(ext.get("3.1")!)).toBe(chip.reportedTcb.bootloader);
    expect(decodeInteger(ext.get("3.2")!)).toBe(chip.reportedTcb.tee);
    expect(decodeInteger(ext.get("3.3")!)).toBe(chip.reportedTcb.snp);
    expect(decodeInteger(ext.get("3.8")!)).toBe(chip.reportedTcb.microcode);
    for (const spl of ["3.5", "3.6", "3.7"]) expect(decodeInteger(ext.get(spl)!)).toBe(0);
    expect(ext.has("3.4")).toBe(!turin);
    expect(ext.has("3.9")).toBe(turin);
    if (turin) expect(decodeInteger(ext.get("3.9")!)).toBe(chip.reportedTcb.fmc);
    expect(ext.has("5")).toBe(false);
    // hwID: the raw CHIP_ID bytes, no inner tag; Turin: 8 bytes and a zero tail in CHIP_ID.
    expect(ext.get("4")).toBe(toHex(turin ? chip.chipId.subarray(0, 8) : chip.chipId));
    expect(chip.chipId.length).toBe(64);
    expect(isAllZero(chip.chipId.subarray(turin ? 8 : 0))).toBe(turin);
  });

  it("signs a report that verifies over [0, 0x2A0) and fails after a flipped byte", async () => {
    const reportData = crypto.getRandomValues(new Uint8Array(64));
    const report = await chip.report({ reportData });
    expect(report.length).toBe(REPORT_SIZE);
    expect(await reportSignatureVerifies(report, chip.vekDer)).toBe(true);
    // Upper 24 bytes of r and s, and the rest of the signature area, are zero.
    expect(isAllZero(report.subarray(0x2d0, 0x2e8))).toBe(true);
    expect(isAllZero(report.subarray(0x318, REPORT_SIZE))).toBe(true);
    expect(isAllZero(report.subarray(0x2a0, 0x2d0))).toBe(false);

    for (const offset of [REPORT_OFFSETS.reportData, REPORT_OFFSETS.vmpl, SIGNED_LENGTH - 1, REPORT_OFFSETS.signatureR]) {
      expect(await reportSignatureVerifies(await mutateReport(report, offset), chip.vekDer)).toBe(false);
    }
    const resigned = await mutateReport(report, REPORT_OFFSETS.vmpl, 1, chip);
    expect(u32(resigned, REPORT_OFFSETS.vmpl)).toBe(1);
    expect(await reportSignatureVerifies(resigned, chip.vekDer)).toBe(true);
    expect(report[REPORT_OFFSETS.vmpl]).toBe(0); // mutateReport copies
  });

  it("lays out the default report fields", async () => {
    const measurement = crypto.getRandomValues(new Uint8Array(48));
    const hostData = crypto.getRandomValues(new Uint8Array(32));
    const report = await chip.report({ measurement, hostData, reportData: Uint8Array.of(1, 2, 3) });
    const O = REPORT_OFFSETS;
    const raw = BigInt(`0x${chip.reportedTcb.raw}`);
    expect(u32(report, O.version)).toBe(3);
    expect(u64(report, O.policy)).toBe(0x30000n);
    expect(u32(report, O.vmpl)).toBe(0);
    expect(u32(report, O.signatureAlgo)).toBe(1);
    expect(u32(report, O.signerInfo)).toBe(0); // SIGNING_KEY 0 = VCEK
    for (const off of [O.currentTcb, O.reportedTcb, O.committedTcb, O.launchTcb]) expect(u64(report, off)).toBe(raw);
    expect(toHex(report.subarray(O.reportData, O.reportData + 64))).toBe("010203".padEnd(128, "0"));
    expect(toHex(report.subarray(O.measurement, O.measurement + 48))).toBe(toHex(measurement));
    expect(toHex(report.subarray(O.hostData, O.hostData + 32))).toBe(toHex(hostData));
    expect(report.subarray(O.reportIdMa, O.reportIdMa + 32).every((b) => b === 0xff)).toBe(true);
    expect(toHex(report.subarray(O.chipId, O.chipId + 64))).toBe(toHex(chip.chipId));
    const cpuid = { Milan: "190101", Genoa: "191101", Turin: "1a0200" }[product];
    expect(toHex(report.subarray(O.cpuidFamily, O.cpuidFamily + 3))).toBe(cpuid);
    expect(toHex(report.subarray(O.currentVersion, O.currentVersion + 8))).toBe("2837010028370100"); // 1.55.40
    expect(isAllZero(report.subarray(O.launchMitVector, SIGNED_LENGTH))).toBe(true);

    const v2 = await chip.report({ version: 2, policy: 0xb0000n, vmpl: 2, currentTcb: 0x0102030405060708n });
    expect(u32(v2, O.version)).toBe(2);
    expect(isAllZero(v2.subarray(O.cpuidFamily, O.cpuidFamily + 3))).toBe(true);
    expect(u64(v2, O.policy)).toBe(0xb0000n);
    expect(u64(v2, O.currentTcb)).toBe(0x0102030405060708n);
    expect(u64(v2, O.reportedTcb)).toBe(raw);

    const unsigned = await chip.report({ signWith: null, maskChipKey: true });
    expect(u32(unsigned, O.signerInfo)).toBe(2);
    expect(isAllZero(unsigned.subarray(SIGNED_LENGTH))).toBe(true);
    await expect(chip.report({ reportData: new Uint8Array(65) })).rejects.toThrow(RangeError);
  });
});

describe("VLEK chip", () => {
  it("chains ARK → ASVK → VLEK with csp_id and no hwID; reports name SIGNING_KEY 1", async () => {
    const chip = await createSyntheticChip({ product: "Genoa", vekKind: "VLEK", cspId: "CN=test-csp" });
    const [ark, asvk, vlek] = [parse(chip.arkDer), parse(chip.askDer), parse(chip.vekDer)];
    expect(cn(asvk.subject)).toBe("SEV-VLEK-Genoa");
    expect(cn(vlek.subject)).toBe("SEV-VLEK");
    expect(cn(vlek.issuer)).toBe("SEV-VLEK-Genoa");
    expect(await pssVerifies(asvk, ark)).toBe(true);
    expect(await pssVerifies(vlek, asvk)).toBe(true);
    const ext = amdExtensions(vlek);
    expect(ext.has("4")).toBe(false);
    expect(decodeIa5(ext.get("5")!)).toBe("CN=test-csp");
    expect(decodeIa5(ext.get("2")!)).toBe("Genoa");
    const report = await chip.report();
    expect(u32(report, REPORT_OFFSETS.signerInfo)).toBe(1 << 2);
    expect(await reportSignatureVerifies(report, chip.vekDer)).toBe(true);
  });
});

describe("custom TCB, CHIP_ID and validity", () => {
  it("encodes microcode ≥ 128 with a leading zero and spl_4..7 from TCB bytes 2..5", async () => {
    const chip = await createSyntheticChip({ product: "Milan", reportedTcb: 0xd918040300020302n });
    const ext = amdExtensions(parse(chip.vekDer));
    expect(ext.get("3.8")).toBe("020200d9");
    expect(["3.4", "3.5", "3.6", "3.7"].map((k) => ext.get(k))).toEqual(["020102", "020100", "020103", "020104"]);
    expect(chip.reportedTcb).toStrictEqual({ raw: "d918040300020302", bootloader: 2, tee: 3, snp: 24, microcode: 217 });
  });

  it("rejects a Turin CHIP_ID with bytes beyond the first 8", async () => {
    await expect(createSyntheticChip({ product: "Turin", chipId: new Uint8Array(64).fill(1) })).rejects.toThrow(RangeError);
  });

  it("honours VEK validity", async () => {
    const notBefore = new Date("2020-01-01T00:00:00Z");
    const notAfter = new Date("2021-01-01T00:00:00Z");
    const vek = parse((await createSyntheticChip({ vekValidity: { notBefore, notAfter } })).vekDer);
    expect(vek.notBefore.value.toISOString()).toBe(notBefore.toISOString());
    expect(vek.notAfter.value.toISOString()).toBe(notAfter.toISOString());
  });
});

describe("createVekFor", () => {
  it("mints sibling VEKs under the same ASK for another TCB or chip", async () => {
    const chip = await createSyntheticChip({ product: "Turin" });
    const ask = parse(chip.askDer);
    const otherTcb = await createVekFor(chip, { reportedTcb: { fmc: 0, bootloader: 1, tee: 0, snp: 3, microcode: 71 } });
    expect(toHex(otherTcb.chipId)).toBe(toHex(chip.chipId));
    expect(otherTcb.reportedTcb.snp).toBe(3);
    expect(otherTcb.askDer).toBe(chip.askDer);
    expect(await pssVerifies(parse(otherTcb.vekDer), ask)).toBe(true);
    expect(decodeInteger(amdExtensions(parse(otherTcb.vekDer)).get("3.3")!)).toBe(3);

    const otherChip = await createVekFor(chip);
    expect(toHex(otherChip.chipId)).not.toBe(toHex(chip.chipId));
    expect(isAllZero(otherChip.chipId.subarray(8))).toBe(true);
    expect(otherChip.reportedTcb).toStrictEqual(chip.reportedTcb);
    expect(await pssVerifies(parse(otherChip.vekDer), ask)).toBe(true);
    // A report of the original chip does not verify with the sibling's VEK.
    const report = await chip.report();
    expect(await reportSignatureVerifies(report, otherChip.vekDer)).toBe(false);
  });
});

describe("VEK serial numbers", () => {
  it("are 0 by default, as AMD issues them, and settable for CRL tests", async () => {
    const chip = await createSyntheticChip();
    expect(toHex(new Uint8Array(parse(chip.vekDer).serialNumber.valueBlock.valueHexView))).toBe("00");
    const sibling = await createVekFor(chip, { vekSerial: 0x1234n });
    expect(toHex(new Uint8Array(parse(sibling.vekDer).serialNumber.valueBlock.valueHexView))).toBe("1234");
    expect(toHex(new Uint8Array(parse(chip.askDer).serialNumber.valueBlock.valueHexView))).toBe(SERIALS.Milan.ask.toString(16).padStart(6, "0"));
  });
});

describe("createCrl", () => {
  let chip: SyntheticChip;
  let ark: pkijs.Certificate;
  beforeAll(async () => {
    chip = await createSyntheticChip({ product: "Genoa" });
    ark = parse(chip.arkDer);
  });
  const parseCrl = (der: Uint8Array) => pkijs.CertificateRevocationList.fromBER(buf(der));
  const serials = (crl: pkijs.CertificateRevocationList) =>
    (crl.revokedCertificates ?? []).map((e) => BigInt(`0x${toHex(new Uint8Array(e.userCertificate.valueBlock.valueHexView))}`));

  it("issues a v2 CRL by the ARK's exact name, RSA-PSS signed, listing the revoked serials", async () => {
    const thisUpdate = new Date("2026-11-01T00:00:00Z");
    const crl = parseCrl(await createCrl(chip, { revokedSerials: [SERIALS.Genoa.ask, 0x1234n], thisUpdate }));
    expect(crl.version).toBe(1);
    expect(toHex(new Uint8Array(crl.issuer.toSchema().toBER(false)))).toBe(toHex(new Uint8Array(ark.subject.toSchema().toBER(false))));
    expect(pssParams(crl.signatureAlgorithm)).toEqual([...PSS_NO_TRAILER, [3, "020101"]]);
    expect(await pssVerifies(crl, ark)).toBe(true);
    expect(await pssVerifies(crl, parse(chip.askDer))).toBe(false);
    expect(serials(crl)).toEqual([BigInt(SERIALS.Genoa.ask), 0x1234n]);
    expect(crl.thisUpdate.value.toISOString()).toBe(thisUpdate.toISOString());
    expect(crl.nextUpdate?.value.toISOString()).toBe("2026-11-08T00:00:00.000Z");
    expect(crl.crlExtensions?.extensions.map((e) => e.extnID)).toEqual(["2.5.29.20"]);
  });

  it("leaves out nextUpdate and the revoked list on request and signs with another key or name", async () => {
    const crl = parseCrl(await createCrl(chip, { nextUpdate: null, issuerCn: "SEV-Genoa", signWith: chip.askPrivateKey }));
    expect(crl.nextUpdate).toBeUndefined();
    expect(crl.revokedCertificates).toBeUndefined();
    expect(cn(crl.issuer)).toBe("SEV-Genoa");
    expect(await pssVerifies(crl, parse(chip.askDer))).toBe(true);
  });
});

describe("kdsResponder", () => {
  let milan: SyntheticChip, turin: SyntheticChip, vlek: SyntheticChip;
  beforeAll(async () => {
    [milan, turin, vlek] = await Promise.all([
      createSyntheticChip({ product: "Milan" }),
      createSyntheticChip({ product: "Turin" }),
      createSyntheticChip({ product: "Genoa", vekKind: "VLEK" }),
    ]);
  });
  const get = (url: string) => new Request(url);
  const KDS = "https://kdsintf.amd.com";

  it("serves a VCEK only for the certified hwid and SPLs", async () => {
    const kds = kdsResponder([milan, turin, vlek]);
    const milanUrl = `${KDS}/vcek/v1/Milan/${toHex(milan.chipId)}`;
    const ok = kds.respond(get(`${milanUrl}?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219`))!;
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("application/pkix-cert");
    expect(toHex(new Uint8Array(await ok.arrayBuffer()))).toBe(toHex(milan.vekDer));
    expect(kds.respond(get(`${milanUrl}?ucodeSPL=219&snpSPL=24&blSPL=4`))!.status).toBe(200); // missing teeSPL = 0
    expect(kds.respond(get(`${milanUrl}?blSPL=4&teeSPL=0&snpSPL=23&ucodeSPL=219`))!.status).toBe(404);
    expect(kds.respond(get(`${milanUrl}?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=219&fmcSPL=0`))!.status).toBe(400);
    expect(kds.respond(get(`${KDS}/vcek/v1/Genoa/${toHex(milan.chipId)}?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=219`))!.status).toBe(404);
    const upper = `${KDS}/vcek/v1/Milan/${toHex(milan.chipId).toUpperCase()}?blSPL=4&snpSPL=24&ucodeSPL=219`;
    expect(kds.respond(get(upper))!.status).toBe(404);

    const turinHwid = toHex(turin.chipId.subarray(0, 8));
    expect(turinHwid).toHaveLength(16);
    const t = kds.respond(get(`${KDS}/vcek/v1/Turin/${turinHwid}?ucodeSPL=71&snpSPL=2&teeSPL=0&blSPL=1&fmcSPL=0`))!;
    expect(toHex(new Uint8Array(await t.arrayBuffer()))).toBe(toHex(turin.vekDer));
    expect(kds.respond(get(`${KDS}/vcek/v1/Turin/${toHex(turin.chipId)}?ucodeSPL=71&snpSPL=2&blSPL=1`))!.status).toBe(404);
    expect(kds.respond(get(`${KDS}/vcek/v1/Turin/${turinHwid}?ucodeSPL=71&snpSPL=2&blSPL=1&fmcSPL=1`))!.status).toBe(404);
    expect(kds.calls).toHaveLength(9);
  });

  it("serves the chains as PEM, intermediate first, and ignores other hosts", async () => {
    const kds = kdsResponder([milan, vlek]);
    const chain = pemBlocks(await kds.respond(get(`${KDS}/vcek/v1/Milan/cert_chain`))!.text());
    expect(chain.map(toHex)).toEqual([toHex(milan.askDer), toHex(milan.arkDer)]);
    const vchain = pemBlocks(await kds.respond(get(`${KDS}/vlek/v1/Genoa/cert_chain`))!.text());
    expect(vchain.map(toHex)).toEqual([toHex(vlek.askDer), toHex(vlek.arkDer)]);
    expect(kds.respond(get(`${KDS}/vcek/v1/Turin/cert_chain`))!.status).toBe(404);
    expect(kds.respond(get("https://example.com/vcek/v1/Milan/cert_chain"))).toBeUndefined();
    expect((await kds.fetch("https://example.com/")).status).toBe(599);
    expect(kds.calls).toEqual([`${KDS}/vcek/v1/Milan/cert_chain`, `${KDS}/vlek/v1/Genoa/cert_chain`, `${KDS}/vcek/v1/Turin/cert_chain`]);
  });

  it("fails on demand and honours a custom base", async () => {
    const kds = kdsResponder([milan], { base: "https://kds.test/amd/", fail: "429", retryAfter: 7 });
    const url = "https://kds.test/amd/vcek/v1/Milan/cert_chain";
    const limited = await kds.fetch(url);
    expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "7"]);
    kds.fail = "outage";
    expect((await kds.fetch(url)).status).toBe(503);
    kds.fail = "none";
    expect((await kds.fetch(url)).status).toBe(200);
    expect(kds.respond(get(`${KDS}/vcek/v1/Milan/cert_chain`))).toBeUndefined();
    expect(kds.calls).toEqual([url, url, url]);
  });
});
