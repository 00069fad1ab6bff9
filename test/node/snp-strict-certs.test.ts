// How strictly AMD certificates are read (issue 11): times, structure, extensions, CA constraints, names and
// the VEK's AMD extensions, as go-sev-guest (and Go's x509 under it) would refuse them; every candidate
// issuer tried; operator-listed ARKs bound to their product. Each malformed certificate is one edit of a
// synthetic chip's (lab/synthetic-amd.ts reissue), so only that edit can be the reason.

import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../src/crypto/bytes";
import { toPem } from "../../src/crypto/pem";
import { ConfigError } from "../../src/errors";
import { parseCrl } from "../../src/tee/snp/crl";
import { decode, nameAttributes, readAs, time } from "../../src/tee/snp/der";
import { trustAnchors } from "../../src/tee/snp/trust";
import { VerificationError, type Product, type TrustAnchors, type VerifyOptions } from "../../src/tee/snp/types";
import { clearVerifierCaches, verifySnpReport } from "../../src/tee/snp/verify";
import { fingerprint, importVekKey, parseCertificate } from "../../src/tee/snp/x509";
import {
  basicConstraintsValue,
  certificatesOf,
  createCrl,
  createSyntheticChip,
  keyUsageValue,
  OID,
  reissue,
  type CertEdits,
  type CertExtension,
  type SyntheticChip,
} from "../../lab/synthetic-amd";
import { fixture } from "../helpers/fixtures";
import { codeOf } from "../helpers/verdict";

let milan: SyntheticChip;
let vlek: SyntheticChip;
let turin: SyntheticChip;
let opts: VerifyOptions;

beforeAll(async () => {
  [milan, vlek, turin] = await Promise.all([
    createSyntheticChip({ product: "Milan" }),
    createSyntheticChip({ product: "Milan", vekKind: "VLEK" }),
    createSyntheticChip({ product: "Turin" }),
  ]);
  opts = { trust: await trustAnchors(milan.arkPem), certificates: certificatesOf(milan) };
});

/** "<code>: <message>" of the VerificationError parseCertificate throws, "parsed" if none; any other error fails the test. */
function verdict(der: Uint8Array): string {
  try {
    parseCertificate(der);
  } catch (e) {
    if (e instanceof VerificationError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "parsed";
}

type Role = "ark" | "ask" | "vek";
/** The chip's certificate of this role with `edits`, signed again by its issuer's key. */
function edited(chip: SyntheticChip, role: Role, edits: CertEdits): Promise<Uint8Array> {
  const issued: Record<Role, [Uint8Array, CryptoKey]> = { ark: [chip.arkDer, chip.arkPrivateKey], ask: [chip.askDer, chip.arkPrivateKey], vek: [chip.vekDer, chip.askPrivateKey] };
  return reissue(...issued[role], edits);
}

const amd = (arc: string) => `${OID.amd}.${arc}`;
const without = (oid: string) => (exts: CertExtension[]) => exts.filter((e) => e.oid !== oid);
const withValue = (oid: string, value: Uint8Array) => (exts: CertExtension[]) => exts.map((e) => (e.oid === oid ? { ...e, value } : e));
const adding = (...more: CertExtension[]) => (exts: CertExtension[]) => [...exts, ...more];
const integer = (n: number) => Uint8Array.of(0x02, 0x01, n);
const ia5 = (text: string) => Uint8Array.of(0x16, text.length, ...new TextEncoder().encode(text));

describe("the helper's edits", () => {
  it("reissue without edits changes only the signature; the extension builders write AMD's exact bytes", async () => {
    const again = await reissue(milan.vekDer, milan.askPrivateKey);
    expect(again.length).toBe(milan.vekDer.length);
    expect(toHex(again.subarray(0, -256))).toBe(toHex(milan.vekDer.subarray(0, -256)));
    const [ark, ask] = [toHex(fixture("amd-roots/canonical/milan-ark.der")), toHex(fixture("amd-roots/canonical/milan-ask.der"))];
    // extnID, critical TRUE, OCTET STRING { value } as in AMD's ARK and ASK.
    expect(ark).toContain(`0603551d0f0101ff0404${toHex(keyUsageValue([5, 6]))}`);
    expect(ark).toContain(`0603551d130101ff0405${toHex(basicConstraintsValue(true))}`);
    expect(ask).toContain(`0603551d0f0101ff0404${toHex(keyUsageValue([5], 1))}`);
    expect(ask).toContain(`0603551d130101ff0408${toHex(basicConstraintsValue(true, 0))}`);
  });
});

describe("validity times (RFC 5280 §4.1.2.5)", () => {
  it.each(["2099123123595X", ""])("a GeneralizedTime %j that is no time at all is cert-malformed, in the reader and in verifySnpReport", async (text) => {
    const vek = await edited(milan, "vek", { notAfter: { type: "GeneralizedTime", text } });
    const expected = `cert-malformed: certificate: notAfter GeneralizedTime "${text}" is not YYYYMMDDHHMMSSZ`;
    expect(verdict(vek)).toBe(expected);
    const code = await codeOf(verifySnpReport(await milan.report(), { ...opts, certificates: [vek, milan.askDer, milan.arkDer] }));
    expect(code).toBe(expected);
  });

  it.each([
    ["UTCTime", "garbage!!!!!Z", /notAfter UTCTime "garbage!!!!!Z" is not YYMMDDHHMMSSZ/],
    ["UTCTime", "", /notAfter UTCTime "" is not YYMMDDHHMMSSZ/],
    ["UTCTime", "3012312359Z", /is not YYMMDDHHMMSSZ/],
    ["UTCTime", "301231235959+0100", /is not YYMMDDHHMMSSZ/],
    ["UTCTime", "301231235959", /is not YYMMDDHHMMSSZ/],
    ["UTCTime", "30123123595９Z", /is not YYMMDDHHMMSSZ/],
    ["UTCTime", "300230120000Z", /notAfter 300230120000Z is not a valid date and time/],
    ["UTCTime", "301231240000Z", /is not a valid date and time/],
    ["UTCTime", "301300000000Z", /is not a valid date and time/],
    ["GeneralizedTime", "20991231235959.5Z", /notAfter GeneralizedTime "20991231235959.5Z" is not YYYYMMDDHHMMSSZ/],
    ["GeneralizedTime", "20991231235959+0100", /is not YYYYMMDDHHMMSSZ/],
    ["GeneralizedTime", "20991331235959Z", /is not a valid date and time/],
    ["GeneralizedTime", "20301231235959Z", /notAfter is a GeneralizedTime before 2050, where RFC 5280 requires UTCTime/],
  ] as const)("a %s %j is refused (no 1899, no fractions, no offsets)", async (type, text, message) => {
    const result = verdict(await edited(milan, "vek", { notAfter: { type, text } }));
    expect(result).toMatch(/^cert-malformed: certificate: /);
    expect(result).toMatch(message);
  });

  it("reads UTCTime years 50–99 as 19xx and 00–49 as 20xx, and GeneralizedTime from 2050", async () => {
    const cert = parseCertificate(
      await edited(milan, "vek", { notBefore: { type: "UTCTime", text: "500101000000Z" }, notAfter: { type: "UTCTime", text: "491231235959Z" } }),
    );
    expect([cert.notBefore.toISOString(), cert.notAfter.toISOString()]).toEqual(["1950-01-01T00:00:00.000Z", "2049-12-31T23:59:59.000Z"]);
    const late = parseCertificate(await edited(milan, "vek", { notAfter: { type: "GeneralizedTime", text: "20500101000000Z" } }));
    expect(late.notAfter.toISOString()).toBe("2050-01-01T00:00:00.000Z");
  });

  it("a CRL's times are read as strictly (crl-invalid, not a date in 1899)", async () => {
    const crl = await createCrl(milan);
    // thisUpdate is the first UTCTime (tag 17, length 0d): make its last digit a letter.
    const at = crl.findIndex((b, i) => b === 0x17 && crl[i + 1] === 0x0d);
    crl[at + 2 + 11] = "X".charCodeAt(0);
    expect(() => parseCrl(crl)).toThrow(/^CRL: thisUpdate UTCTime ".*X.*" is not YYMMDDHHMMSSZ$/);
  });

  it("a CRL may say a date before 2050 as GeneralizedTime (strict form still), a certificate may not", () => {
    const generalized = (text: string) => decode(Uint8Array.of(0x18, text.length, ...new TextEncoder().encode(text)), "time");
    expect(time(generalized("20301231235959Z"), "thisUpdate", { split2050: false }).toISOString()).toBe("2030-12-31T23:59:59.000Z");
    expect(() => time(generalized("20301231235959Z"), "notAfter")).toThrow(/before 2050/);
    expect(() => time(generalized("20301231235959+0100"), "thisUpdate", { split2050: false })).toThrow(/is not YYYYMMDDHHMMSSZ/);
  });
});

describe("DER, not BER (X.690 §10, §11)", () => {
  const der = (...bytes: number[]) => Uint8Array.from(bytes);
  it.each([
    ["an indefinite length", der(0x30, 0x80, 0x05, 0x00, 0x00, 0x00), "length form"],
    ["a long-form length under 128", der(0x04, 0x81, 0x01, 0x00), "non-minimal length"],
    ["a length with a leading zero octet", der(0x04, 0x82, 0x00, 0x81, ...new Array(0x81).fill(0)), "non-minimal length"],
    ["a length beyond the input", der(0x30, 0x03, 0x05, 0x00), "length beyond the input"],
    ["a multi-octet tag", der(0x1f, 0x81, 0x00, 0x00), "multi-octet tag"],
    ["end-of-contents", der(0x00, 0x00), "universal tag 0 unexpected"],
    ["a universal type AMD does not use (REAL)", der(0x09, 0x00), "universal tag 9 unexpected"],
    ["a constructed OCTET STRING", der(0x24, 0x03, 0x04, 0x01, 0x00), "tag 0x24 in the wrong form"],
    ["a primitive SEQUENCE", der(0x10, 0x00), "tag 0x10 in the wrong form"],
    ["BOOLEAN 01", der(0x01, 0x01, 0x01), "BOOLEAN other than 00 or FF"],
    ["INTEGER 00 7f", der(0x02, 0x02, 0x00, 0x7f), "INTEGER not in its fewest octets"],
    ["INTEGER ff 80", der(0x02, 0x02, 0xff, 0x80), "INTEGER not in its fewest octets"],
    ["an empty INTEGER", der(0x02, 0x00), "INTEGER not in its fewest octets"],
    ["NULL with contents", der(0x05, 0x01, 0x00), "NULL with contents"],
    ["an OID arc with a leading 0x80", der(0x06, 0x03, 0x2b, 0x80, 0x01), "OBJECT IDENTIFIER"],
    ["an OID ending mid-arc", der(0x06, 0x02, 0x2b, 0x81), "OBJECT IDENTIFIER"],
    ["a BIT STRING with set padding bits", der(0x03, 0x02, 0x01, 0x01), "BIT STRING padding"],
    ["a BIT STRING with 8 unused bits", der(0x03, 0x02, 0x08, 0x00), "BIT STRING padding"],
  ])("refuses %s", (_, bytes, why) => {
    expect(() => decode(bytes, "x")).toThrow(`x is not valid DER (${why})`);
  });

  it("refuses DER hidden inside the certificate, nesting too deep, and strings their type does not allow", () => {
    // The VEK's serial is 0 (02 01 00); write it 02 02 00 00 and grow the Certificate's and the
    // TBSCertificate's lengths (both 82 xx xx) by one: valid BER, not DER.
    const cert = milan.vekDer;
    const at = toHex(cert).indexOf("a003020102020100") / 2 + 5;
    expect(at).toBeGreaterThan(5);
    const padded = Uint8Array.from([...cert.subarray(0, at), 0x02, 0x02, 0x00, 0x00, ...cert.subarray(at + 3)]);
    const view = new DataView(padded.buffer);
    for (const len of [2, 6]) view.setUint16(len, view.getUint16(len) + 1);
    expect(verdict(padded)).toBe("cert-malformed: certificate: certificate is not valid DER (INTEGER not in its fewest octets)");
    const deep = der(...new Array(20).fill(0).flatMap((_, i) => [0x30, 2 * (19 - i)]));
    expect(() => decode(deep, "x")).toThrow("x nests too deeply");
    const printable = (text: string) => readAs("cert-malformed", "name", () => nameAttributes(decode(der(0x30, text.length + 11, 0x31, text.length + 9, 0x30, text.length + 7, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, text.length, ...new TextEncoder().encode(text)), "name"), "name"));
    expect(printable("SEV-Milan")).toEqual([["2.5.4.3", "SEV-Milan"]]);
    expect(() => printable("SEV*Milan")).toThrow("name: name attribute value has characters its string type does not allow");
    const utf8Name = (...text: number[]) => readAs("cert-malformed", "name", () => nameAttributes(decode(der(0x30, text.length + 11, 0x31, text.length + 9, 0x30, text.length + 7, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, text.length, ...text), "name"), "name"));
    expect(() => utf8Name(0x41, 0xff)).toThrow("name: name attribute value is not valid UTF-8");
    // The decoder is shared: a refusal leaves nothing behind for the next name.
    expect(utf8Name(0xc3, 0xa9)).toEqual([["2.5.4.3", "é"]]);
  });
});

describe("key import", () => {
  it("a key WebCrypto refuses is cert-malformed every time (a failed import is not cached), concurrent imports of one key share one", async () => {
    // SubjectPublicKeyInfo { ecPublicKey, secp384r1 } with a point that is not on the curve.
    const offCurve = Uint8Array.from([0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04, ...new Array(96).fill(1)]);
    for (let i = 0; i < 2; i++) expect(await codeOf(importVekKey(offCurve))).toBe("cert-malformed: certificate: public key cannot be imported as ECDSA");
    const spki = parseCertificate(milan.vekDer).spki;
    const [a, b] = await Promise.all([importVekKey(spki), importVekKey(spki)]);
    expect(a).toBe(b);
  });
});

describe("certificate structure", () => {
  it.each([
    ["v1 (no version field)", { version: null }, /not an X.509 v3 certificate/],
    ["v2", { version: 1 }, /not an X.509 v3 certificate/],
    ["an element after signatureValue", { trailing: [integer(1)] }, /Certificate is not a SEQUENCE of 3 elements/],
    ["an INTEGER after the extensions", { tbsTail: (t: Uint8Array[]) => [...t, integer(1)] }, /TBSCertificate has fields other than issuerUniqueID, subjectUniqueID and extensions, in order/],
    ["a second extensions field", { tbsTail: (t: Uint8Array[]) => [...t, ...t] }, /TBSCertificate has fields other than/],
    ["a subjectUniqueID after the extensions", { tbsTail: (t: Uint8Array[]) => [...t, Uint8Array.of(0x82, 0x02, 0x00, 0x01)] }, /TBSCertificate has fields other than/],
    ["an empty extensions list", { extensions: () => [] }, /Extensions is not a SEQUENCE of 1\+ elements/],
  ] as [string, CertEdits, RegExp][])("%s is refused", async (_name, edits, message) => {
    const result = verdict(await edited(milan, "vek", edits));
    expect(result).toMatch(/^cert-malformed: certificate: /);
    expect(result).toMatch(message);
  });

  it("issuerUniqueID [1] and subjectUniqueID [2] before the extensions are allowed (and ignored)", async () => {
    const ids = [Uint8Array.of(0x81, 0x02, 0x00, 0x01), Uint8Array.of(0x82, 0x02, 0x00, 0x02)];
    expect(verdict(await edited(milan, "vek", { tbsTail: (t) => [...ids, ...t] }))).toBe("parsed");
  });

  it("a root signed with PKCS#1 v1.5 (sha256WithRSAEncryption) is refused", async () => {
    const sha256WithRsa = Uint8Array.of(0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00);
    expect(verdict(await edited(milan, "ark", { signatureAlgorithm: sha256WithRsa }))).toMatch(/^cert-malformed: certificate: signature algorithm 1\.2\.840\.113549\.1\.1\.11 is not RSASSA-PSS$/);
  });
});

describe("extensions (RFC 5280 §4.2)", () => {
  it("an unknown critical extension is refused; the same extension non-critical is ignored", async () => {
    const unknown = { oid: "1.3.6.1.4.1.99999.1", value: Uint8Array.of(0x05, 0x00) };
    expect(verdict(await edited(milan, "vek", { extensions: adding({ ...unknown, critical: true }) }))).toBe(
      "cert-malformed: certificate: extension 1.3.6.1.4.1.99999.1 is critical but not understood",
    );
    expect(verdict(await edited(milan, "vek", { extensions: adding({ ...unknown, critical: false }) }))).toBe("parsed");
    // AMD's own extensions are never critical; one that is would be refused by Go's x509 too.
    const critical = (exts: CertExtension[]) => exts.map((e) => (e.oid === amd("3.1") ? { ...e, critical: true } : e));
    expect(verdict(await edited(milan, "vek", { extensions: critical }))).toMatch(/extension 1\.3\.6\.1\.4\.1\.3704\.1\.3\.1 is critical but not understood/);
  });

  it("a second blSPL cannot override the first: duplicate extensions are refused, also through verifySnpReport", async () => {
    const vek = await edited(milan, "vek", { extensions: adding({ oid: amd("3.1"), critical: false, value: integer(99) }) });
    expect(verdict(vek)).toBe("cert-malformed: certificate: extension 1.3.6.1.4.1.3704.1.3.1 appears more than once");
    const report = await milan.report({ reportedTcb: { ...milan.reportedTcb, bootloader: 99 } });
    expect(await codeOf(verifySnpReport(report, { ...opts, certificates: [vek, milan.askDer, milan.arkDer] }))).toMatch(/^cert-malformed: .*appears more than once/);
    const ark = await edited(milan, "ark", { extensions: (e) => [...e, e.find((x) => x.oid === OID.subjectKeyIdentifier)!] });
    expect(verdict(ark)).toMatch(/extension 2\.5\.29\.14 appears more than once/);
  });
});

describe("CA constraints (RFC 5280 §4.2.1.3, §4.2.1.9)", () => {
  it.each(["ark", "ask"] as const)("%s: no extensions, no basicConstraints, cA FALSE, no keyUsage or digitalSignature only are refused", async (role) => {
    const name = role.toUpperCase();
    const cases: [CertEdits, string][] = [
      [{ tbsTail: () => [] }, `the ${name} is not a CA: it needs basicConstraints with cA TRUE`],
      [{ extensions: without(OID.basicConstraints) }, `the ${name} is not a CA: it needs basicConstraints with cA TRUE`],
      [{ extensions: withValue(OID.basicConstraints, basicConstraintsValue(false)) }, `the ${name} is not a CA: it needs basicConstraints with cA TRUE`],
      [{ extensions: without(OID.keyUsage) }, `the ${name} keyUsage lacks keyCertSign`],
      [{ extensions: withValue(OID.keyUsage, keyUsageValue([0])) }, `the ${name} keyUsage lacks keyCertSign`],
    ];
    for (const [edits, message] of cases) expect(verdict(await edited(milan, role, edits))).toBe(`cert-malformed: certificate: ${message}`);
  });

  it("the ARK also needs cRLSign (it signs the CRL); the ASK does not", async () => {
    expect(verdict(await edited(milan, "ark", { extensions: withValue(OID.keyUsage, keyUsageValue([5])) }))).toBe("cert-malformed: certificate: the ARK keyUsage lacks cRLSign");
    expect(verdict(await edited(milan, "ask", { extensions: withValue(OID.keyUsage, keyUsageValue([5])) }))).toBe("parsed");
  });

  it("a VEK that claims to be a CA is refused; AMD's carry no basicConstraints", async () => {
    const ca = { oid: OID.basicConstraints, critical: true, value: basicConstraintsValue(true) };
    expect(verdict(await edited(milan, "vek", { extensions: adding(ca) }))).toBe(
      "cert-malformed: certificate: the VCEK claims to be a CA (basicConstraints cA TRUE); AMD's VEKs are not",
    );
    expect(verdict(await edited(milan, "vek", { extensions: adding({ ...ca, value: basicConstraintsValue(false) }) }))).toBe("parsed");
  });

  it("AMD's real ARKs, ASKs, ASVKs and VEKs all pass, each with its role and product", () => {
    for (const p of ["milan", "genoa", "turin"]) {
      for (const [name, role] of [["ark", "ARK"], ["ask", "ASK"], ["asvk", "ASVK"]]) {
        expect(parseCertificate(fixture(`amd-roots/canonical/${p}-${name}.der`))).toMatchObject({ role, product: p[0]!.toUpperCase() + p.slice(1) });
      }
    }
    const veks: [string, string, Product][] = [
      ["snp/milan-vcek-automata-sdk.der", "VCEK", "Milan"],
      ["oak/genoa-vcek-oak-genoa_oc.der", "VCEK", "Genoa"],
      ["oak/turin-vcek-oak-turin_oc.der", "VCEK", "Turin"],
      ["aws/milan-vlek-aws-us-east-2-trustee-test-vlek.der", "VLEK", "Milan"],
    ];
    for (const [path, role, product] of veks) expect(parseCertificate(fixture(path))).toMatchObject({ role, product });
  });
});

describe("names (go-sev-guest validateAmdLocation)", () => {
  it.each([
    ["subject", "a locality other than Santa Clara", (a: [string, string][]) => a.map(([t, v]): [string, string] => [t, t === "L" ? "Austin" : v]), 'subject L is "Austin", expected "Santa Clara"'],
    ["issuer", "no OU", (a: [string, string][]) => a.filter(([t]) => t !== "OU"), 'issuer OU is absent, expected "Engineering"'],
    ["subject", "two countries", (a: [string, string][]) => [["C", "US"], ...a] as [string, string][], 'subject C is "US", "US", expected "US"'],
    ["subject", "an extra attribute", (a: [string, string][]) => [...a, ["2.5.4.5", "1"]] as [string, string][], "subject has attributes other than AMD's C, L, ST, O, OU and CN"],
    ["subject", "two CNs", (a: [string, string][]) => [...a, ["CN", "SEV-VCEK"]] as [string, string][], "subject has 2 CNs, expected 1"],
  ] as const)("a VCEK %s with %s is refused", async (part, _what, edit, message) => {
    expect(verdict(await edited(milan, "vek", { [part]: edit }))).toBe(`cert-malformed: certificate: ${message}`);
  });

  it.each([
    ["ark", { subject: "ARK-Venice", issuer: "ARK-Venice" }, "CN=ARK-Venice issued by CN=ARK-Venice"],
    ["ask", { subject: "SEV-Milan", issuer: "ARK-Genoa" }, "CN=SEV-Milan issued by CN=ARK-Genoa"],
    ["vek", { subject: "SEV-VCEK", issuer: "SEV-VLEK-Milan" }, "CN=SEV-VCEK issued by CN=SEV-VLEK-Milan"],
    ["vek", { subject: "VCEK", issuer: "SEV-Milan" }, "CN=VCEK issued by CN=SEV-Milan"],
  ] as const)("a %s named %j is no AMD certificate", async (role, cns, named) => {
    const cn = (value: string) => (a: [string, string][]) => a.map(([t, v]): [string, string] => [t, t === "CN" ? value : v]);
    const result = verdict(await edited(milan, role, { subject: cn(cns.subject), issuer: cn(cns.issuer) }));
    expect(result).toBe(`cert-malformed: certificate: ${named} is not an AMD ARK, ASK, ASVK, VCEK or VLEK of Milan, Genoa, Turin`);
  });

  it("the synthetic chips carry AMD's exact names, byte for byte", () => {
    const real = parseCertificate(fixture("amd-roots/canonical/milan-ask.der"));
    const synthetic = parseCertificate(milan.askDer);
    expect(synthetic.subject).toEqual(real.subject);
    expect(synthetic.issuer).toEqual(real.issuer);
  });
});

describe("VEK AMD extensions (AMD pub. 57230; go-sev-guest kds.CertificateExtensions)", () => {
  it.each(["blSPL:3.1", "teeSPL:3.2", "snpSPL:3.3", "spl_4:3.4", "spl_5:3.5", "spl_6:3.6", "spl_7:3.7", "ucodeSPL:3.8"])(
    "a Milan VCEK without %s is refused, not read as SPL 0",
    async (spl) => {
      const [name, arc] = spl.split(":") as [string, string];
      expect(verdict(await edited(milan, "vek", { extensions: without(amd(arc)) }))).toBe(
        `cert-malformed: certificate: the VCEK lacks the ${name} extension, which Milan VEKs carry`,
      );
    },
  );

  it("Turin VEKs carry fmcSPL and no spl_4; Milan's the reverse", async () => {
    expect(verdict(await edited(turin, "vek", { extensions: without(amd("3.9")) }))).toMatch(/the VCEK lacks the fmcSPL extension, which Turin VEKs carry$/);
    expect(verdict(await edited(turin, "vek", { extensions: adding({ oid: amd("3.4"), critical: false, value: integer(0) }) }))).toMatch(
      /the VCEK has the spl_4 extension, which Turin VEKs do not$/,
    );
    expect(verdict(await edited(milan, "vek", { extensions: adding({ oid: amd("3.9"), critical: false, value: integer(0) }) }))).toMatch(
      /the VCEK has the fmcSPL extension, which Milan VEKs do not$/,
    );
  });

  it("structVersion and productName must be present and name the issuer's product", async () => {
    const cases: [SyntheticChip, CertEdits["extensions"], string][] = [
      [milan, without(amd("1")), "the VCEK has no structVersion extension"],
      [milan, withValue(amd("1"), integer(1)), "the VCEK structVersion is 1, expected 0 for Milan"],
      [turin, withValue(amd("1"), integer(0)), "the VCEK structVersion is 0, expected 1 for Turin"],
      [milan, without(amd("2")), "the VCEK has no productName extension"],
      [milan, withValue(amd("2"), ia5("Genoa-B0")), 'the VCEK productName "Genoa-B0" is not Milan or Milan-<stepping>'],
      [milan, withValue(amd("2"), ia5("Milanese")), 'the VCEK productName "Milanese" is not Milan or Milan-<stepping>'],
      [vlek, withValue(amd("2"), ia5("Milan-B0")), 'the VLEK productName "Milan-B0" is not Milan'],
    ];
    for (const [chip, extensions, message] of cases) expect(verdict(await edited(chip, "vek", { extensions }))).toBe(`cert-malformed: certificate: ${message}`);
    // Stepping names go-sev-guest knows, and the bare product of 2025 Genoa/Turin VCEKs, are all accepted.
    for (const name of ["Milan-B1", "Milan"]) expect(verdict(await edited(milan, "vek", { extensions: withValue(amd("2"), ia5(name)) }))).toBe("parsed");
  });

  it("a VCEK carries hwID and no csp_id; a VLEK csp_id and no hwID", async () => {
    const hwid = { oid: amd("4"), critical: false, value: new Uint8Array(64) };
    const cspId = { oid: amd("5"), critical: false, value: ia5("CN=csp.example") };
    const cases: [SyntheticChip, CertEdits["extensions"], string][] = [
      [milan, without(amd("4")), "the VCEK has no hwID extension"],
      [milan, adding(cspId), "the VCEK has a csp_id extension"],
      [vlek, without(amd("5")), "the VLEK has no csp_id extension"],
      [vlek, adding(hwid), "the VLEK has a hwID extension"],
      [turin, withValue(amd("4"), new Uint8Array(64)), "hwID is 64 bytes, expected 8 for Turin"],
    ];
    for (const [chip, extensions, message] of cases) expect(verdict(await edited(chip, "vek", { extensions }))).toBe(`cert-malformed: certificate: ${message}`);
  });
});

describe("every candidate issuer is tried", () => {
  it("a same-named decoy ASK or an unlisted same-named ARK listed first does not break a valid chain", async () => {
    const decoyAsk = await reissue(milan.askDer, milan.askPrivateKey); // CN=SEV-Milan, but not signed by the ARK
    const unlistedArk = vlek.arkDer; // CN=ARK-Milan, another key, not in the trust anchors
    const report = await milan.report();
    for (const certificates of [
      [milan.vekDer, decoyAsk, milan.askDer, milan.arkDer],
      [milan.vekDer, milan.askDer, unlistedArk, milan.arkDer],
      [unlistedArk, decoyAsk, milan.vekDer, milan.askDer, milan.arkDer],
    ]) {
      clearVerifierCaches();
      expect((await verifySnpReport(report, { ...opts, certificates })).signer).toBe("VCEK");
    }
  });

  it("when every candidate fails, the first failure is the verdict; nothing that failed is cached", async () => {
    const decoyAsk = await reissue(milan.askDer, milan.askPrivateKey);
    const report = await milan.report();
    clearVerifierCaches();
    expect(await codeOf(verifySnpReport(report, { ...opts, certificates: [milan.vekDer, decoyAsk, vlek.arkDer, milan.arkDer] }))).toMatch(
      /^cert-untrusted-root: ARK [0-9a-f]{16}… is neither AMD's pinned Milan root nor an operator-listed Milan root$/,
    );
    expect(await codeOf(verifySnpReport(report, { ...opts, certificates: [milan.vekDer, decoyAsk, milan.arkDer] }))).toBe(
      "cert-chain-invalid: the ASK signature by the ARK does not verify",
    );
  });

  it("a supplied issuer that fails is followed by the provider's chain", async () => {
    const decoyAsk = await reissue(milan.askDer, milan.askPrivateKey);
    let chains = 0;
    const provider = { vcek: async () => undefined, chain: async () => (chains++, [milan.askDer, milan.arkDer]) };
    clearVerifierCaches();
    expect((await verifySnpReport(await milan.report(), { trust: opts.trust, certificates: [milan.vekDer, decoyAsk], provider })).signer).toBe("VCEK");
    expect(chains).toBe(1);
  });
});

describe("operator-listed ARKs (EXTRA_TRUSTED_ARKS)", () => {
  it("each listed ARK is trusted for the product its CN names, and only for it", async () => {
    const anchors = await trustAnchors(milan.arkPem + turin.arkPem);
    expect(new Map(anchors.extra)).toEqual(
      new Map([
        [await fingerprint(milan.arkDer), "Milan"],
        [await fingerprint(turin.arkDer), "Turin"],
      ]),
    );
    const turinOpts = { certificates: certificatesOf(turin) };
    expect((await verifySnpReport(await turin.report(), { ...turinOpts, trust: anchors })).product).toBe("Turin");
    // The same Turin root listed as a Milan one vouches for no Turin chain.
    const mislisted: TrustAnchors = { pinned: anchors.pinned, extra: new Map([[await fingerprint(turin.arkDer), "Milan"]]) };
    clearVerifierCaches();
    expect(await codeOf(verifySnpReport(await turin.report(), { ...turinOpts, trust: mislisted }))).toMatch(/^cert-untrusted-root: .*nor an operator-listed Turin root$/);
  });

  it("an ARK of an unknown product, a non-ARK, a PKCS#1-signed root or bad base64 is a ConfigError, never a crash", async () => {
    const cn = (a: [string, string][]) => a.map(([t, v]): [string, string] => [t, t === "CN" ? "ARK-Venice" : v]);
    const venice = await edited(milan, "ark", { subject: cn, issuer: cn });
    const sha256WithRsa = Uint8Array.of(0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00);
    const pkcs1 = await edited(milan, "ark", { signatureAlgorithm: sha256WithRsa });
    const cases: [string, RegExp][] = [
      [toPem(venice), /^EXTRA_TRUSTED_ARKS: certificate 1 is not an AMD-style ARK \(certificate: CN=ARK-Venice issued by CN=ARK-Venice is not an AMD ARK/],
      [milan.arkPem + toPem(milan.askDer), /^EXTRA_TRUSTED_ARKS: certificate 2 is CN=SEV-Milan \(ASK\), not an ARK-<product> root$/],
      [toPem(pkcs1), /^EXTRA_TRUSTED_ARKS: certificate 1 is not an AMD-style ARK \(.*is not RSASSA-PSS\)$/],
      [milan.arkPem.replace(/\n[A-Za-z0-9+/]{8}/, "\n!!!!!!!!"), /^EXTRA_TRUSTED_ARKS: /],
    ];
    for (const [pem, message] of cases) {
      const error = await trustAnchors(pem).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(message);
    }
  });
});
