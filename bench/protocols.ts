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

const N = 200;

async function median(f: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(N / 2)]!;
}

const secret = new TextEncoder().encode("correct horse battery staple");
const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
const legacyKey = await guestKey();
const rsa = parseRsaPublicKey(legacyKey.kMod, legacyKey.kExp);
const signing = (await crypto.subtle.exportKey("jwk", ((await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as CryptoKeyPair).privateKey)) as JsonWebKey;
const tokenKey = await loadTokenKey(JSON.stringify({ ...signing, kid: "bench" }));
const result = { issuedAt: new Date(), expiresAt: Date.now() + 300_000, workloadId: "bench", generation: 1, session: "ab".repeat(32), annotatedEvidence: { snp: { measurement: "00".repeat(48) } } };

const rows: [string, number][] = [
  ["legacy /attest: SHA-512 binding", await median(() => bindingOf(nonce, legacyKey))],
  ["legacy /key: RSA-2048 PKCS#1 v1.5", await median(() => rsaPkcs1Encrypt(rsa, secret))],
];
const ec = await teeKeyPair("EC-P256");
rows.push(["trustee /attest: JCS + SHA-384 binding", await median(() => trusteeReportData({ nonce, "tee-pubkey": ec.jwk }, ""))]);
rows.push(["trustee /attest: ES256 token", await median(() => signAttestationToken(tokenKey, result))]);
for (const kind of ["EC-P256", "EC-P521", "RSA-OAEP-256", "RSA1_5"] as TeeKeyKind[]) {
  const { jwk } = await teeKeyPair(kind);
  rows.push([`trustee /resource: JWE ${kind}`, await median(() => encryptJwe(jwk, secret))]);
}
console.log(`protocol work per request, median of ${N} (ms)`);
for (const [name, ms] of rows) console.log(`${name.padEnd(44)} ${ms.toFixed(3)}`);
