// A Trustee (Confidential Containers) SNP guest for the tests and the demo: the evidence JSON guest-components
// sends, its tee-pubkey pairs and the decryption of the JWE a resource comes in. serdeFromReport writes the report as
// virtee/sev serialises AttestationReport (with the mitigation vectors of its newest releases), from virtee's
// field list and synthetic-amd's offsets and deliberately without src/tee/snp/serde.ts, so a round trip
// cross-checks two readings of the form. WebCrypto and jose only: runs in workerd and in Node.

import { flattenedDecrypt } from "jose";
import { buf, concat, fromBase64Loose, utf8 } from "../src/crypto/bytes";
import type { FlattenedJwe, TeeJwk } from "../src/crypto/jwe";
import { pkcs1Decrypt, privateParts } from "./guest";
import { REPORT_OFFSETS as O, REPORT_SIZE } from "./synthetic-amd";

/**
 * The serde JSON of a report as guest-components sends it in `attestation_report`. Like virtee, v3+ reports
 * use the Turin TCB layout (with fmc) when CPUID family ≥ 0x1A, v2 reports when CHIP_ID's last 56 bytes are
 * zero; and like virtee it refuses a v2 report with a masked (all-zero) CHIP_ID.
 */
export function serdeFromReport(report: Uint8Array): Record<string, unknown> {
  if (report.length !== REPORT_SIZE) throw new RangeError(`a report is ${REPORT_SIZE} bytes, got ${report.length}`);
  const view = new DataView(report.buffer, report.byteOffset, report.byteLength);
  const u32 = (offset: number) => view.getUint32(offset, true);
  const u64 = (offset: number) => {
    const value = view.getBigUint64(offset, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64 at 0x${offset.toString(16)} does not fit a JSON number exactly`);
    return Number(value);
  };
  const bytes = (offset: number, length: number) => Array.from(report.subarray(offset, offset + length));
  const version = u32(O.version);
  const chipId = report.subarray(O.chipId, O.chipId + 64);
  if (version < 3 && chipId.every((b) => b === 0)) throw new RangeError("virtee refuses a v2 report with a masked CHIP_ID");
  const turin = version >= 3 ? report[O.cpuidFamily]! >= 0x1a : chipId.subarray(8).every((b) => b === 0);
  const tcb = (offset: number) => {
    const [b0, b1, b2, b3, , , b6, b7] = report.subarray(offset, offset + 8);
    return turin ? { fmc: b0, bootloader: b1, tee: b2, snp: b3, microcode: b7 } : { fmc: null, bootloader: b0, tee: b1, snp: b6, microcode: b7 };
  };
  const firmware = (offset: number) => ({ major: report[offset + 2], minor: report[offset + 1], build: report[offset] });
  const sinceVersion = <T>(v: number, value: () => T) => (version >= v ? value() : null);
  return {
    version,
    guest_svn: u32(O.guestSvn),
    policy: u64(O.policy),
    family_id: bytes(O.familyId, 16),
    image_id: bytes(O.imageId, 16),
    vmpl: u32(O.vmpl),
    sig_algo: u32(O.signatureAlgo),
    current_tcb: tcb(O.currentTcb),
    plat_info: u64(O.platformInfo),
    key_info: u32(O.signerInfo),
    report_data: bytes(O.reportData, 64),
    measurement: bytes(O.measurement, 48),
    host_data: bytes(O.hostData, 32),
    id_key_digest: bytes(O.idKeyDigest, 48),
    author_key_digest: bytes(O.authorKeyDigest, 48),
    report_id: bytes(O.reportId, 32),
    report_id_ma: bytes(O.reportIdMa, 32),
    reported_tcb: tcb(O.reportedTcb),
    cpuid_fam_id: sinceVersion(3, () => report[O.cpuidFamily]),
    cpuid_mod_id: sinceVersion(3, () => report[O.cpuidModel]),
    cpuid_step: sinceVersion(3, () => report[O.cpuidStepping]),
    chip_id: bytes(O.chipId, 64),
    committed_tcb: tcb(O.committedTcb),
    current: firmware(O.currentVersion),
    committed: firmware(O.committedVersion),
    launch_tcb: tcb(O.launchTcb),
    launch_mit_vector: sinceVersion(5, () => u64(O.launchMitVector)),
    current_mit_vector: sinceVersion(5, () => u64(O.currentMitVector)),
    signature: { r: bytes(O.signatureR, 72), s: bytes(O.signatureS, 72) },
  };
}

/** The serde `cert_chain`: virtee CertTableEntry {cert_type, data}, e.g. type "VCEK", "ASK", "ARK". */
export function serdeCertChain(ders: { type: string; der: Uint8Array }[]): { cert_type: string; data: number[] }[] {
  return ders.map(({ type, der }) => ({ cert_type: type, data: Array.from(der) }));
}

export type TeeKeyKind = "RSA-OAEP-256" | "RSA1_5" | "EC-P256" | "EC-P521";

/** A guest key pair and its public `tee-pubkey` JWK with exactly the members guest-components sends. */
export async function teeKeyPair(kind: TeeKeyKind): Promise<{ jwk: TeeJwk; privateKey: CryptoKey }> {
  if (kind === "EC-P256" || kind === "EC-P521") {
    const crv = kind === "EC-P256" ? "P-256" : "P-521";
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: crv }, false, ["deriveBits"])) as CryptoKeyPair;
    const { x, y } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
    return { jwk: { kty: "EC", alg: "ECDH-ES+A256KW", crv, x: x!, y: y! }, privateKey: pair.privateKey };
  }
  // WebCrypto has no PKCS#1 v1.5 encryption key type: an RSA-OAEP pair carries the RSA1_5 key material,
  // extractable so openJwe can decrypt by hand.
  const pair = (await crypto.subtle.generateKey(
    { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    kind === "RSA1_5",
    ["encrypt", "decrypt"],
  )) as CryptoKeyPair;
  const { n, e } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  return { jwk: { kty: "RSA", alg: kind, n: n!, e: e! }, privateKey: pair.privateKey };
}

/**
 * The plaintext of a resource JWE, as a guest opens it. jose decrypts RSA-OAEP-256 and ECDH-ES+A256KW
 * (nothing else is accepted); jose 6 has no RSA1_5 (WebCrypto lacks it), so that one is unwrapped by hand
 * and its A256GCM content opened per RFC 7516 §5.2 (AAD = the protected header's ASCII).
 */
export async function openJwe(jwe: FlattenedJwe, privateKey: CryptoKey): Promise<Uint8Array> {
  const header = JSON.parse(new TextDecoder().decode(fromBase64Loose(jwe.protected))) as { alg?: unknown; enc?: unknown };
  if (header.alg !== "RSA1_5") {
    const options = { keyManagementAlgorithms: ["RSA-OAEP-256", "ECDH-ES+A256KW"], contentEncryptionAlgorithms: ["A256GCM"] };
    return (await flattenedDecrypt(jwe, privateKey, options)).plaintext;
  }
  if (header.enc !== "A256GCM") throw new Error(`unexpected enc ${String(header.enc)}`);
  const cek = pkcs1Decrypt(privateParts((await crypto.subtle.exportKey("jwk", privateKey)) as JsonWebKey), fromBase64Loose(jwe.encrypted_key));
  if (cek.length !== 32) throw new Error(`A256GCM needs a 32-byte key, got ${cek.length}`);
  const key = await crypto.subtle.importKey("raw", buf(cek), "AES-GCM", false, ["decrypt"]);
  const sealed = concat(fromBase64Loose(jwe.ciphertext), fromBase64Loose(jwe.tag));
  const params = { name: "AES-GCM", iv: buf(fromBase64Loose(jwe.iv)), additionalData: buf(utf8(jwe.protected)) };
  return new Uint8Array(await crypto.subtle.decrypt(params, key, buf(sealed)));
}
