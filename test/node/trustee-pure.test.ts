// The pure parts of the Trustee KBS 0.4.0 protocol: JCS, the REPORT_DATA and HOST_DATA bindings, the
// tee-pubkey schema, JWE to the guest's key, and the virtee/sev serde form of SNP evidence. Expected values
// come from outside this code: RFC 8785's test data (cyberphone/json-canonicalization@d4cb500c testdata),
// the worked vectors in the research anchors (§2.7, §2.10), node:crypto's hashes, jose's decrypter, and the
// real Trustee e2e evidence in test/fixtures (MANIFEST.md).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import fc from "fast-check";
import { flattenedDecrypt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { fromBase64Loose, toBase64Url, toHex, utf8 } from "../../src/crypto/bytes";
import { canonicalJson } from "../../src/crypto/jcs";
import { checkTeeJwk, encryptJwe, type FlattenedJwe, type TeeJwk } from "../../src/crypto/jwe";
import { TeeError } from "../../src/errors";
import { certificatesFromSerde, reportFromSerde } from "../../src/tee/snp/serde";
import { trustAnchors } from "../../src/tee/snp/trust";
import { verifySnpReport } from "../../src/tee/snp/verify";
import { MAX_INIT_DATA_BYTES, readInitData, TeePubKeyJwk, trusteeReportData } from "../../src/trustee/runtime-data";
import { FIXTURES, fixture } from "../helpers/fixtures";
import { createSyntheticChip, type SyntheticChip } from "../../lab/synthetic-amd";
import { openJwe, serdeCertChain, serdeFromReport, teeKeyPair, type TeeKeyKind } from "../../lab/trustee-guest";

const evidence = JSON.parse(readFileSync(resolve(FIXTURES, "snp/trustee-e2e-evidence.json"), "utf8")) as {
  attestation_report: Record<string, unknown>;
  cert_chain: unknown[];
};

/** The TeeError code `f` threw (sync or async), or "no error". */
async function teeCode(f: () => unknown): Promise<string> {
  try {
    await f();
    return "no error";
  } catch (e) {
    if (e instanceof TeeError) return `${e.code}: ${e.message}`;
    throw e;
  }
}

const sha = (alg: string, text: string) => new Uint8Array(createHash(alg).update(text, "utf8").digest());

// ---------------------------------------------------------------------------------------------
// Anchors §2.7 and §2.10: the P-256 guest key (private scalar 0x11…11) and its binding.

const NONCE = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const GUEST_KEY = {
  kty: "EC",
  crv: "P-256",
  alg: "ECDH-ES+A256KW",
  x: "AhfmF_C2RDkoJ4-WmZ5pojpPLBUr321s32bluAKC1O0",
  y: "GUp968uXcS0t2jyoWqh2Wlb0X8dYWZZS8ol8ZTBuV5Q",
} as const;
const CANONICAL_RUNTIME_DATA =
  '{"additional-evidence":"","nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"AhfmF_C2RDkoJ4-WmZ5pojpPLBUr321s32bluAKC1O0","y":"GUp968uXcS0t2jyoWqh2Wlb0X8dYWZZS8ol8ZTBuV5Q"}}';
const RUNTIME_DATA_SHA384 = "1147b1af549c26b6863daf32fc064834beaa470ddb06fd5c57c44363cb2e86f11c4d80906326c2154d2b96d47de1ac62";
const VECTOR_JWE: FlattenedJwe = {
  protected:
    "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiIxbHFUbDN5cVBSc0lHRkxfVjZlZVJsOFdZRmR6QkxycTFRWGRPa2hZblBNIiwieSI6IlVCaGVpVk55MzJJaDZqb1RkVmZrY18zYloxWHdXOVVIdzhVel9PbkpFb1UifX0",
  encrypted_key: "Tv226vhM20rpXNoICDhHf0YT2lYcLlnHvVvuv_Fmpi_nXNRYDlyw1A",
  iv: "RERERERERERERERE",
  ciphertext: "Xejp_r9t_EbQ49fhhvW4EGnp",
  tag: "eHC6Q_Nt9mmIXSk55zBnqA",
};
const VECTOR_HEADER =
  '{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"1lqTl3yqPRsIGFL_V6eeRl8WYFdzBLrq1QXdOkhYnPM","y":"UBheiVNy32Ih6joTdVfkc_3bZ1XwW9UHw8Uz_OnJEoU"}}';

describe("canonicalJson (RFC 8785)", () => {
  // cyberphone/json-canonicalization testdata/{input,output}/<name>.json, the RFC's reference test data.
  const vectors: [string, string, string][] = [
    [
      "values",
      '{\n  "numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],\n  "escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n  "literals": [null, true, false]\n}',
      '{"escaping":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/","literals":[null,true,false],"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}',
    ],
    [
      "weird",
      '{\n  "\\u20ac": "Euro Sign",\n  "1": "One",\n  "\\u0080": "Control\\u007f",\n  "\\ud83d\\ude02": "Smiley",\n  "\\u00f6": "Latin Small Letter O With Diaeresis",\n  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n  "</script>": "Browser Challenge"\n}',
      '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude02":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    ],
    [
      "structures",
      '{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},\n  "10": { },\n  "": "empty",\n  "a": { },\n  "111": [ { } ],\n  "A": { }\n}',
      '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
    ],
    ["unicode", '{\n  "Unnormalized Unicode":"\\u1e0d\\u0307"\n}', '{"Unnormalized Unicode":"\u1e0d\u0307"}'],
  ];
  it.each(vectors)("RFC 8785 test data %s", (_name, input, output) => {
    expect(canonicalJson(JSON.parse(input))).toBe(output);
  });

  it("writes numbers as ECMAScript does (RFC 8785 appendix B)", () => {
    expect([-0, 1e21, 1e20, 5e-324, 1.7976931348623157e308, -1.5e-7].map(canonicalJson)).toEqual([
      "0",
      "1e+21",
      "100000000000000000000",
      "5e-324",
      "1.7976931348623157e+308",
      "-1.5e-7",
    ]);
  });

  it("leaves undefined members out and refuses what JSON or I-JSON cannot carry", () => {
    expect(canonicalJson({ b: 1, a: undefined })).toBe('{"b":1}');
    const bad = [NaN, Infinity, "\ud800", { k: "x\udc00" }, 1n, undefined, () => 1, new Date(0), new Uint8Array(2), [Symbol("s")]];
    bad.forEach((value, i) => expect(() => canonicalJson(value), `case ${i}`).toThrow(TypeError));
  });

  it("gives the anchors' §2.7 canonical runtime data and its SHA-384, whatever order the guest sent", () => {
    const runtime = { "tee-pubkey": GUEST_KEY, nonce: NONCE, "additional-evidence": "" };
    expect(canonicalJson(runtime)).toBe(CANONICAL_RUNTIME_DATA);
    expect(toHex(sha("sha384", canonicalJson(runtime)))).toBe(RUNTIME_DATA_SHA384);
  });
});

describe("trusteeReportData", () => {
  it("is the §2.7 worked vector: SHA-384 of the canonical runtime data, then 16 zero bytes", async () => {
    const reportData = await trusteeReportData({ nonce: NONCE, "tee-pubkey": GUEST_KEY }, "");
    expect(toHex(reportData)).toBe(RUNTIME_DATA_SHA384 + "00".repeat(16));
  });

  it("binds the additional evidence and every JWK member as received", async () => {
    const base = await trusteeReportData({ nonce: NONCE, "tee-pubkey": GUEST_KEY }, "");
    expect(await trusteeReportData({ nonce: NONCE, "tee-pubkey": GUEST_KEY }, '{"nvidia":{}}')).not.toEqual(base);
    expect(await trusteeReportData({ nonce: NONCE, "tee-pubkey": { ...GUEST_KEY, kid: "1" } }, "")).not.toEqual(base);
    const reordered = { y: GUEST_KEY.y, x: GUEST_KEY.x, alg: GUEST_KEY.alg, crv: GUEST_KEY.crv, kty: GUEST_KEY.kty };
    expect(await trusteeReportData({ nonce: NONCE, "tee-pubkey": reordered }, "")).toEqual(base);
  });
});

describe("TeePubKeyJwk", () => {
  it("accepts the keys guest-components sends", () => {
    expect(TeePubKeyJwk.safeParse(GUEST_KEY).success).toBe(true);
    expect(TeePubKeyJwk.safeParse({ kty: "RSA", alg: "RSA-OAEP-256", n: "sXch", e: "AQAB" }).success).toBe(true);
    expect(TeePubKeyJwk.safeParse({ kty: "RSA", alg: "RSA1_5", n: "sXch", e: "AQAB" }).success).toBe(true);
  });

  it.each([
    ["an extra member", { ...GUEST_KEY, kid: "k" }],
    ["padded base64url", { ...GUEST_KEY, x: `${GUEST_KEY.x}=` }],
    ["standard base64", { ...GUEST_KEY, x: GUEST_KEY.x.replace("_", "/") }],
    ["an EC key with an RSA alg", { ...GUEST_KEY, alg: "RSA-OAEP-256" }],
    ["an unsupported curve", { ...GUEST_KEY, crv: "secp256k1" }],
    ["ML-KEM", { kty: "AKP", alg: "ML-KEM-768+A192KW", pub: "AAAA" }],
    ["RSA-OAEP (SHA-1)", { kty: "RSA", alg: "RSA-OAEP", n: "sXch", e: "AQAB" }],
    ["a missing member", { kty: "RSA", alg: "RSA1_5", n: "sXch" }],
  ])("refuses %s", (_what, jwk) => {
    expect(TeePubKeyJwk.safeParse(jwk).success).toBe(false);
  });
});

describe("readInitData", () => {
  const toml = (algorithm: string) => `version = "0.1.0"\nalgorithm = "${algorithm}"\n\n[data]\n"aa.toml" = '''\n[token_configs]\n'''\n`;

  it.each(["sha256", "sha384", "sha512"])("hashes the whole body with %s, cut to HOST_DATA's 32 bytes", async (algorithm) => {
    const body = toml(algorithm);
    expect((await readInitData({ format: "toml", body })).digest).toEqual(sha(algorithm, body).subarray(0, 32));
  });

  it("hashes the text as sent, not its meaning, and reads only the top-level algorithm", async () => {
    const spaced = toml("sha384").replace("algorithm = ", "algorithm   =   ");
    expect((await readInitData({ format: "toml", body: spaced })).digest).toEqual(sha("sha384", spaced).subarray(0, 32));
    const decoy = `algorithm = "sha256"\nversion = "0.1.0"\n[data]\n"x" = '''\nalgorithm = "sha512"\n'''\n`;
    expect((await readInitData({ format: "toml", body: decoy })).digest).toEqual(sha("sha256", decoy));
  });

  it.each([
    ["a format other than toml", { format: "json", body: toml("sha256") }],
    ["no algorithm (Trustee has no default)", { format: "toml", body: 'version = "0.1.0"\n[data]\n' }],
    ["an algorithm WebCrypto lacks", { format: "toml", body: toml("sm3") }],
    ["an algorithm that is not a string", { format: "toml", body: 'algorithm = 384\nversion = "0.1.0"\n[data]\n' }],
    ["no version", { format: "toml", body: 'algorithm = "sha256"\n[data]\n' }],
    ["no data table", { format: "toml", body: 'algorithm = "sha256"\nversion = "0.1.0"\n' }],
    ["data that is not all strings", { format: "toml", body: 'algorithm = "sha256"\nversion = "0.1.0"\n[data]\nk = 1\n' }],
    ["invalid TOML", { format: "toml", body: 'algorithm = "sha256\n' }],
    ["a body over 64 KiB", { format: "toml", body: `${toml("sha256")}#${"x".repeat(MAX_INIT_DATA_BYTES)}\n` }],
  ])("refuses %s", async (_what, initData) => {
    expect(await teeCode(() => readInitData(initData))).toMatch(/^init-data-invalid: /);
  });
});

// ---------------------------------------------------------------------------------------------
// JWE

const header = (jwe: FlattenedJwe) => new TextDecoder().decode(fromBase64Loose(jwe.protected));

describe("encryptJwe", () => {
  const keys = new Map<TeeKeyKind | "EC-P384", { jwk: TeeJwk; privateKey: CryptoKey }>();
  beforeAll(async () => {
    for (const kind of ["RSA-OAEP-256", "RSA1_5", "EC-P256", "EC-P521"] as const) keys.set(kind, await teeKeyPair(kind));
    const p384 = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-384" }, false, ["deriveBits"])) as CryptoKeyPair;
    const { x, y } = (await crypto.subtle.exportKey("jwk", p384.publicKey)) as JsonWebKey;
    keys.set("EC-P384", { jwk: { kty: "EC", alg: "ECDH-ES+A256KW", crv: "P-384", x: x!, y: y! }, privateKey: p384.privateKey });
  });

  it.each([
    ["RSA-OAEP-256", 256],
    ["RSA1_5", 256],
    ["EC-P256", 40],
    ["EC-P384", 40],
    ["EC-P521", 40],
  ] as const)("%s: the guest opens it; sorted compact header; fresh 32-byte CEK and 12-byte IV", async (kind, wrappedBytes) => {
    const { jwk, privateKey } = keys.get(kind)!;
    const plaintext = crypto.getRandomValues(new Uint8Array(100));
    const jwe = await encryptJwe(jwk, plaintext);
    expect(await openJwe(jwe, privateKey)).toEqual(plaintext);
    expect(Object.keys(jwe)).toEqual(["protected", "encrypted_key", "iv", "ciphertext", "tag"]);
    const h = JSON.parse(header(jwe));
    expect(header(jwe)).toBe(canonicalJson(h));
    expect(h.alg).toBe(jwk.alg);
    expect(h.enc).toBe("A256GCM");
    if (jwk.kty === "EC") expect(Object.keys(h.epk)).toEqual(["crv", "kty", "x", "y"]);
    expect(Object.keys(h)).toEqual(jwk.kty === "EC" ? ["alg", "enc", "epk"] : ["alg", "enc"]);
    expect(fromBase64Loose(jwe.encrypted_key)).toHaveLength(wrappedBytes);
    expect(fromBase64Loose(jwe.iv)).toHaveLength(12);
    expect(fromBase64Loose(jwe.tag)).toHaveLength(16);
    const again = await encryptJwe(jwk, plaintext);
    expect([again.iv, again.encrypted_key]).not.toEqual([jwe.iv, jwe.encrypted_key]);
  });

  it("authenticates the protected header as sent: the same header re-encoded does not decrypt", async () => {
    const { jwk, privateKey } = keys.get("EC-P256")!;
    const jwe = await encryptJwe(jwk, utf8("secret"));
    const respaced = { ...jwe, protected: toBase64Url(utf8(JSON.stringify(JSON.parse(header(jwe)), null, 1))) };
    await expect(openJwe(respaced, privateKey)).rejects.toThrow();
  });

  it("opens the anchors' §2.10 vector (ephemeral 0x22…, CEK 0x33…, IV 0x44…) to my-luks-passphrase with jose", async () => {
    const d = toBase64Url(new Uint8Array(32).fill(0x11));
    const privateKey = await crypto.subtle.importKey("jwk", { ...GUEST_KEY, d, alg: undefined }, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    const { plaintext } = await flattenedDecrypt(VECTOR_JWE, privateKey, { keyManagementAlgorithms: ["ECDH-ES+A256KW"] });
    expect(new TextDecoder().decode(plaintext)).toBe("my-luks-passphrase");
    expect(header(VECTOR_JWE)).toBe(VECTOR_HEADER);
    expect(canonicalJson(JSON.parse(VECTOR_HEADER))).toBe(VECTOR_HEADER);
  });

  it("refuses keys it cannot encrypt to with tee-pubkey-invalid, at checkTeeJwk and at encryptJwe", async () => {
    const rsa = keys.get("RSA-OAEP-256")!.jwk as Extract<TeeJwk, { kty: "RSA" }>;
    const ec = keys.get("EC-P256")!.jwk as Extract<TeeJwk, { kty: "EC" }>;
    const p521 = keys.get("EC-P521")!.jwk as Extract<TeeJwk, { kty: "EC" }>;
    const small = (await crypto.subtle.generateKey({ name: "RSA-OAEP", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["encrypt", "decrypt"])) as CryptoKeyPair;
    const smallN = ((await crypto.subtle.exportKey("jwk", small.publicKey)) as JsonWebKey).n!;
    const bad: [string, unknown][] = [
      ["a 1024-bit modulus", { ...rsa, n: smallN }],
      ["an even exponent", { ...rsa, e: "AQAA" }],
      ["padded base64url", { ...rsa, n: `${rsa.n}=` }],
      ["a point not on the curve", { ...ec, y: ec.x }],
      ["a short coordinate", { ...ec, x: toBase64Url(fromBase64Loose(ec.x).subarray(1)) }],
      ["a P-521 coordinate of 65 bytes", { ...p521, x: toBase64Url(fromBase64Loose(p521.x).subarray(1)) }],
      ["an unknown curve", { ...ec, crv: "P-192" }],
      ["EC with an RSA alg", { ...ec, alg: "RSA1_5" }],
      ["ML-KEM", { kty: "AKP", alg: "ML-KEM-768+A192KW" }],
    ];
    for (const [what, jwk] of bad) {
      expect(await teeCode(() => checkTeeJwk(jwk as TeeJwk)), what).toMatch(/^tee-pubkey-invalid: /);
      expect(await teeCode(() => encryptJwe(jwk as TeeJwk, utf8("x"))), what).toMatch(/^tee-pubkey-invalid: /);
    }
    expect(await teeCode(() => checkTeeJwk(rsa))).toBe("no error");
  });
});

// ---------------------------------------------------------------------------------------------
// SNP evidence in virtee/sev serde form

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe("reportFromSerde and certificatesFromSerde on real Trustee evidence", () => {
  const bin = fixture("snp/genoa-report-v3-trustee-e2e.bin");
  const vcek = fixture("snp/genoa-vcek-trustee-e2e.der");

  it("re-encodes the report byte for byte and takes the VCEK from cert_chain", () => {
    expect(toHex(reportFromSerde(evidence.attestation_report))).toBe(toHex(bin));
    expect(certificatesFromSerde(evidence.cert_chain)).toEqual([vcek]);
  });

  it("the re-encoded report verifies with that VCEK under AMD's Genoa chain", async () => {
    const verified = await verifySnpReport(reportFromSerde(evidence.attestation_report), {
      trust: await trustAnchors(),
      certificates: [...certificatesFromSerde(evidence.cert_chain), fixture("amd-roots/canonical/genoa-ask.der"), fixture("amd-roots/canonical/genoa-ark.der")],
      now: new Date("2026-01-01T00:00:00Z"),
    });
    expect([verified.product, verified.signer, verified.reportedTcb.raw]).toEqual(["Genoa", "VCEK", "191700000000000a"]);
  });

  it("the guest helper's serdeFromReport writes what virtee wrote (plus sev ≥ 6's null mitigation vectors)", () => {
    expect(serdeFromReport(bin)).toEqual({ ...evidence.attestation_report, launch_mit_vector: null, current_mit_vector: null });
  });
});

describe("serdeFromReport → reportFromSerde round trip on synthetic chips", () => {
  let chips: Record<"Milan" | "Genoa" | "Turin", SyntheticChip>;
  beforeAll(async () => {
    const [Milan, Genoa, Turin] = await Promise.all([createSyntheticChip({ product: "Milan" }), createSyntheticChip({ product: "Genoa" }), createSyntheticChip({ product: "Turin" })]);
    chips = { Milan, Genoa, Turin };
  });

  it.each([
    ["Milan", 2],
    ["Genoa", 3],
    ["Genoa", 5],
    ["Turin", 2],
    ["Turin", 3],
    ["Turin", 5],
  ] as const)("%s v%i", async (product, version) => {
    const report = await chips[product].report({
      version,
      reportData: crypto.getRandomValues(new Uint8Array(64)),
      hostData: crypto.getRandomValues(new Uint8Array(32)),
      platformInfo: 0x25n,
      currentVersion: { major: 1, minor: 58, build: 3 },
      ...(version === 5 && { launchMitVector: 0x12345n, currentMitVector: 0x1fn }),
    });
    const serde = JSON.parse(JSON.stringify(serdeFromReport(report)));
    expect((serde.reported_tcb as { fmc: unknown }).fmc === null).toBe(product !== "Turin");
    expect(toHex(reportFromSerde(serde))).toBe(toHex(report));
  });

  it("reads absent Option members as None: v5 mitigation vectors absent are zero, v2 CPUID absent is fine", async () => {
    const v5 = await chips.Genoa.report({ version: 5 });
    const { launch_mit_vector: _l, current_mit_vector: _c, ...withoutVectors } = serdeFromReport(v5);
    expect(reportFromSerde(withoutVectors)).toEqual(v5);
    const v2 = await chips.Milan.report({ version: 2 });
    const { cpuid_fam_id: _f, cpuid_mod_id: _m, cpuid_step: _s, ...withoutCpuid } = serdeFromReport(v2);
    expect(reportFromSerde(withoutCpuid)).toEqual(v2);
  });

  it("certificates travel as serdeCertChain writes them, Empty/CRL/OTHER entries skipped", () => {
    const { vekDer, askDer, arkDer } = chips.Genoa;
    const chain = [
      ...serdeCertChain([
        { type: "VCEK", der: vekDer },
        { type: "ASK", der: askDer },
        { type: "ARK", der: arkDer },
        { type: "VLEK", der: vekDer },
        { type: "CRL", der: utf8("a CRL") },
        { type: "Empty", der: new Uint8Array(0) },
      ]),
      { cert_type: { OTHER: "12345678-9abc-def0-1234-56789abcdef0" }, data: [1, 2] },
    ];
    expect(certificatesFromSerde(chain)).toEqual([vekDer, askDer, arkDer, vekDer]);
    expect(certificatesFromSerde(null)).toEqual([]);
    expect(certificatesFromSerde(undefined)).toEqual([]);
  });
});

describe("malformed serde evidence is refused with evidence-malformed and the path", () => {
  const genoa = evidence.attestation_report;
  // A synthetic-looking Turin v5 report's serde, derived from the real one's shape.
  const turin = { ...clone(genoa), version: 5, cpuid_fam_id: 0x1a, cpuid_mod_id: 2, launch_mit_vector: 0, current_mit_vector: 0 };
  for (const k of ["current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"]) (turin as Record<string, unknown>)[k] = { fmc: 1, bootloader: 1, tee: 0, snp: 2, microcode: 71 };
  const edit = (base: Record<string, unknown>, f: (r: Record<string, unknown>) => void) => {
    const r = clone(base);
    f(r);
    return r;
  };

  it("accepts the Turin base these cases edit", () => {
    expect(reportFromSerde(turin)[0x038]).toBe(1);
  });

  it.each<[string, Record<string, unknown> | unknown, string]>([
    ["not an object", [1, 2], "attestation_report: expected an object"],
    ["a missing member", edit(genoa, (r) => delete r.measurement), "attestation_report.measurement: missing"],
    ["an unknown member", edit(genoa, (r) => (r._reserved_0 = 0)), "attestation_report._reserved_0: unknown member"],
    ["a short byte array", edit(genoa, (r) => (r.report_data as number[]).pop()), "attestation_report.report_data: expected 64 bytes, got 63"],
    ["a byte out of range", edit(genoa, (r) => ((r.chip_id as number[])[5] = 256)), "attestation_report.chip_id[5]: expected an integer 0-255"],
    ["a string for a u32", edit(genoa, (r) => (r.vmpl = "0")), "attestation_report.vmpl: expected an integer 0-4294967295"],
    ["a u64 beyond 2^53", edit(genoa, (r) => (r.policy = 2 ** 60)), "attestation_report.policy: expected an integer 0-9007199254740991"],
    ["a fraction", edit(genoa, (r) => (r.guest_svn = 0.5)), "attestation_report.guest_svn: expected an integer 0-4294967295"],
    ["CPUID missing from v3", edit(genoa, (r) => (r.cpuid_step = null)), "attestation_report.cpuid_step: missing in a version 3 report"],
    ["CPUID in v2", edit(genoa, (r) => (r.version = 2)), "attestation_report.cpuid_fam_id: present in a version 2 report"],
    ["a mitigation vector in v3", edit(genoa, (r) => (r.launch_mit_vector = 1)), "attestation_report.launch_mit_vector: present in a version 3 report"],
    ["fmc in a Genoa TCB", edit(genoa, (r) => ((r.launch_tcb as Record<string, unknown>).fmc = 0)), "attestation_report.launch_tcb.fmc: present in a pre-Turin TCB"],
    ["no fmc in a Turin TCB", edit(turin, (r) => ((r.committed_tcb as Record<string, unknown>).fmc = null)), "attestation_report.committed_tcb.fmc: missing in a Turin-layout TCB"],
    ["a TCB member unknown", edit(genoa, (r) => ((r.current_tcb as Record<string, unknown>).spl_4 = 0)), "attestation_report.current_tcb.spl_4: unknown member"],
    ["a firmware version member missing", edit(genoa, (r) => delete (r.current as Record<string, unknown>).build), "attestation_report.current.build: missing"],
    ["a short signature R", edit(genoa, (r) => ((r.signature as { r: number[] }).r = (r.signature as { r: number[] }).r.slice(1))), "attestation_report.signature.r: expected 72 bytes, got 71"],
  ])("%s", async (_what, json, message) => {
    expect(await teeCode(() => reportFromSerde(json))).toBe(`evidence-malformed: ${message}`);
  });

  const der = [48, 3, 2, 1, 0];
  it.each<[string, unknown, string]>([
    ["not an array", { cert_type: "VCEK", data: der }, "cert_chain: expected null or an array"],
    ["nine entries", Array.from({ length: 9 }, () => ({ cert_type: "ARK", data: der })), "cert_chain: more than 8 entries"],
    ["an ASVK type (virtee has none)", [{ cert_type: "ASVK", data: der }], 'cert_chain[0].cert_type: expected one of ARK, ASK, VCEK, VLEK, Empty, CRL or {"OTHER": "<uuid>"}'],
    ["OTHER without a uuid", [{ cert_type: "VCEK", data: der }, { cert_type: { OTHER: "vcek" }, data: der }], 'cert_chain[1].cert_type: expected one of ARK, ASK, VCEK, VLEK, Empty, CRL or {"OTHER": "<uuid>"}'],
    ["a certificate over 16 KiB", [{ cert_type: "VCEK", data: new Array(16 * 1024 + 1).fill(0) }], "cert_chain[0].data: more than 16384 bytes"],
    ["data as base64", [{ cert_type: "VCEK", data: "MAMCAQA=" }], "cert_chain[0].data: expected an array of bytes"],
    ["a byte out of range", [{ cert_type: "VCEK", data: [48, -1] }], "cert_chain[0].data[1]: expected an integer 0-255"],
    ["an unknown member", [{ cert_type: "VCEK", data: der, guid: "x" }], "cert_chain[0].guid: unknown member"],
  ])("cert_chain: %s", async (_what, chain, message) => {
    expect(await teeCode(() => certificatesFromSerde(chain))).toBe(`evidence-malformed: ${message}`);
  });
});

describe("property: any damage to serde evidence gives bytes or evidence-malformed, nothing else", () => {
  type Path = (string | number)[];
  /** Every path into a JSON tree (byte arrays contribute a few indices, not all of them). */
  function paths(value: unknown, at: Path = []): Path[] {
    if (typeof value !== "object" || value === null) return [at];
    const keys: (string | number)[] = Array.isArray(value) ? [0, 1, value.length - 1].filter((i) => i >= 0 && i < value.length) : Object.keys(value);
    return [at, ...keys.flatMap((k) => paths((value as Record<string | number, unknown>)[k], [...at, k]))];
  }
  const odd = fc.constantFrom<unknown>(null, -1, 256, 2 ** 32, 2 ** 53, 1.5, "", "VCEK", [], {}, { fmc: null }, { OTHER: "x" }, true);
  const damage = (base: unknown) =>
    fc.tuple(fc.constantFrom(...paths(base)), fc.constantFrom("replace", "delete", "add"), fc.oneof(odd, fc.jsonValue({ maxDepth: 2 }))).map(([path, op, value]) => {
      const root = { v: clone(base) } as Record<string | number, unknown>;
      const full = ["v", ...path];
      const parent = full.slice(0, -1).reduce<Record<string | number, unknown>>((o, k) => o[k] as Record<string | number, unknown>, root);
      const last = full[full.length - 1]!;
      if (op === "replace") parent[last] = value;
      else if (op === "delete" && !Array.isArray(parent)) delete parent[last];
      else if (op === "delete") (parent as unknown as unknown[]).splice(last as number, 1);
      else if (typeof parent[last] === "object" && parent[last] !== null && !Array.isArray(parent[last])) (parent[last] as Record<string, unknown>).extra = value;
      else parent[last] = [parent[last], value];
      return root.v;
    });
  const verdict = (f: () => Uint8Array | Uint8Array[]) => {
    try {
      return f();
    } catch (e) {
      if (e instanceof TeeError && e.code === "evidence-malformed") return e;
      throw e;
    }
  };

  it("reportFromSerde", () => {
    fc.assert(
      fc.property(damage(evidence.attestation_report), (json) => {
        const out = verdict(() => reportFromSerde(json));
        if (out instanceof Uint8Array) expect(out).toHaveLength(1184);
      }),
      { numRuns: 600 },
    );
  });

  it("certificatesFromSerde", () => {
    fc.assert(
      fc.property(damage(evidence.cert_chain), (json) => {
        verdict(() => certificatesFromSerde(json));
      }),
      { numRuns: 300 },
    );
  });
});
