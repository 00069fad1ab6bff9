// Chain verification for a legacy SEV platform (docs/sev-legacy.md §Chain): ARK → ASK → CEK → PEK ← OCA,
// PEK → PDH. Unlike sev/reference-kbs, the ARK must be AMD's (pinned) or listed by the operator.

import { buf, equalBytes, isAllZero, reversed, toBase64Url, toHex } from "../../crypto/bytes";
import { algoHash, caSignedSize, isEcdhAlgo, keyKind, SEV_SIGNED_SIZE, signatureKind, type Hash } from "./certs";
import { arkFingerprint } from "./trust";
import { SevError, Usage, type AmdCaCertificate, type Generation, type SevCertificate, type SevChain, type SevTrustAnchors } from "./types";

const caHash = (bits: number): Hash => (bits === 2048 ? "SHA-256" : "SHA-384");
const saltLength = (hash: Hash) => (hash === "SHA-256" ? 32 : 48);
const hex = (n: number) => `0x${n.toString(16)}`;

/** A certificate in its role as signer: the key is imported once, on first use, and shared by its links. */
interface Signer {
  name: string;
  usage: number;
  kind: "rsa" | "ec";
  hash: Hash;
  /** Bytes of an RSA signature, or of one ECDSA coordinate. */
  size: number;
  key: () => Promise<CryptoKey>;
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function rsaSigner(name: string, usage: number, hash: Hash, modulus: Uint8Array, exponent: Uint8Array): Signer {
  const jwk = { kty: "RSA", n: toBase64Url(stripZeros(modulus)), e: toBase64Url(stripZeros(exponent)) };
  const key = once(() =>
    crypto.subtle.importKey("jwk", jwk, { name: "RSA-PSS", hash }, false, ["verify"]).catch(() => {
      throw new SevError("cert-malformed", `the ${name} public key is not a usable RSA key`);
    }),
  );
  return { name, usage, kind: "rsa", hash, size: modulus.length, key };
}

function caSigner(name: string, cert: AmdCaCertificate): Signer {
  return rsaSigner(name, cert.usage, caHash(cert.bits), cert.modulus, cert.exponent);
}

function sevSigner(name: string, cert: SevCertificate): Signer {
  const pk = cert.publicKey;
  const hash = algoHash(cert.algo);
  if (pk.kind === "rsa") return rsaSigner(name, cert.usage, hash, pk.modulus, pk.exponent);
  const crv = pk.curve === 2 ? "P-384" : "P-256";
  const jwk = { kty: "EC", crv, x: toBase64Url(pk.x), y: toBase64Url(pk.y) };
  const key = once(() =>
    crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: crv }, false, ["verify"]).catch(() => {
      throw new SevError("cert-malformed", `the ${name} public key is not a point on ${crv}`);
    }),
  );
  return { name, usage: cert.usage, kind: "ec", hash, size: pk.x.length, key };
}

/** A 512-byte LE slot as WebCrypto wants it, or null when the value cannot be a signature of this key. */
function slotSignature(signer: Signer, slot: Uint8Array): Uint8Array | null {
  if (signer.kind === "rsa") return reversed(slot.subarray(0, signer.size));
  // ECDSA R and S are 72-byte LE integers; one wider than the curve can never verify.
  const r = slot.subarray(0, 72);
  const s = slot.subarray(72, 144);
  if (!isAllZero(r.subarray(signer.size)) || !isAllZero(s.subarray(signer.size))) return null;
  const out = new Uint8Array(2 * signer.size);
  out.set(reversed(r.subarray(0, signer.size)), 0);
  out.set(reversed(s.subarray(0, signer.size)), signer.size);
  return out;
}

async function verifies(signer: Signer, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  const params = signer.kind === "rsa" ? { name: "RSA-PSS", saltLength: saltLength(signer.hash) } : { name: "ECDSA", hash: signer.hash };
  return crypto.subtle.verify(params, await signer.key(), buf(signature), buf(data));
}

/** Why `signee` (a CA certificate) is not signed by the CA `signer`, or null when it is (docs/sev-legacy.md §AMD CA certificate). */
async function caSigned(signer: Signer, signerCert: AmdCaCertificate, signee: AmdCaCertificate): Promise<string | null> {
  if (signerCert.usage !== Usage.ARK) return `the ${signer.name} has usage ${hex(signerCert.usage)}, not ARK`;
  if (!equalBytes(signee.certifyingId, signerCert.keyId)) {
    return `its certifying id ${toHex(signee.certifyingId)} is not the ${signer.name}'s key id ${toHex(signerCert.keyId)}`;
  }
  if (caHash(signee.bits) !== signer.hash) return `a ${signerCert.bits}-bit ${signer.name} does not sign ${signee.bits}-bit certificates`;
  if (!signee.signature) return "it carries no signature";
  return (await verifies(signer, signee.signature, signee.bytes.subarray(0, caSignedSize(signee.bits)))) ? null : "the signature does not verify";
}

/**
 * Why `signee` is not signed by `signer`, or null when it is. A slot counts when its usage is the
 * signer's, its algorithm is of the signer's key type and names the signer's hash, and it verifies.
 */
async function sevSigned(signer: Signer, signee: SevCertificate): Promise<string | null> {
  const slots = signee.signatures.filter((s) => s.usage === signer.usage && signatureKind(s.algo) === signer.kind && algoHash(s.algo) === signer.hash);
  if (slots.length === 0) return `no signature slot has usage ${hex(signer.usage)} and an ${signer.kind.toUpperCase()} ${signer.hash} algorithm`;
  const data = signee.bytes.subarray(0, SEV_SIGNED_SIZE);
  const results = await Promise.all(
    slots.map((s) => {
      const sig = slotSignature(signer, s.signature);
      return sig ? verifies(signer, sig, data) : false;
    }),
  );
  return results.includes(true) ? null : "the signature does not verify";
}

/** One link of the chain: the error it raises, and why it failed (null = verified). */
type Link = [failure: string, reason: Promise<string | null>];

/** Waits for every link (they run concurrently) and raises the first failure in chain order. */
async function firstFailure(links: Link[]): Promise<void> {
  const results = await Promise.allSettled(links.map(([, reason]) => reason));
  for (const [i, r] of results.entries()) {
    if (r.status === "rejected") throw r.reason;
    if (r.value !== null) throw new SevError("cert-chain-invalid", `${links[i]![0]}: ${r.value}`);
  }
}

function expectUsage(name: string, cert: { usage: number }, usage: number): void {
  if (cert.usage !== usage) throw new SevError("cert-chain-invalid", `the ${name} certificate has usage ${hex(cert.usage)}, expected ${hex(usage)}`);
}

function caLinks(ark: AmdCaCertificate, ask: AmdCaCertificate, arkSelfSigned: boolean): { links: Link[]; askSigner: Signer } {
  const arkSigner = caSigner("ARK", ark);
  const links: Link[] = [];
  if (arkSelfSigned) links.push(["the ARK is not self-signed", caSigned(arkSigner, ark, ark)]);
  links.push(["the ASK is not signed by the ARK", caSigned(arkSigner, ark, ask)]);
  return { links, askSigner: caSigner("ASK", ask) };
}

/** An AMD CA pair on its own: the ARK is self-signed and signs the ASK (no trust decision). */
export async function verifyCaPair(ark: AmdCaCertificate, ask: AmdCaCertificate): Promise<void> {
  expectUsage("ARK", ark, Usage.ARK);
  expectUsage("ASK", ask, Usage.ASK);
  await firstFailure(caLinks(ark, ask, true).links);
}

/**
 * Verifies the platform's chain to a trusted ARK and returns its PDH and generation (null for an
 * operator-listed ARK). All signatures are checked concurrently once the ARK is trusted; the error
 * names the first failing link in chain order.
 */
export async function verifySevChain(chain: SevChain, trust: SevTrustAnchors): Promise<{ generation: Generation | null; pdh: SevCertificate }> {
  const { ark, ask } = chain.ca;
  const { pdh, pek, oca, cek } = chain.sev;

  const fingerprint = await arkFingerprint(ark);
  const generation = trust.pinned.get(fingerprint) ?? null;
  if (generation === null && !trust.extra.has(fingerprint)) {
    const supported = [...new Set(trust.pinned.values())].join(", ");
    throw new SevError("cert-untrusted-root", `the ARK (SHA-256 ${fingerprint}) is neither AMD's for ${supported} nor an operator-listed ARK`);
  }

  expectUsage("ASK", ask, Usage.ASK);
  expectUsage("CEK", cek, Usage.CEK);
  expectUsage("OCA", oca, Usage.OCA);
  expectUsage("PEK", pek, Usage.PEK);
  expectUsage("PDH", pdh, Usage.PDH);
  if (pdh.publicKey.kind !== "ec" || pdh.publicKey.curve !== 2 || !isEcdhAlgo(pdh.algo)) {
    throw new SevError("cert-chain-invalid", "the PDH is not an ECDH P-384 key");
  }
  for (const [name, cert] of [["CEK", cek], ["OCA", oca], ["PEK", pek]] as const) {
    if (keyKind(cert.algo) === null || isEcdhAlgo(cert.algo)) throw new SevError("cert-chain-invalid", `the ${name} key is not a signing key`);
  }

  // AMD's published Naples ARK lacks its self-signature; the root is trusted by its listed hash
  // anyway, and the self-signature adds nothing to a root pinned byte for byte.
  const { links, askSigner } = caLinks(ark, ask, ark.signature !== null);
  const ocaSigner = sevSigner("OCA", oca);
  const cekSigner = sevSigner("CEK", cek);
  await firstFailure([
    ...links,
    ["the CEK is not signed by the ASK", sevSigned(askSigner, cek)],
    ["the OCA is not self-signed", sevSigned(ocaSigner, oca)],
    ["the PEK is not signed by the OCA", sevSigned(ocaSigner, pek)],
    ["the PEK is not signed by the CEK", sevSigned(cekSigner, pek)],
    ["the PDH is not signed by the PEK", sevSigned(sevSigner("PEK", pek), pdh)],
  ]);
  return { generation, pdh };
}
