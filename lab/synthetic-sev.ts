// A synthetic legacy-SEV platform (ARK → ASK → CEK, OCA → PEK → PDH) whose PDH private key the test (or demo)
// holds, and a PSP emulator that does what the firmware does with the KBS's launch blob and secret.
// Certificates are built with the production encoders, whose byte layout the real-data tests pin;
// the PSP side computes its HMACs and AES itself so the flow is checked from the other end.
import { buf, concat, fromBase64Loose, fromHex, reversed } from "../src/crypto/bytes";
import { decodeSevCertificate, encodeCaCertificate, encodeSevCertificate } from "../src/tee/sev/certs";
import { sevChainToJson } from "../src/tee/sev/json";
import { ecdhWith, kdf } from "../src/tee/sev/launch";
import { modPow } from "./guest";
import { Algo, Usage, type AmdCaCertificate, type Build, type LaunchMeasurement, type SevCertificate, type SevChain, type SevPublicKey, type SevSignatureSlot } from "../src/tee/sev/types";

const EMPTY_SLOT = (): SevSignatureSlot => ({ usage: Usage.INVALID, algo: Algo.NONE, signature: new Uint8Array(512) });

/** Little-endian field of `size` bytes from a big-endian number. */
function le(bigEndian: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(reversed(bigEndian));
  return out;
}

async function rsaKeyPair(bits: 2048 | 4096): Promise<CryptoKeyPair> {
  const hash = bits === 2048 ? "SHA-256" : "SHA-384";
  return crypto.subtle.generateKey({ name: "RSA-PSS", modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash }, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

async function rsaPublic(key: CryptoKey): Promise<{ exponent: Uint8Array; modulus: Uint8Array }> {
  const jwk = (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey;
  return { exponent: fromBase64Loose(jwk.e!), modulus: fromBase64Loose(jwk.n!) };
}

async function ecPublic(key: CryptoKey): Promise<{ x: Uint8Array; y: Uint8Array }> {
  const jwk = (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey;
  return { x: fromBase64Loose(jwk.x!), y: fromBase64Loose(jwk.y!) };
}

async function caCertificate(bits: 2048 | 4096, usage: number, keyId: Uint8Array, certifyingId: Uint8Array, publicKey: CryptoKey, signer: CryptoKey): Promise<AmdCaCertificate> {
  const n = bits / 8;
  const unsigned = { version: 1 as const, keyId, certifyingId, usage, bits, ...(await rsaPublic(publicKey)), signature: new Uint8Array(n) };
  const body = encodeCaCertificate(unsigned).subarray(0, 0x40 + 2 * n);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "RSA-PSS", saltLength: bits === 2048 ? 32 : 48 }, signer, buf(body)));
  const cert = { ...unsigned, signature };
  return { ...cert, bytes: encodeCaCertificate(cert) };
}

/** A platform certificate over a public key, with the given signatures (filled slots first). */
async function sevCertificate(usage: number, algo: number, publicKey: SevPublicKey, sign: ((body: Uint8Array) => Promise<SevSignatureSlot>)[]): Promise<SevCertificate> {
  const unsigned = { version: 1 as const, apiMajor: 1, apiMinor: 49, usage, algo, publicKey, signatures: [EMPTY_SLOT(), EMPTY_SLOT()] as [SevSignatureSlot, SevSignatureSlot] };
  const body = encodeSevCertificate(unsigned).subarray(0, 0x414);
  const slots = await Promise.all(sign.map((s) => s(body)));
  const cert = { ...unsigned, signatures: [slots[0] ?? EMPTY_SLOT(), slots[1] ?? EMPTY_SLOT()] as [SevSignatureSlot, SevSignatureSlot] };
  return decodeSevCertificate(encodeSevCertificate(cert));
}

/** ECDSA P-384 with SHA-256 (the ECDSA_SHA256 code), R and S stored as 72-byte LE integers. */
function ecdsaSigner(usage: number, key: CryptoKey) {
  return async (body: Uint8Array): Promise<SevSignatureSlot> => {
    const rs = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, buf(body)));
    const signature = new Uint8Array(512);
    signature.set(le(rs.subarray(0, 48), 72), 0);
    signature.set(le(rs.subarray(48), 72), 72);
    return { usage, algo: Algo.ECDSA_SHA256, signature };
  };
}

/** RSA-PSS with the hash of the key size (SHA-256 for 2048 bits, SHA-384 for 4096), the LE integer zero-padded to the slot. */
function rsaSigner(usage: number, bits: 2048 | 4096, key: CryptoKey) {
  return async (body: Uint8Array): Promise<SevSignatureSlot> => {
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "RSA-PSS", saltLength: bits === 2048 ? 32 : 48 }, key, buf(body)));
    return { usage, algo: rsaAlgo(bits), signature: le(sig, 512) };
  };
}

const rsaAlgo = (bits: 2048 | 4096) => (bits === 2048 ? Algo.RSA_SHA256 : Algo.RSA_SHA384);

export interface SevPlatform {
  chain: SevChain;
  /** The PDH private key: what only the platform's PSP holds. */
  pdhPrivate: CryptoKey;
  /** A PDH certificate over another point (big-endian, 48 bytes each), duly signed by this platform's PEK. */
  pdhFor(point: { x: Uint8Array; y: Uint8Array }): Promise<SevCertificate>;
}

export interface SevPlatformOptions {
  /** ARK and ASK size: 2048 bits like Naples by default, which keeps key generation quick. */
  bits?: 2048 | 4096;
  /** An RSA OCA of this size (which the SEV API allows) instead of an ECDSA P-384 one. */
  ocaRsaBits?: 2048 | 4096;
}

/** A lab platform under its own ARK. */
export async function createSevPlatform(opts: SevPlatformOptions = {}): Promise<SevPlatform> {
  const { bits = 2048, ocaRsaBits } = opts;
  const ec = (usage: "sign" | "derive") =>
    crypto.subtle.generateKey(usage === "sign" ? { name: "ECDSA", namedCurve: "P-384" } : { name: "ECDH", namedCurve: "P-384" }, true, usage === "sign" ? ["sign", "verify"] : ["deriveBits"]) as Promise<CryptoKeyPair>;
  const [ark, ask, cek, oca, pek, pdh] = await Promise.all([rsaKeyPair(bits), rsaKeyPair(bits), ec("sign"), ocaRsaBits ? rsaKeyPair(ocaRsaBits) : ec("sign"), ec("sign"), ec("derive")]);
  const ecKey = async (key: CryptoKey): Promise<SevPublicKey> => ({ kind: "ec", curve: 2, ...(await ecPublic(key)) });
  const arkId = crypto.getRandomValues(new Uint8Array(16));
  const askId = crypto.getRandomValues(new Uint8Array(16));
  const arkCert = await caCertificate(bits, Usage.ARK, arkId, arkId, ark.publicKey, ark.privateKey);
  const askCert = await caCertificate(bits, Usage.ASK, askId, arkId, ask.publicKey, ark.privateKey);
  const cekCert = await sevCertificate(Usage.CEK, Algo.ECDSA_SHA256, await ecKey(cek.publicKey), [rsaSigner(Usage.ASK, bits, ask.privateKey)]);
  const [ocaCert, ocaSigns] = ocaRsaBits
    ? [await sevCertificate(Usage.OCA, rsaAlgo(ocaRsaBits), { kind: "rsa", bits: ocaRsaBits, ...(await rsaPublic(oca.publicKey)) }, [rsaSigner(Usage.OCA, ocaRsaBits, oca.privateKey)]), rsaSigner(Usage.OCA, ocaRsaBits, oca.privateKey)]
    : [await sevCertificate(Usage.OCA, Algo.ECDSA_SHA256, await ecKey(oca.publicKey), [ecdsaSigner(Usage.OCA, oca.privateKey)]), ecdsaSigner(Usage.OCA, oca.privateKey)];
  const pekCert = await sevCertificate(Usage.PEK, Algo.ECDSA_SHA256, await ecKey(pek.publicKey), [ocaSigns, ecdsaSigner(Usage.CEK, cek.privateKey)]);
  const pdhCert = (key: SevPublicKey) => sevCertificate(Usage.PDH, Algo.ECDH_SHA256, key, [ecdsaSigner(Usage.PEK, pek.privateKey)]);
  return {
    chain: { ca: { ark: arkCert, ask: askCert }, sev: { pdh: await pdhCert(await ecKey(pdh.publicKey)), pek: pekCert, oca: ocaCert, cek: cekCert } },
    pdhPrivate: pdh.privateKey,
    pdhFor: (point) => pdhCert({ kind: "ec", curve: 2, ...point }),
  };
}

// P-384 (FIPS 186-4 D.1.2.4), for points that are not on it.
const P = 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n;
const B = 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn;

/** The smallest x ≥ `from` with a point (x, y) on y² = x³ − 3x + b (P = 3 mod 4, so y = rhs^((P+1)/4)). */
function pointWithB(b: bigint, from: bigint): { x: bigint; y: bigint } {
  for (let x = from; ; x++) {
    const rhs = (((x * x - 3n) * x + b) % P + P) % P;
    const y = modPow(rhs, (P + 1n) / 4n, P);
    if ((y * y) % P === rhs) return { x, y };
  }
}

const be48 = (n: bigint) => fromHex(n.toString(16).padStart(96, "0"));

/**
 * Public points a PDH may not carry, each next to what makes it so, and a valid point with a tiny x (a
 * control: its x + p still fits the 48-byte field).
 */
export function p384TestPoints(): { valid: { x: Uint8Array; y: Uint8Array }; invalid: [string, { x: Uint8Array; y: Uint8Array }][] } {
  const small = pointWithB(B, 1n);
  const twist = pointWithB((B + 1n) % P, 1n);
  return {
    valid: { x: be48(small.x), y: be48(small.y) },
    invalid: [
      ["(0, 0)", { x: be48(0n), y: be48(0n) }],
      ["a point of the twisted curve b' = b + 1", { x: be48(twist.x), y: be48(twist.y) }],
      ["x = p", { x: be48(P), y: be48(small.y) }],
      ["x + p of a point on the curve", { x: be48(small.x + P), y: be48(small.y) }],
      ["y = p", { x: be48(small.x), y: be48(P) }],
    ],
  };
}

/** JSON-safe form for a vitest binding: the chain as the clients send it, plus the PDH private JWK. */
export interface SevPlatformTransfer {
  chain: ReturnType<typeof sevChainToJson>;
  pdhPrivate: JsonWebKey;
}

export async function exportSevPlatform(p: SevPlatform): Promise<SevPlatformTransfer> {
  return { chain: sevChainToJson(p.chain), pdhPrivate: (await crypto.subtle.exportKey("jwk", p.pdhPrivate)) as JsonWebKey };
}

export async function importPdhPrivate(t: SevPlatformTransfer): Promise<CryptoKey> {
  return crypto.subtle.importKey("jwk", t.pdhPrivate, { name: "ECDH", namedCurve: "P-384" }, false, ["deriveBits"]);
}

async function hmac(key: Uint8Array, ...data: Uint8Array[]): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", buf(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, buf(concat(...data))));
}

async function aesCtr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", buf(key), "AES-CTR", false, ["decrypt"]);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CTR", counter: buf(iv), length: 128 }, k, buf(data)));
}

function u32le(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The parsed `start` of a SevChallenge, as LAUNCH_START receives it. */
export interface StartJson {
  policy: { flags: { bits: number }; minfw: { major: number; minor: number } };
  cert: number[];
  session: { nonce: number[]; wrap_tk: number[]; wrap_iv: number[]; wrap_mac: number[]; policy_mac: number[] };
}

export interface LaunchedGuest {
  tek: Uint8Array;
  tik: Uint8Array;
  policy4: Uint8Array;
}

/** LAUNCH_START: derive the shared secret with the owner's DH cert, check wrap_mac and policy_mac, unwrap TEK/TIK. */
export async function pspLaunchStart(pdhPrivate: CryptoKey, start: StartJson): Promise<LaunchedGuest> {
  const owner = decodeSevCertificate(Uint8Array.from(start.cert));
  if (owner.publicKey.kind !== "ec") throw new Error("owner cert is not EC");
  const ownerKey = await crypto.subtle.importKey("raw", buf(concat(Uint8Array.of(4), owner.publicKey.x, owner.publicKey.y)), { name: "ECDH", namedCurve: "P-384" }, false, []);
  const z = new Uint8Array(await crypto.subtle.deriveBits(ecdhWith(ownerKey), pdhPrivate, 384));
  const s = start.session;
  const master = await kdf(z, 16, Uint8Array.from(s.nonce), "sev-master-secret");
  const [kek, kik] = await Promise.all([kdf(master, 16, new Uint8Array(0), "sev-kek"), kdf(master, 16, new Uint8Array(0), "sev-kik")]);
  const wrapTk = Uint8Array.from(s.wrap_tk);
  if (!bytesEqual(await hmac(kik, wrapTk), Uint8Array.from(s.wrap_mac))) throw new Error("PSP: wrap_mac does not verify");
  const tk = await aesCtr(kek, Uint8Array.from(s.wrap_iv), wrapTk);
  const flags = start.policy.flags.bits;
  const policy4 = Uint8Array.of(flags & 0xff, flags >> 8, start.policy.minfw.major, start.policy.minfw.minor);
  const tik = tk.subarray(16);
  if (!bytesEqual(await hmac(tik, policy4), Uint8Array.from(s.policy_mac))) throw new Error("PSP: policy_mac does not verify");
  return { tek: tk.subarray(0, 16), tik, policy4 };
}

/** LAUNCH_MEASURE over the guest's launch digest. */
export async function pspMeasure(guest: LaunchedGuest, build: Build, digest: Uint8Array, mnonce = crypto.getRandomValues(new Uint8Array(16))): Promise<LaunchMeasurement> {
  const measure = await hmac(guest.tik, Uint8Array.of(0x04, build.version.major, build.version.minor, build.build), guest.policy4, digest, mnonce);
  return { measure, mnonce };
}

/** LAUNCH_SECRET: authenticate the packet against this launch's measure, then decrypt it. */
export async function pspInjectSecret(guest: LaunchedGuest, measure: Uint8Array, packet: { ciphertext: number[]; header: { flags: { bits: number }; iv: number[]; mac: number[] } }): Promise<Uint8Array> {
  const ct = Uint8Array.from(packet.ciphertext);
  const iv = Uint8Array.from(packet.header.iv);
  const mac = await hmac(guest.tik, Uint8Array.of(0x01), u32le(packet.header.flags.bits), iv, u32le(ct.length), u32le(ct.length), ct, measure);
  if (!bytesEqual(mac, Uint8Array.from(packet.header.mac))) throw new Error("PSP: secret packet MAC does not verify");
  return aesCtr(guest.tek, iv, ct);
}
