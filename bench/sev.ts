// Benchmark (Node): the SEV /auth work — chain verification (verifySevChain) and the launch session
// (createLaunchSession: ECDH, KDF, wrapping TEK/TIK) — beside its own crypto floor measured in the same run,
// on AMD's real Naples, Rome and Milan chains (test/fixtures/sev-legacy, see test/fixtures/MANIFEST.md).
// Run alone with `tsx bench/sev.ts`; bench/run.ts imports `measure`.
import { buf, concat, reversed, sha256, toBase64Url } from "../src/crypto/bytes";
import { caCanonicalBytes, caSignedSize, SEV_SIGNED_SIZE } from "../src/tee/sev/certs";
import { clearSevChainCaches, verifySevChain } from "../src/tee/sev/chain";
import { createLaunchSession, ecdhWith, kdf } from "../src/tee/sev/launch";
import { PINNED_SEV_ARKS } from "../src/tee/sev/trust";
import type { AmdCaCertificate, SevCertificate, SevChain, SevPolicy, SevTrustAnchors } from "../src/tee/sev/types";
import { sevLegacyChain } from "../test/helpers/fixtures";
import { median, ms, runIfMain, stats, type Row, type Section } from "./report";

const N = 200;
const TARGET = 1.5;
const TRUST: SevTrustAnchors = { pinned: PINNED_SEV_ARKS, extra: new Set() };
const POLICY: SevPolicy = { flags: 0x03, minfw: { major: 0, minor: 0 } };

const CHAINS = [
  { name: "Naples", chain: sevLegacyChain("naples") },
  { name: "Rome", chain: sevLegacyChain("rome") },
  { name: "Milan", chain: sevLegacyChain("milan", "milan", "kbstypes-sev_request") },
];

// ---- The crypto floor: the same WebCrypto operations the /auth path cannot avoid, called directly. ----

const caHash = (bits: number) => (bits === 2048 ? "SHA-256" : "SHA-384");
const strip = (b: Uint8Array) => b.subarray(b.findIndex((x) => x !== 0));

function rsaKey(cert: { modulus: Uint8Array; exponent: Uint8Array }, hash: string): Promise<CryptoKey> {
  const jwk = { kty: "RSA", n: toBase64Url(strip(cert.modulus)), e: toBase64Url(strip(cert.exponent)) };
  return crypto.subtle.importKey("jwk", jwk, { name: "RSA-PSS", hash }, false, ["verify"]);
}

function ecKey(cert: SevCertificate): Promise<CryptoKey> {
  const pk = cert.publicKey;
  if (pk.kind !== "ec") throw new Error("not an EC key");
  return crypto.subtle.importKey("raw", buf(concat(Uint8Array.of(4), pk.x, pk.y)), { name: "ECDSA", namedCurve: "P-384" }, false, ["verify"]);
}

function ecSig(slot: Uint8Array): Uint8Array<ArrayBuffer> {
  return buf(concat(reversed(slot.subarray(0, 48)), reversed(slot.subarray(72, 120))));
}

/** One verification job of the chain: key (or its import), signature, signed bytes. */
interface Job {
  rsa: boolean;
  hash: string;
  key: () => Promise<CryptoKey>;
  sig: Uint8Array<ArrayBuffer>;
  data: Uint8Array<ArrayBuffer>;
}

/** Every signature verifySevChain checks on a cold isolate, exactly: the CA links (RSA-PSS) and the four platform links (ECDSA). */
function jobsOf(chain: SevChain): { rsa: Job[]; ec: Job[] } {
  const { ark, ask } = chain.ca;
  const { cek, oca, pek, pdh } = chain.sev;
  const caJob = (signer: AmdCaCertificate, signee: AmdCaCertificate): Job => ({
    rsa: true,
    hash: caHash(signer.bits),
    key: () => rsaKey(signer, caHash(signer.bits)),
    sig: buf(signee.signature!),
    data: buf(signee.bytes.subarray(0, caSignedSize(signee.bits))),
  });
  const rsa = [caJob(ark, ask)];
  if (ark.signature) rsa.unshift(caJob(ark, ark));
  const cekSlot = cek.signatures.find((s) => s.usage === 0x13)!;
  const n = ask.bits / 8;
  rsa.push({ rsa: true, hash: caHash(ask.bits), key: () => rsaKey(ask, caHash(ask.bits)), sig: buf(reversed(cekSlot.signature.subarray(0, n))), data: buf(cek.bytes.subarray(0, SEV_SIGNED_SIZE)) });
  const slot = (c: SevCertificate, usage: number) => ecSig(c.signatures.find((s) => s.usage === usage)!.signature);
  const ecJob = (signer: SevCertificate, signee: SevCertificate, usage: number): Job => ({
    rsa: false,
    hash: "SHA-256",
    key: () => ecKey(signer),
    sig: slot(signee, usage),
    data: buf(signee.bytes.subarray(0, SEV_SIGNED_SIZE)),
  });
  const ec = [ecJob(oca, oca, 0x1001), ecJob(oca, pek, 0x1001), ecJob(cek, pek, 0x1004), ecJob(pek, pdh, 0x1002)];
  return { rsa, ec };
}

async function verifyAll(jobs: Job[], keys: CryptoKey[]): Promise<void> {
  const ok = await Promise.all(
    jobs.map((j, i) => crypto.subtle.verify(j.rsa ? { name: "RSA-PSS", saltLength: j.hash === "SHA-256" ? 32 : 48 } : { name: "ECDSA", hash: j.hash }, keys[i]!, j.sig, j.data)),
  );
  if (ok.includes(false)) throw new Error("floor: a signature does not verify");
}

/** ECDH with the PDH: a fresh P-384 key pair and the shared secret (the PDH key already imported). */
async function ecdh(pdhKey: CryptoKey): Promise<Uint8Array> {
  const owner = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-384" }, false, ["deriveBits"])) as CryptoKeyPair;
  return new Uint8Array(await crypto.subtle.deriveBits(ecdhWith(pdhKey), owner.privateKey, 384));
}

/** sev's KDF as /auth runs it: the master secret from Z, then KEK and KIK from the master secret. */
async function kdfs(z: Uint8Array, nonce: Uint8Array): Promise<void> {
  const master = await kdf(z, 16, nonce, "sev-master-secret");
  await Promise.all([kdf(master, 16, new Uint8Array(0), "sev-kek"), kdf(master, 16, new Uint8Array(0), "sev-kik")]);
}

/** Runs every function once per round, N rounds after 20 untimed ones; wall and process CPU time (all threads) per call, ms. */
async function interleaved<K extends string>(fs: Record<K, () => Promise<unknown>>): Promise<Record<K, { wall: number[]; cpu: number[] }>> {
  const keys = Object.keys(fs) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, { wall: [] as number[], cpu: [] as number[] }])) as Record<K, { wall: number[]; cpu: number[] }>;
  for (let round = -20; round < N; round++) {
    for (const k of keys) {
      const c = process.cpuUsage();
      const w = performance.now();
      await fs[k]();
      const wall = performance.now() - w;
      const { user, system } = process.cpuUsage(c);
      if (round >= 0) {
        out[k].wall.push(wall);
        out[k].cpu.push((user + system) / 1000);
      }
    }
  }
  return out;
}

const spread = (samples: number[]) => {
  const s = stats(samples);
  return `p10–p90 ${s.p10.toFixed(3)}–${s.p90.toFixed(3)}`;
};

export async function measure(): Promise<Section> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const nonce = new Uint8Array(16);

  // The very first /auth of the process (JIT, WebCrypto and module initialisation included), Milan: one sample.
  const first = performance.now();
  const { pdh } = await verifySevChain(CHAINS[2]!.chain, TRUST);
  await createLaunchSession(pdh, POLICY);
  const firstMs = performance.now() - first;

  for (const { name, chain } of CHAINS) {
    const jobs = jobsOf(chain);
    const pdhPk = chain.sev.pdh.publicKey as { x: Uint8Array; y: Uint8Array };
    const pdhRaw = buf(concat(Uint8Array.of(4), pdhPk.x, pdhPk.y));
    const pdhKey = await crypto.subtle.importKey("raw", pdhRaw, { name: "ECDH", namedCurve: "P-384" }, false, []);
    const ecKeys = await Promise.all(jobs.ec.map((j) => j.key()));

    // Floor A (issue 14's definition): the 4 ECDSA verifies (keys imported), one ECDH, the KDF.
    const floorA = async () => {
      await verifyAll(jobs.ec, ecKeys);
      await kdfs(await ecdh(pdhKey), nonce);
    };
    // Floor B: everything a cold isolate's /auth must do in WebCrypto — floor A plus the RSA-PSS verifies of the
    // CA links, every key import (ARK, ASK, OCA, CEK, PEK, PDH), the two SHA-256 digests (ARK fingerprint, chain
    // hash), the TEK/TIK wrap (AES-128-CTR and two HMACs) and the owner key export.
    const arkBytes = caCanonicalBytes(chain.ca.ark);
    const floorB = async () => {
      // Each distinct key imported once: ARK and ASK (RSA), OCA, CEK and PEK (ECDSA), the PDH (ECDH).
      const [[ark, ask], [oca, cek, pek], pk] = await Promise.all([
        Promise.all([rsaKey(chain.ca.ark, caHash(chain.ca.ark.bits)), rsaKey(chain.ca.ask, caHash(chain.ca.ask.bits))]),
        Promise.all([ecKey(chain.sev.oca), ecKey(chain.sev.cek), ecKey(chain.sev.pek)]),
        crypto.subtle.importKey("raw", pdhRaw, { name: "ECDH", namedCurve: "P-384" }, false, []),
        sha256(arkBytes),
        sha256(new Uint8Array(12_000)),
      ]);
      const rsaK = chain.ca.ark.signature ? [ark!, ark!, ask!] : [ark!, ask!];
      await Promise.all([verifyAll(jobs.rsa, rsaK), verifyAll(jobs.ec, [oca!, oca!, cek!, pek!])]);
      const owner = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-384" }, true, ["deriveBits"])) as CryptoKeyPair;
      const zz = new Uint8Array(await crypto.subtle.deriveBits(ecdhWith(pk), owner.privateKey, 384));
      const master = await kdf(zz, 16, nonce, "sev-master-secret");
      const [kek, kik] = await Promise.all([kdf(master, 16, new Uint8Array(0), "sev-kek"), kdf(master, 16, new Uint8Array(0), "sev-kik")]);
      const aes = await crypto.subtle.importKey("raw", buf(kek), "AES-CTR", false, ["encrypt"]);
      const wrap = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CTR", counter: buf(nonce), length: 128 }, aes, buf(new Uint8Array(32))));
      const hmacKey = (k: Uint8Array) => crypto.subtle.importKey("raw", buf(k), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      const [k1, k2] = await Promise.all([hmacKey(kik), hmacKey(nonce)]);
      await Promise.all([crypto.subtle.sign("HMAC", k1, buf(wrap)), crypto.subtle.sign("HMAC", k2, buf(nonce)), crypto.subtle.exportKey("raw", owner.publicKey)]);
    };
    const auth = async () => {
      const { pdh } = await verifySevChain(chain, TRUST);
      await createLaunchSession(pdh, POLICY);
    };
    const cold = async () => {
      clearSevChainCaches();
      await auth();
    };
    // A new platform under an ARK and ASK this isolate already verified (the common first sight of a platform).
    const newPlatform = async () => {
      clearSevChainCaches("chains");
      await auth();
    };
    const repeatVerify = () => verifySevChain(chain, TRUST);
    const session = () => createLaunchSession(chain.sev.pdh, POLICY);
    // Interleaved rounds, so that load from elsewhere on the machine falls on the floors and the paths alike.
    const t = await interleaved({ floorA, floorB, cold, newPlatform, repeat: auth, repeatVerify, session });

    const show = (k: keyof typeof t) => `CPU ${ms(median(t[k].cpu))}, wall ${ms(median(t[k].wall))} (wall ${spread(t[k].wall)})`;
    const row = (what: string, k: keyof typeof t, f: "floorA" | "floorB"): Row => {
      const [rc, rw] = [median(t[k].cpu) / median(t[f].cpu), median(t[k].wall) / median(t[f].wall)];
      const fname = f === "floorA" ? "A" : "B";
      return {
        name: `${name}: ${what}`,
        value: `${show(k)}; ${rc.toFixed(2)}× floor ${fname} in CPU, ${rw.toFixed(2)}× in wall`,
        target: `≤ ${TARGET}× floor ${fname}`,
        met: rc <= TARGET && rw <= TARGET,
      };
    };
    rows.push({ name: `${name}: floor A (${jobs.ec.length} ECDSA P-384 verifies + ECDH + KDF)`, value: show("floorA") });
    rows.push({ name: `${name}: floor B (A + ${jobs.rsa.length} RSA-${chain.ca.ask.bits}-PSS verifies, 6 key imports, 2 digests, wrap)`, value: show("floorB") });
    rows.push(row("/auth, cold isolate (caches empty)", "cold", "floorB"));
    rows.push(row("/auth, cold isolate, vs floor A", "cold", "floorA"));
    rows.push(row("/auth, new platform (ARK and ASK verified before)", "newPlatform", "floorA"));
    rows.push(row("/auth, repeat boot (chain cached by hash)", "repeat", "floorA"));
    rows.push({ name: `${name}: verifySevChain, repeat boot`, value: show("repeatVerify") });
    rows.push({ name: `${name}: createLaunchSession alone`, value: show("session") });
  }
  rows.push({ name: "Milan: first SEV /auth of this run (one sample, JIT of the SEV code included)", value: ms(firstMs) });

  notes.push(
    "Floor A is issue 14's definition (4 ECDSA verifies + one ECDH + the KDF); floor B adds every other WebCrypto operation a cold isolate cannot skip. Both run the verifies concurrently, as verifySevChain does.",
    "Cold = clearSevChainCaches() before each call (a fresh isolate's caches); JIT and WebCrypto are warm. The row 'first SEV /auth of this run' is the closest to a fresh isolate (JIT included).",
    "Repeat boot: the chain hash (SHA-256 of its canonical bytes) is found in the per-isolate cache, trust in the ARK is re-checked, no signature is verified; the launch session (ECDH, KDF, wrap) is always fresh.",
  );
  return {
    title: "SEV /auth: chain verification + launch session (Node)",
    method: `Node ${process.version}, median of ${N} per row after 20 untimed calls, AMD's real Naples, Rome and Milan chains. Ratios are to the crypto floor measured in the same run.`,
    rows,
    notes,
  };
}

runIfMain(import.meta.url, measure);
