// Legacy SEV certificates and chain verification against real AMD data (test/fixtures/sev-legacy, see
// test/fixtures/MANIFEST.md): codecs byte-identical on every file, the Naples/Rome/Milan chains to the
// pinned ARKs, and the tampering and trust failures.

import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { concat, fromHex, reversed, sha256, toBase64, toHex } from "../../src/crypto/bytes";
import { ConfigError } from "../../src/errors";
import { caCanonicalBytes, decodeCaCertificate, decodeSevCertificate, encodeCaCertificate, encodeSevCertificate } from "../../src/tee/sev/certs";
import { clearSevChainCaches, sevChainHash, verifyCaPair, verifySevChain } from "../../src/tee/sev/chain";
import { parseSevRequest } from "../../src/tee/sev/json";
import { createLaunchSession } from "../../src/tee/sev/launch";
import { arkFingerprint, NAPLES_ARK_AS_PUBLISHED, PINNED_SEV_ARKS, sevTrustAnchors } from "../../src/tee/sev/trust";
import { Algo, GENERATIONS, Usage, type AmdCaCertificate, type SevChain, type SevPolicy, type SevTrustAnchors } from "../../src/tee/sev/types";
import { operatorTrust, sevArkPem } from "../../src/tee/trust";
import { FIXTURES, fixture, sevLegacyChain } from "../helpers/fixtures";
import { createSevPlatform, p384TestPoints, type SevPlatform } from "../../lab/synthetic-sev";

const DATA = resolve(FIXTURES, "sev-legacy");

const file = (name: string) => fixture(`sev-legacy/${name}`);
const ca = (gen: string, role: "ark" | "ask") => decodeCaCertificate(file(`amd-ca-${gen}-${role}.cert`));
const NO_EXTRA: SevTrustAnchors = { pinned: PINNED_SEV_ARKS, extra: new Set() };
const POLICY: SevPolicy = { flags: 0x03, minfw: { major: 0, minor: 0 } };

/** A synthetic lab platform, made once for the file: RSA key generation dominates its run time. */
let labPlatform: Promise<SevPlatform> | undefined;
const lab = () => (labPlatform ??= createSevPlatform());

/** A copy of `bytes` with one byte set. */
function withByte(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[offset] = value;
  return out;
}

const flipped = (bytes: Uint8Array, offset: number) => withByte(bytes, offset, bytes[offset]! ^ 0x01);

/** `chain` with one platform certificate replaced by a byte-tampered copy. */
function tamper(chain: SevChain, role: keyof SevChain["sev"], offset: number): SevChain {
  return { ...chain, sev: { ...chain.sev, [role]: decodeSevCertificate(flipped(chain.sev[role].bytes, offset)) } };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "verified";
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
}

const SIG1 = 0x41c; // first signature slot's signature bytes
const SIG2 = 0x624;

describe("SEV certificates: codecs on every real file", () => {
  const names = readdirSync(DATA).filter((n) => n.endsWith(".cert"));

  it("every file decodes and re-encodes byte for byte (platform certs in 2084-byte units)", () => {
    expect(names.length).toBe(26);
    for (const name of names) {
      const bytes = file(name);
      if (name.startsWith("amd-ca-") || name.startsWith("naples-ark-")) {
        const cert = decodeCaCertificate(bytes, name);
        expect(encodeCaCertificate(cert), name).toEqual(bytes);
        const { bytes: _, ...fields } = cert;
        expect(encodeCaCertificate(fields), `${name} from fields alone`).toEqual(bytes);
      } else {
        expect(bytes.length % 2084, name).toBe(0);
        for (let off = 0; off < bytes.length; off += 2084) {
          const unit = bytes.subarray(off, off + 2084);
          expect(encodeSevCertificate(decodeSevCertificate(unit, name)), `${name}@${off}`).toEqual(unit);
        }
      }
    }
  });

  it("platform certificate fields match the MANIFEST (usages, algorithms, curve 2, API versions)", () => {
    const expected: [string, number, number, string, [number, number]][] = [
      ["naples-cek-virteesev.cert", Usage.CEK, Algo.ECDSA_SHA256, "0.14", [Usage.ASK, Algo.RSA_SHA256]],
      ["naples-oca-virteesev.cert", Usage.OCA, Algo.ECDSA_SHA256, "0.16", [Usage.OCA, Algo.ECDSA_SHA256]],
      ["naples-pek-virteesev.cert", Usage.PEK, Algo.ECDSA_SHA256, "0.16", [Usage.OCA, Algo.ECDSA_SHA256]],
      ["naples-pdh-virteesev.cert", Usage.PDH, Algo.ECDH_SHA256, "0.16", [Usage.PEK, Algo.ECDSA_SHA256]],
      ["rome-cek-virteesev.cert", Usage.CEK, Algo.ECDSA_SHA256, "0.14", [Usage.ASK, Algo.RSA_SHA384]],
      ["rome-oca-virteesev.cert", Usage.OCA, Algo.ECDSA_SHA256, "0.22", [Usage.OCA, Algo.ECDSA_SHA256]],
      ["rome-pek-virteesev.cert", Usage.PEK, Algo.ECDSA_SHA256, "0.22", [Usage.OCA, Algo.ECDSA_SHA256]],
      ["rome-pdh-virteesev.cert", Usage.PDH, Algo.ECDH_SHA256, "0.22", [Usage.PEK, Algo.ECDSA_SHA256]],
      ["milan-cek-kbstypes-sev_request.cert", Usage.CEK, Algo.ECDSA_SHA256, "0.14", [Usage.ASK, Algo.RSA_SHA384]],
      ["milan-oca-kbstypes-sev_request.cert", Usage.OCA, Algo.ECDSA_SHA256, "1.51", [Usage.OCA, Algo.ECDSA_SHA256]],
      ["milan-pek-kbstypes-sev_request.cert", Usage.PEK, Algo.ECDSA_SHA256, "1.51", [Usage.OCA, Algo.ECDSA_SHA256]],
      ["milan-pdh-kbstypes-sev_request.cert", Usage.PDH, Algo.ECDH_SHA256, "1.51", [Usage.PEK, Algo.ECDSA_SHA256]],
      ["guest-owner-godh-kbstypes-sev_challenge.cert", Usage.PDH, Algo.ECDH_SHA256, "0.0", [Usage.INVALID, Algo.NONE]],
    ];
    for (const [name, usage, algo, api, [slotUsage, slotAlgo]] of expected) {
      const cert = decodeSevCertificate(file(name));
      expect({ usage: cert.usage, algo: cert.algo, api: `${cert.apiMajor}.${cert.apiMinor}` }, name).toEqual({ usage, algo, api });
      expect(cert.publicKey.kind === "ec" && cert.publicKey.curve === 2 && cert.publicKey.x.length === 48, name).toBe(true);
      expect([cert.signatures[0].usage, cert.signatures[0].algo], name).toEqual([slotUsage, slotAlgo]);
    }
    // PEKs carry the CEK's signature in slot 2; the others leave it empty.
    expect(decodeSevCertificate(file("rome-pek-virteesev.cert")).signatures[1]).toMatchObject({ usage: Usage.CEK, algo: Algo.ECDSA_SHA256 });
    expect(decodeSevCertificate(file("rome-pdh-virteesev.cert")).signatures[1]).toMatchObject({ usage: Usage.INVALID, algo: Algo.NONE });
  });

  it("AMD CA certificates: key ids, certifying ids, sizes, exponent 65537", () => {
    const ids: Record<string, [string, string, number]> = {
      naples: ["1bb987c3", "e139970c", 2048],
      rome: ["e6002122", "c6cbcf14", 4096],
      milan: ["94c38e41", "73478c05", 4096],
      genoa: ["9f9d4a8f", "acbb4ad2", 4096],
      turin: ["d05c3a8b", "15051693", 4096],
    };
    for (const [gen, [arkId, askId, bits]] of Object.entries(ids)) {
      const ark = ca(gen, "ark");
      const ask = ca(gen, "ask");
      expect(toHex(ark.keyId).slice(0, 8), gen).toBe(arkId);
      expect(toHex(ask.keyId).slice(0, 8), gen).toBe(askId);
      expect(ark.certifyingId, gen).toEqual(ark.keyId);
      expect(ask.certifyingId, gen).toEqual(ark.keyId);
      expect([ark.usage, ask.usage, ark.bits, ask.bits], gen).toEqual([Usage.ARK, Usage.ASK, bits, bits]);
      expect(toHex(ark.exponent).replace(/^0+/, ""), gen).toBe("10001");
      expect([ark.modulus.length, ark.signature?.length], gen).toEqual([bits / 8, bits / 8]);
      expect(ark.modulus[0]! & 0x80, gen).toBe(0x80);
    }
  });

  it("AMD's truncated Naples ARK decodes unsigned; with AMD's separate signature it is the full ARK", () => {
    const truncated = decodeCaCertificate(file("naples-ark-as-published-by-amd-missing-signature.cert"));
    expect(truncated.signature).toBeNull();
    expect(truncated.bytes.length).toBe(576);
    const full = ca("naples", "ark");
    expect(concat(truncated.bytes, file("naples-ark-signature-supplied-by-amd.bin"))).toEqual(full.bytes);
    expect(full.signature).toEqual(reversed(file("naples-ark-signature-supplied-by-amd.bin")));
    expect({ ...truncated, signature: full.signature, bytes: null }).toEqual({ ...full, bytes: null });
  });

  it("longer inputs are accepted, their tails kept and re-encoded", () => {
    const pdh = concat(file("rome-pdh-virteesev.cert"), Uint8Array.of(1, 2, 3));
    expect(encodeSevCertificate(decodeSevCertificate(pdh))).toEqual(pdh);
    // sev serialises the 832-byte Naples certificates as 1600-byte arrays with leftover memory.
    const ask = concat(file("amd-ca-naples-ask.cert"), new Uint8Array(768).fill(0xa5));
    const decoded = decodeCaCertificate(ask);
    expect(decoded.signature).toEqual(ca("naples", "ask").signature);
    expect(encodeCaCertificate(decoded)).toEqual(ask);
    expect(caCanonicalBytes(decoded)).toEqual(file("amd-ca-naples-ask.cert"));
  });

  it.each([
    ["a 2083-byte platform cert", () => decodeSevCertificate(file("rome-pdh-virteesev.cert").subarray(0, 2083), "PDH"), "PDH: 2083 bytes"],
    ["platform cert version 2", () => decodeSevCertificate(withByte(file("rome-pdh-virteesev.cert"), 0, 2)), "version 2"],
    ["an unknown key algorithm", () => decodeSevCertificate(withByte(file("rome-pdh-virteesev.cert"), 0x0c, 7)), "algorithm 0x0007"],
    ["key algorithm NONE", () => decodeSevCertificate(withByte(withByte(file("rome-pdh-virteesev.cert"), 0x0c, 0), 0x0d, 0)), "algorithm 0x0000"],
    ["curve 3", () => decodeSevCertificate(flipped(file("rome-pdh-virteesev.cert"), 0x10)), "curve 3"],
    ["an 831-byte Naples ASK", () => decodeCaCertificate(file("amd-ca-naples-ask.cert").subarray(0, 831)), "831 bytes"],
    ["a truncated Naples ASK", () => decodeCaCertificate(file("amd-ca-naples-ask.cert").subarray(0, 576)), "576 bytes"],
    ["a truncated Rome ARK", () => decodeCaCertificate(file("amd-ca-rome-ark.cert").subarray(0, 1088)), "1088 bytes"],
    ["a 577-byte Naples ARK", () => decodeCaCertificate(file("amd-ca-naples-ark.cert").subarray(0, 577)), "577 bytes"],
    ["CA version 0", () => decodeCaCertificate(flipped(file("amd-ca-rome-ark.cert"), 0)), "version 0"],
    ["a 3072-bit CA cert", () => decodeCaCertificate(withByte(file("amd-ca-rome-ark.cert"), 0x3d, 0x0c)), "modulus size 3072"],
    ["a CA cert with a different exponent size", () => decodeCaCertificate(flipped(file("amd-ca-rome-ark.cert"), 0x39)), "exponent size"],
  ])("rejects %s as cert-malformed", (_, decode, text) => {
    expect(decode).toThrow(expect.objectContaining({ code: "cert-malformed", message: expect.stringContaining(text) }));
  });
});

describe("SEV trust anchors", () => {
  it("the pinned fingerprints are the SHA-256 of AMD's ARK files", async () => {
    for (const gen of GENERATIONS) {
      const bytes = file(`amd-ca-${gen.toLowerCase()}-ark.cert`);
      expect(toHex(await sha256(bytes))).toBe(await arkFingerprint(decodeCaCertificate(bytes)));
      expect(PINNED_SEV_ARKS.get(await arkFingerprint(decodeCaCertificate(bytes))), gen).toBe(gen);
    }
    const truncated = decodeCaCertificate(file("naples-ark-as-published-by-amd-missing-signature.cert"));
    expect(PINNED_SEV_ARKS.get(await arkFingerprint(truncated))).toBe("Naples");
    expect(PINNED_SEV_ARKS.size).toBe(6);
  });

  it("sev's 1600-byte form of the Naples ARK has the same fingerprint as AMD's 832-byte file", async () => {
    const padded = decodeCaCertificate(concat(file("amd-ca-naples-ark.cert"), new Uint8Array(768).fill(7)));
    expect(await arkFingerprint(padded)).toBe(await arkFingerprint(ca("naples", "ark")));
  });

  it("extra ARKs: listed by fingerprint; an ASK or undecodable entry is refused by position", async () => {
    const rome = file("amd-ca-rome-ark.cert");
    const anchors = await sevTrustAnchors([rome]);
    expect([...anchors.extra]).toEqual([toHex(await sha256(rome))]);
    expect(anchors.pinned).toBe(PINNED_SEV_ARKS);
    await expect(sevTrustAnchors([rome, file("amd-ca-rome-ask.cert")])).rejects.toThrow(/extra SEV ARK 2 has usage 0x13/);
    await expect(sevTrustAnchors([new Uint8Array(100)])).rejects.toThrow(/EXTRA_TRUSTED_ARKS: extra SEV ARK 1: version 0/);
    expect((await sevTrustAnchors([])).extra.size).toBe(0);
  });
});

describe("SEV chains: real platforms", () => {
  it.each([
    ["naples", "Naples"],
    ["rome", "Rome"],
  ])("the %s chain (virtee/sev) verifies to the pinned ARK", async (gen, generation) => {
    const chain = sevLegacyChain(gen);
    expect(await verifySevChain(chain, NO_EXTRA)).toEqual({ generation, pdh: chain.sev.pdh });
  });

  it("the Milan chain of the kbs-types request verifies, as sent and as the separate files", async () => {
    const request = JSON.parse(readFileSync(resolve(DATA, "kbstypes-sev_request.json"), "utf8"));
    const { chain } = parseSevRequest(request["extra-params"]);
    expect((await verifySevChain(chain, NO_EXTRA)).generation).toBe("Milan");
    expect(await verifySevChain(sevLegacyChain("milan", "milan", "kbstypes-sev_request"), NO_EXTRA)).toEqual({ generation: "Milan", pdh: chain.sev.pdh });
  });

  it("the Naples chain also verifies with AMD's truncated (unsigned) Naples ARK", async () => {
    const chain = sevLegacyChain("naples");
    const ark = decodeCaCertificate(file("naples-ark-as-published-by-amd-missing-signature.cert"));
    expect((await verifySevChain({ ...chain, ca: { ...chain.ca, ark } }, NO_EXTRA)).generation).toBe("Naples");
  });

  it("the PEK's two signatures are found in either slot order", async () => {
    const chain = sevLegacyChain("rome");
    const pek = chain.sev.pek;
    const swapped = decodeSevCertificate(encodeSevCertificate({ ...pek, signatures: [pek.signatures[1], pek.signatures[0]] }));
    expect((await verifySevChain({ ...chain, sev: { ...chain.sev, pek: swapped } }, NO_EXTRA)).generation).toBe("Rome");
  });

  it.each(["rome", "milan"])("the Naples CEK does not verify under the %s ASK", async (gen) => {
    const chain = sevLegacyChain("naples");
    const mixed = { ...chain, ca: { ark: ca(gen, "ark"), ask: ca(gen, "ask") } };
    expect(await outcome(verifySevChain(mixed, NO_EXTRA))).toMatch(/^cert-chain-invalid: the CEK is not signed by the ASK: no signature slot has usage 0x13 and an RSA SHA-384/);
  });

  it("the Rome CEK does not verify under the Milan ASK (same algorithm, other key)", async () => {
    const chain = sevLegacyChain("rome");
    const mixed = { ...chain, ca: { ark: ca("milan", "ark"), ask: ca("milan", "ask") } };
    expect(await outcome(verifySevChain(mixed, NO_EXTRA))).toBe("cert-chain-invalid: the CEK is not signed by the ASK: the signature does not verify");
  });

  it.each([
    ["the OCA's signature on the PEK", "pek", SIG1 + 10, "cert-chain-invalid: the PEK is not signed by the OCA"],
    ["the CEK's signature on the PEK", "pek", SIG2 + 40, "cert-chain-invalid: the PEK is not signed by the CEK"],
    ["the PDH signature", "pdh", SIG1 + 5, "cert-chain-invalid: the PDH is not signed by the PEK"],
    // A changed coordinate is (almost surely) off the curve, which is checked before any signature.
    ["a PDH key byte", "pdh", 0x14, "cert-malformed: the PDH public key is not a point on P-384"],
    ["a PDH key field byte past the coordinate", "pdh", 0x14 + 60, "cert-chain-invalid: the PDH is not signed by the PEK"],
    ["a PDH reserved byte", "pdh", 0x200, "cert-chain-invalid: the PDH is not signed by the PEK"],
    ["the OCA self-signature", "oca", SIG1 + 71, "cert-chain-invalid: the OCA is not self-signed"],
    ["the CEK's ASK signature", "cek", SIG1 + 100, "cert-chain-invalid: the CEK is not signed by the ASK"],
  ] as const)("tampering with %s fails the link", async (_, role, offset, failure) => {
    expect(await outcome(verifySevChain(tamper(sevLegacyChain("milan", "milan", "kbstypes-sev_request"), role, offset), NO_EXTRA))).toMatch(failure);
  });

  it("a non-zero byte past the 2048-bit signature in the CEK's RSA slot (one LE integer) fails, as in sev", async () => {
    expect(await outcome(verifySevChain(sevLegacyChain("naples"), NO_EXTRA))).toBe("verified");
    expect(await outcome(verifySevChain(tamper(sevLegacyChain("naples"), "cek", SIG1 + 256), NO_EXTRA))).toBe("cert-chain-invalid: the CEK is not signed by the ASK: the signature does not verify");
  });

  it("an R or S wider than the curve never verifies", async () => {
    expect(await outcome(verifySevChain(tamper(sevLegacyChain("rome"), "pdh", SIG1 + 60), NO_EXTRA))).toBe("cert-chain-invalid: the PDH is not signed by the PEK: the signature does not verify");
  });

  it("a tampered ASK or ARK", async () => {
    const chain = sevLegacyChain("rome");
    const ask = decodeCaCertificate(flipped(chain.ca.ask.bytes, 0x40 + 600));
    expect(await outcome(verifySevChain({ ...chain, ca: { ...chain.ca, ask } }, NO_EXTRA))).toMatch(/^cert-chain-invalid: the ASK is not signed by the ARK: the signature does not verify/);
    // An altered ARK is no longer AMD's; listed by the operator, its broken self-signature shows.
    const ark = decodeCaCertificate(flipped(chain.ca.ark.bytes, 0x28));
    const altered = { ...chain, ca: { ...chain.ca, ark } };
    const untrusted = await outcome(verifySevChain(altered, NO_EXTRA));
    expect(untrusted).toMatch(/^cert-untrusted-root: the ARK \(SHA-256 [0-9a-f]{64}\) is neither AMD's for Naples, Rome, Milan, Genoa, Turin nor an operator-listed ARK$/);
    const listed = await sevTrustAnchors([ark.bytes]);
    expect(await outcome(verifySevChain(altered, listed))).toBe("cert-chain-invalid: the ARK is not self-signed: the signature does not verify");
  });

  it("certificates in the wrong roles", async () => {
    const chain = sevLegacyChain("rome");
    const swapped = { ...chain, sev: { ...chain.sev, pek: chain.sev.oca, oca: chain.sev.pek } };
    expect(await outcome(verifySevChain(swapped, NO_EXTRA))).toBe("cert-chain-invalid: the OCA certificate has usage 0x1002, expected 0x1001");
    const askAsArk = { ...chain, ca: { ark: chain.ca.ask, ask: chain.ca.ask } };
    expect(await outcome(verifySevChain(askAsArk, NO_EXTRA))).toMatch(/^cert-untrusted-root/);
    const pdhIsPek = { ...chain, sev: { ...chain.sev, pdh: decodeSevCertificate(encodeSevCertificate({ ...chain.sev.pek, usage: Usage.PDH })) } };
    expect(await outcome(verifySevChain(pdhIsPek, NO_EXTRA))).toBe("cert-chain-invalid: the PDH is not an ECDH P-384 key");
  });

  it("the firmware-exported chain (unsigned CEK) needs the AMD-signed CEK from KDS", async () => {
    const exported = file("unknown-gen-api1.51-pek-oca-cek-unsignedcek-naossevtool-cert_chain.cert");
    const unit = (i: number) => decodeSevCertificate(exported.subarray(i * 2084, (i + 1) * 2084));
    const [pek, oca, cek] = [unit(0), unit(1), unit(2)];
    const pdh = decodeSevCertificate(file("unknown-gen-api1.51-pdh-naossevtool.cert"));
    const chain = { ca: { ark: ca("milan", "ark"), ask: ca("milan", "ask") }, sev: { pdh, pek, oca, cek } };
    expect(await outcome(verifySevChain(chain, NO_EXTRA))).toBe("cert-chain-invalid: the CEK is not signed by the ASK: no signature slot has usage 0x13 and an RSA SHA-384 algorithm");
  });
});

describe("SEV chains: AMD CA pairs", () => {
  it.each(["naples", "rome", "milan", "genoa", "turin"])("the %s ARK is self-signed and signs its ASK", async (gen) => {
    await expect(verifyCaPair(ca(gen, "ark"), ca(gen, "ask"))).resolves.toBeUndefined();
  });

  it("pairs across generations, swapped roles and the unsigned Naples ARK fail", async () => {
    expect(await outcome(verifyCaPair(ca("genoa", "ark"), ca("turin", "ask")))).toMatch(/^cert-chain-invalid: the ASK is not signed by the ARK: its certifying id d05c3a8b\w+ is not the ARK's key id 9f9d4a8f/);
    expect(await outcome(verifyCaPair(ca("rome", "ark"), ca("naples", "ask")))).toMatch(/^cert-chain-invalid: the ASK is not signed by the ARK: its certifying id/);
    expect(await outcome(verifyCaPair(ca("rome", "ask"), ca("rome", "ask")))).toBe("cert-chain-invalid: the ARK certificate has usage 0x13, expected 0x0");
    const truncated = decodeCaCertificate(file("naples-ark-as-published-by-amd-missing-signature.cert"));
    expect(await outcome(verifyCaPair(truncated, ca("naples", "ask")))).toBe("cert-chain-invalid: the ARK is not self-signed: it carries no signature");
  });

  it("a 2048-bit ARK cannot sign a 4096-bit ASK even with matching ids", async () => {
    const naples = ca("naples", "ark");
    const rome = ca("rome", "ask");
    const forged: AmdCaCertificate = { ...rome, certifyingId: naples.keyId, bytes: encodeCaCertificate({ ...rome, certifyingId: naples.keyId }) };
    expect(await outcome(verifyCaPair(naples, forged))).toBe("cert-chain-invalid: the ASK is not signed by the ARK: a 2048-bit ARK does not sign 4096-bit certificates");
  });
});

describe("SEV chains: the per-isolate cache of verified chains", () => {
  afterEach(() => vi.restoreAllMocks());

  /** The number of signatures `f` has WebCrypto verify, and its outcome. */
  async function verifyCalls(f: () => Promise<unknown>): Promise<{ calls: number; result: string }> {
    const spy = vi.spyOn(crypto.subtle, "verify");
    try {
      const result = await outcome(f());
      return { calls: spy.mock.calls.length, result };
    } finally {
      spy.mockRestore();
    }
  }

  it("a second verification of the same chain verifies no signature, and returns the same answer", async () => {
    clearSevChainCaches();
    const chain = sevLegacyChain("milan", "milan", "kbstypes-sev_request");
    // Cold: ARK self-signature, ARK → ASK, ASK → CEK (RSA-PSS), OCA self, OCA → PEK, CEK → PEK, PEK → PDH (ECDSA).
    expect(await verifyCalls(() => verifySevChain(chain, NO_EXTRA))).toEqual({ calls: 7, result: "verified" });
    expect(await verifyCalls(() => verifySevChain(chain, NO_EXTRA))).toEqual({ calls: 0, result: "verified" });
    // A fresh decode of the same bytes is the same chain.
    const again = sevLegacyChain("milan", "milan", "kbstypes-sev_request");
    expect(await verifySevChain(again, NO_EXTRA)).toEqual({ generation: "Milan", pdh: again.sev.pdh });
    expect((await verifyCalls(() => verifySevChain(again, NO_EXTRA))).calls).toBe(0);
  });

  it("a new platform under an ARK and ASK verified before checks only its own links", async () => {
    clearSevChainCaches();
    const chain = sevLegacyChain("rome");
    expect(await verifyCalls(() => verifySevChain(chain, NO_EXTRA))).toEqual({ calls: 7, result: "verified" });
    clearSevChainCaches("chains");
    // ASK → CEK and the four ECDSA links; the ARK's self-signature and its signature on the ASK are not re-checked.
    expect(await verifyCalls(() => verifySevChain(chain, NO_EXTRA))).toEqual({ calls: 5, result: "verified" });
  });

  it("a chain differing in one byte is verified afresh (and a failing one never enters the cache)", async () => {
    clearSevChainCaches();
    const chain = sevLegacyChain("milan", "milan", "kbstypes-sev_request");
    await verifySevChain(chain, NO_EXTRA);
    const tampered = tamper(chain, "pdh", 0x200); // a reserved byte the PEK's signature covers
    expect(await sevChainHash(tampered)).not.toBe(await sevChainHash(chain));
    for (let i = 0; i < 2; i++) {
      const { calls, result } = await verifyCalls(() => verifySevChain(tampered, NO_EXTRA));
      expect(result).toBe("cert-chain-invalid: the PDH is not signed by the PEK: the signature does not verify");
      expect(calls).toBeGreaterThan(0);
    }
    // A different but valid encoding of the same platform (the PEK's slots swapped) is another chain, verified once.
    const pek = chain.sev.pek;
    const swapped = { ...chain, sev: { ...chain.sev, pek: decodeSevCertificate(encodeSevCertificate({ ...pek, signatures: [pek.signatures[1], pek.signatures[0]] })) } };
    expect((await verifyCalls(() => verifySevChain(swapped, NO_EXTRA))).calls).toBeGreaterThan(0);
    expect((await verifyCalls(() => verifySevChain(swapped, NO_EXTRA))).calls).toBe(0);
  });

  it("a cached chain whose ARK is no longer trusted is refused", async () => {
    clearSevChainCaches();
    // As a guest sends it (decoded from its bytes); the lab's hand-built objects carry short exponents, never cached.
    const lab0 = (await lab()).chain;
    const chain: SevChain = {
      ca: { ark: decodeCaCertificate(lab0.ca.ark.bytes), ask: decodeCaCertificate(lab0.ca.ask.bytes) },
      sev: { pdh: decodeSevCertificate(lab0.sev.pdh.bytes), pek: decodeSevCertificate(lab0.sev.pek.bytes), oca: decodeSevCertificate(lab0.sev.oca.bytes), cek: decodeSevCertificate(lab0.sev.cek.bytes) },
    };
    const listed = await sevTrustAnchors([chain.ca.ark.bytes]);
    expect((await verifySevChain(chain, listed)).generation).toBeNull();
    expect(await verifyCalls(() => verifySevChain(chain, NO_EXTRA))).toMatchObject({ calls: 0, result: expect.stringMatching(/^cert-untrusted-root: /) });
    // An AMD ARK unpinned (say, by a future release) is refused as well, though its chain was verified before.
    const rome = sevLegacyChain("rome");
    await verifySevChain(rome, NO_EXTRA);
    const withoutRome: SevTrustAnchors = { pinned: new Map([...PINNED_SEV_ARKS].filter(([, g]) => g !== "Rome")), extra: new Set() };
    expect(await outcome(verifySevChain(rome, withoutRome))).toMatch(/^cert-untrusted-root: /);
    // Trusted again: served from the cache.
    expect(await verifyCalls(() => verifySevChain(chain, listed))).toEqual({ calls: 0, result: "verified" });
  });

  it("a chain whose fields differ from its bytes is never served from the cache", async () => {
    clearSevChainCaches();
    const chain = sevLegacyChain("rome");
    await verifySevChain(chain, NO_EXTRA);
    const { pek } = chain.sev;
    if (pek.publicKey.kind !== "ec") throw new Error("the PEK is not EC");
    // Same bytes, another PEK key in the fields: the chain hash is the same, the answer must not be.
    const otherPek = { ...pek, publicKey: { ...pek.publicKey, x: chain.sev.oca.publicKey.kind === "ec" ? chain.sev.oca.publicKey.x : pek.publicKey.x } };
    const forged = { ...chain, sev: { ...chain.sev, pek: otherPek } };
    expect(await sevChainHash(forged)).toBe(await sevChainHash(chain));
    const { calls, result } = await verifyCalls(() => verifySevChain(forged, NO_EXTRA));
    expect(calls).toBeGreaterThan(0);
    expect(result).not.toBe("verified");
  });
});

describe("SEV chains: an operator's own platform (synthetic)", () => {
  it("verifies only when its ARK is listed, with generation null", async () => {
    const { chain } = await lab();
    expect(await outcome(verifySevChain(chain, NO_EXTRA))).toMatch(/^cert-untrusted-root: /);
    const anchors = await sevTrustAnchors([chain.ca.ark.bytes]);
    expect(await verifySevChain(chain, anchors)).toEqual({ generation: null, pdh: chain.sev.pdh });
  });
});

describe("SEV chains: the PDH point", () => {
  const { valid, invalid } = p384TestPoints();
  let platform: SevPlatform;
  let anchors: SevTrustAnchors;
  beforeAll(async () => {
    platform = await lab();
    anchors = await sevTrustAnchors([platform.chain.ca.ark.bytes]);
  });
  const withPdh = async (point: { x: Uint8Array; y: Uint8Array }): Promise<SevChain> => ({ ...platform.chain, sev: { ...platform.chain.sev, pdh: await platform.pdhFor(point) } });

  it.each(invalid)("a PDH at %s is refused by the chain verifier (signed by the PEK) and the launch session alike", async (_, point) => {
    const chain = await withPdh(point);
    const refusal = /^cert-malformed: the PDH public key is not a point on P-384: /;
    expect(await outcome(verifySevChain(chain, anchors))).toMatch(refusal);
    expect(await outcome(createLaunchSession(chain.sev.pdh, POLICY))).toMatch(refusal);
  });

  it("a valid point with a tiny x (whose x + p fits the field) verifies, and WebCrypto agrees it is on P-384", async () => {
    const chain = await withPdh(valid);
    expect((await verifySevChain(chain, anchors)).pdh).toBe(chain.sev.pdh);
    expect((await createLaunchSession(chain.sev.pdh, POLICY)).start.session.wrapTk).toHaveLength(32);
  });
});

describe("SEV chains: RSA keys (sev's sizes, typed errors for keys WebCrypto cannot use)", () => {
  let rsaOca: SevChain;
  let anchors: SevTrustAnchors;
  beforeAll(async () => {
    rsaOca = (await createSevPlatform({ ocaRsaBits: 2048 })).chain;
    anchors = await sevTrustAnchors([rsaOca.ca.ark.bytes]);
  });

  /** `chain` with the OCA's (RSA) modulus replaced; re-encoded, so it comes back as the decoder reads it. */
  const withOcaModulus = (chain: SevChain, modulus: Uint8Array): SevChain => {
    const { oca } = chain.sev;
    if (oca.publicKey.kind !== "rsa") throw new Error("the OCA is not RSA");
    return { ...chain, sev: { ...chain.sev, oca: decodeSevCertificate(encodeSevCertificate({ ...oca, publicKey: { ...oca.publicKey, modulus } })) } };
  };
  const modulusOf = (n: bigint) => fromHex(n.toString(16).padStart(2 * Math.ceil(n.toString(16).length / 2), "0"));

  it("an RSA-2048 OCA signs itself and the PEK (one LE integer per slot)", async () => {
    expect(rsaOca.sev.oca.publicKey).toMatchObject({ kind: "rsa", bits: 2048 });
    expect((await verifySevChain(rsaOca, anchors)).generation).toBeNull();
  });

  it.each([3072, 2056])("a %i-bit RSA platform key is refused when decoded", (bits) => {
    const bytes = Uint8Array.from(rsaOca.sev.oca.bytes);
    new DataView(bytes.buffer).setUint32(0x10, bits, true);
    expect(() => decodeSevCertificate(bytes, "OCA")).toThrow(expect.objectContaining({ code: "cert-malformed", message: `OCA: unsupported RSA modulus size ${bits} bits (2048 or 4096)` }));
  });

  it.each([
    [0n, 0],
    [1n, 1],
    [3n, 2],
    [2n ** 511n + 1n, 512],
  ])("an OCA, ASK or ARK whose 2048-bit field holds n = %s is a typed cert-malformed", async (n, bits) => {
    const modulus = modulusOf(n);
    expect(await outcome(verifySevChain(withOcaModulus(rsaOca, modulus), anchors))).toBe(`cert-malformed: the OCA RSA modulus has ${bits} bits, not the 2048 its certificate declares`);
    const ask = decodeCaCertificate(encodeCaCertificate({ ...rsaOca.ca.ask, modulus }));
    expect(await outcome(verifySevChain({ ...rsaOca, ca: { ...rsaOca.ca, ask } }, anchors))).toBe(`cert-malformed: the ASK RSA modulus has ${bits} bits, not the 2048 its certificate declares`);
    const ark = decodeCaCertificate(encodeCaCertificate({ ...rsaOca.ca.ark, modulus }));
    expect(await outcome(verifySevChain({ ...rsaOca, ca: { ...rsaOca.ca, ark } }, await sevTrustAnchors([ark.bytes])))).toBe(`cert-malformed: the ARK RSA modulus has ${bits} bits, not the 2048 its certificate declares`);
  });

  it("a key WebCrypto imports but cannot verify with (a 512-bit OCA, handed over undecoded) is a typed error, not a DOMException", async () => {
    const { oca } = rsaOca.sev;
    const slot = { ...oca.signatures[0], signature: concat(oca.signatures[0].signature.subarray(0, 64), new Uint8Array(448)) };
    const small = { ...oca, publicKey: { kind: "rsa" as const, bits: 512, exponent: Uint8Array.of(1, 0, 1), modulus: modulusOf(2n ** 511n + 1n) }, signatures: [slot, oca.signatures[1]] as typeof oca.signatures };
    expect(await outcome(verifySevChain({ ...rsaOca, sev: { ...rsaOca.sev, oca: small } }, anchors))).toBe("cert-malformed: the OCA public key cannot verify signatures (OperationError)");
  });

  it("a non-zero byte past the modulus in the OCA's RSA slot on the PEK fails the link", async () => {
    expect(await outcome(verifySevChain(tamper(rsaOca, "pek", SIG1 + 256), anchors))).toBe("cert-chain-invalid: the PEK is not signed by the OCA: the signature does not verify");
  });
});

describe("SEV chains: only AMD's published Naples ARK may lack its self-signature", () => {
  it("an unsigned lab ARK is refused by the verifier, even listed, and as an extra ARK", async () => {
    const { chain } = await lab();
    const unsigned = decodeCaCertificate(chain.ca.ark.bytes.subarray(0, 0x40 + 2 * 256));
    expect(unsigned.signature).toBeNull();
    const listed: SevTrustAnchors = { pinned: PINNED_SEV_ARKS, extra: new Set([await arkFingerprint(unsigned)]) };
    expect(await outcome(verifySevChain({ ...chain, ca: { ...chain.ca, ark: unsigned } }, listed))).toBe(
      "cert-chain-invalid: the ARK is not self-signed: it carries no signature, which only AMD's published Naples ARK may lack",
    );
    const thrown = await sevTrustAnchors([chain.ca.ark.bytes, unsigned.bytes]).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toBe("EXTRA_TRUSTED_ARKS: extra SEV ARK 2 has no self-signature; only AMD's published Naples ARK (pinned) may lack it");
  });

  it("AMD's 576-byte Naples file is that ARK, pinned by fingerprint", async () => {
    const truncated = decodeCaCertificate(file("naples-ark-as-published-by-amd-missing-signature.cert"));
    expect(await arkFingerprint(truncated)).toBe(NAPLES_ARK_AS_PUBLISHED);
  });
});

describe("EXTRA_TRUSTED_ARKS for SEV: every bad list is a ConfigError naming the variable", () => {
  const sevBlock = (body: string) => `-----BEGIN AMD SEV ARK-----\n${body}\n-----END AMD SEV ARK-----\n`;
  const milanX509 = fixture("amd-roots/canonical/milan-ark.der");

  it.each([
    ["an X.509 certificate in an AMD SEV ARK block", () => sevBlock(toBase64(milanX509)), "extra SEV ARK 1: version "],
    ["an ASK", () => sevArkPem(file("amd-ca-rome-ask.cert")), "extra SEV ARK 1 has usage 0x13, not ARK (0x0)"],
    ["a truncated ARK", () => sevBlock(toBase64(file("amd-ca-rome-ark.cert").subarray(0, 1000))), "extra SEV ARK 1: 1000 bytes; a 4096-bit certificate has 1600"],
    ["bad base64", () => sevBlock("AAA!"), "invalid base64"],
    ["an unterminated block", () => `${sevArkPem(file("amd-ca-rome-ark.cert"))}-----BEGIN AMD SEV ARK-----\nAAAA\n`, "a PEM block is not terminated by its END line"],
    ["an unknown label", () => "-----BEGIN SEV ARK-----\nAAAA\n-----END SEV ARK-----\n", 'unsupported block "SEV ARK"; use CERTIFICATE or AMD SEV ARK'],
  ])("%s", async (_, text, problem) => {
    const thrown = await operatorTrust(text()).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ConfigError);
    expect(thrown).toMatchObject({ variable: "EXTRA_TRUSTED_ARKS", problem: expect.stringContaining(problem) });
  });
});
