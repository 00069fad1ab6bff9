// Benchmark (Node): the work each protocol adds around the shared SNP verification, per request, in one run:
// reference-kbs binds REPORT_DATA with SHA-512 and seals the secret with RSA PKCS#1 v1.5; Trustee 0.4.0 binds
// with JCS + SHA-384, signs an ES256 token, and seals a JWE whose cost depends on the guest's key.
// CPU per request inside workerd (verification included) is measured separately (issue 14).
import { parseRsaPublicKey, rsaPkcs1Encrypt } from "../src/crypto/rsa";
import { encryptJwe } from "../src/crypto/jwe";
import { loadTokenKey, signAttestationToken } from "../src/trustee/token";
import { trusteeReportData } from "../src/trustee/runtime-data";
import { bindingOf, guestKey } from "../lab/guest";
import { teeKeyPair, type TeeKeyKind } from "../lab/trustee-guest";
import { runIfMain, sample, stats, type Section } from "./report";

const N = 200;
const ROUNDS = 5;

/** Median (p10–p90 over all samples) of ROUNDS × N calls. */
async function timed(f: () => Promise<unknown>): Promise<string> {
  const all: number[] = [];
  for (let r = 0; r < ROUNDS; r++) all.push(...(await sample(f, N, r === 0 ? 20 : 0)));
  const s = stats(all);
  return `${s.median.toFixed(3)} ms (p10–p90 ${s.p10.toFixed(3)}–${s.p90.toFixed(3)})`;
}

export async function measure(): Promise<Section> {
  const secret = new TextEncoder().encode("correct horse battery staple");
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  const legacyKey = await guestKey();
  const rsa = parseRsaPublicKey(legacyKey.kMod, legacyKey.kExp);
  const signing = (await crypto.subtle.exportKey("jwk", ((await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as CryptoKeyPair).privateKey)) as JsonWebKey;
  const tokenKey = await loadTokenKey(JSON.stringify({ ...signing, kid: "bench" }));
  const result = { issuedAt: new Date(), expiresAt: Date.now() + 300_000, workloadId: "bench", generation: 1, session: "ab".repeat(32), annotatedEvidence: { snp: { measurement: "00".repeat(48) } } };

  const rows: Section["rows"] = [
    { name: "legacy /attest: SHA-512 binding", value: await timed(() => bindingOf(nonce, legacyKey)) },
    { name: "legacy /key: RSA-2048 PKCS#1 v1.5", value: await timed(async () => rsaPkcs1Encrypt(rsa, secret)) },
  ];
  const ec = await teeKeyPair("EC-P256");
  rows.push({ name: "trustee /attest: JCS + SHA-384 binding", value: await timed(async () => trusteeReportData({ nonce, "tee-pubkey": ec.jwk }, "")) });
  rows.push({ name: "trustee /attest: ES256 token", value: await timed(() => signAttestationToken(tokenKey, result)) });
  for (const kind of ["EC-P256", "EC-P521", "RSA-OAEP-256", "RSA1_5"] as TeeKeyKind[]) {
    const { jwk } = await teeKeyPair(kind);
    rows.push({ name: `trustee /resource: JWE ${kind}`, value: await timed(() => encryptJwe(jwk, secret)) });
  }
  return {
    title: "Protocol work per request (Node)",
    method: `The work each protocol adds around the shared SNP verification, per request: median and p10–p90 over ${ROUNDS} rounds × ${N} calls. CPU per request inside workerd (verification included) is measured separately.`,
    rows,
  };
}

runIfMain(import.meta.url, measure);
