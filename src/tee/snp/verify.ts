// Cryptographic verification of an SNP report: report → VEK → ASK/ASVK → pinned ARK, the VEK bound to
// the report, the report signature, then (when configured) AMD's CRL (docs/snp-verification.md §Checks, in order).
//
// Performance: an isolate serves many reports from few chips, so whatever verified is remembered per
// isolate (bounded). A warm verification re-checks trust, dates and the cheap bindings and then costs
// one ECDSA P-384 verification (plus a cache lookup for a CRL); nothing is parsed and no RSA operation runs.

import { buf, equalBytes, isAllZero, toHex } from "../../crypto/bytes";
import { BoundedMap, derKey } from "./cache";
import { clearCrlCache, verifiedCrl } from "./crl";
import { decodeGuestPolicy, decodePlatformInfo, decodeTcb, parseReport, productFromCpuid, SIGNED_SIZE, tcbSpls } from "./report";
import {
  PRODUCTS,
  VerificationError,
  type Product,
  type Revocation,
  type SignerKind,
  type SnpReport,
  type TrustAnchors,
  type VerifiedChain,
  type VerifiedReport,
  type VerifyOptions,
} from "./types";
import { clearKeyCache, fingerprint, importVekKey, parseCertificate, verifyRsaPss, type Certificate } from "./x509";

const CACHE_SIZE = 1000;

const INTERMEDIATE_NAME: Record<SignerKind, string> = { VCEK: "ASK", VLEK: "ASVK" };

/** The validity window of one certificate of a chain, named for error messages. */
interface Validity {
  name: string;
  notBefore: Date;
  notAfter: Date;
}

/** An ASK/ASVK whose signature by an ARK verified (the ARK's self-signature too). Trust in the ARK is re-checked per use. */
interface VerifiedIntermediate {
  cert: Certificate;
  ark: Certificate;
  arkFp: string;
  validity: Validity[];
}

/** What binds a VEK to a report, on a parsed certificate and a cached entry alike. */
type VekFacts = Pick<Certificate, "product" | "issuerCn" | "amd">;

/** A VEK whose chain verified: all a warm verification needs, so nothing is parsed again. */
interface VerifiedVek extends VekFacts {
  fp: string;
  der: Uint8Array;
  serial: bigint;
  signer: SignerKind;
  key: CryptoKey;
  intermediate: VerifiedIntermediate;
  validity: Validity[];
}

// Per-isolate caches. Only verified things enter them.
/** By the intermediate DER (derKey), confirmed byte for byte on a hit. */
const intermediates = new BoundedMap<string, VerifiedIntermediate>(CACHE_SIZE);
/** By the VEK DER (derKey), confirmed byte for byte on a hit. */
const veksByDer = new BoundedMap<string, VerifiedVek>(CACHE_SIZE);
function knownVek(der: Uint8Array): VerifiedVek | undefined {
  const entry = veksByDer.get(derKey(der));
  return entry && equalBytes(entry.der, der) ? entry : undefined;
}
/** VCEKs the provider returned, by (product, hwid, REPORTED_TCB), set only once bound to a report. */
const veksByTcb = new BoundedMap<string, VerifiedVek>(CACHE_SIZE);

/** Empties the per-isolate caches (benchmarks and tests measure the cold path with it). */
export function clearVerifierCaches(): void {
  clearKeyCache();
  clearCrlCache();
  intermediates.clear();
  parsedCa.clear();
  selfSignedArks.clear();
  veksByDer.clear();
  veksByTcb.clear();
}

/** Forgets the verified VEKs and their keys, keeping ARKs and intermediates (benchmarks: a new chip in a warm isolate). */
export function clearVekCaches(): void {
  clearKeyCache("ECDSA");
  veksByDer.clear();
  veksByTcb.clear();
}

interface Context {
  report: SnpReport;
  signer: SignerKind;
  /** From CPUID (v3+) or the caller's hint (v2); undefined for a v2 report without hint. */
  product?: Product;
  opts: VerifyOptions;
  now: Date;
  /** The supplied certificates, parsed on first need (never on a warm path). */
  supplied?: Certificate[];
  /** What provider.chain returned, fetched on first need. */
  providerChain?: Certificate[];
}

type Candidate = { entry: VerifiedVek } | { cert: Certificate };

export async function verifySnpReport(reportBytes: Uint8Array, opts: VerifyOptions): Promise<VerifiedReport> {
  const report = parseReport(reportBytes);
  const ctx: Context = { report, signer: signerKind(report), product: reportProduct(report, opts.productHint), opts, now: opts.now ?? new Date() };
  let firstError: VerificationError | undefined;
  for await (const candidate of vekCandidates(ctx)) {
    try {
      return await verifyWith(ctx, candidate);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      firstError ??= e;
    }
  }
  // vekCandidates yields at least one candidate or throws, so an error was recorded.
  throw firstError!;
}

function signerKind(report: SnpReport): SignerKind {
  if (report.maskChipKey) throw new VerificationError("unsupported-signer", "MASK_CHIP_KEY is set: the report is not signed by the chip");
  if (report.signingKey === 0) return "VCEK";
  if (report.signingKey === 1) return "VLEK";
  if (report.signingKey === 7) throw new VerificationError("unsupported-signer", "SIGNING_KEY is 7 (none): the report is unsigned");
  throw new VerificationError("unsupported-signer", `SIGNING_KEY ${report.signingKey} is reserved`);
}

const PRODUCT_LIST = PRODUCTS.join(", ");

function reportProduct(report: SnpReport, hint: Product | undefined): Product | undefined {
  if (report.cpuid) {
    const { family, model } = report.cpuid;
    const product = productFromCpuid(family, model);
    if (!product) {
      throw new VerificationError("unsupported-product", `CPUID family 0x${family.toString(16)} model 0x${model.toString(16)} is not ${PRODUCT_LIST}`);
    }
    return product;
  }
  if (hint !== undefined && !PRODUCTS.includes(hint)) throw new VerificationError("unsupported-product", `product hint ${hint} is not ${PRODUCT_LIST}`);
  return hint;
}

/** A v2 report without hint takes the product from the VEK's issuer; the chain must then reach that product's ARK. */
function productFor(ctx: Context, vekProduct: Product | undefined): Product {
  const product = ctx.product ?? vekProduct;
  if (!product) throw new VerificationError("unsupported-product", `v2 report: product unknown; pass a product hint (${PRODUCT_LIST})`);
  return product;
}

/**
 * VEK candidates, cheapest first: supplied VEKs already verified in this isolate, then the other
 * supplied VEKs (parsed now), and only when none was supplied a cached or provider-fetched VCEK.
 */
async function* vekCandidates(ctx: Context): AsyncGenerator<Candidate> {
  const known = (ctx.opts.certificates ?? []).map(knownVek);
  const cached = known.filter((e): e is VerifiedVek => e?.signer === ctx.signer);
  yield* rank(ctx, cached.map((entry) => ({ entry })));
  // Reached only when no cached candidate verified the report (the caller stops iterating on success).
  const uncached = suppliedCerts(ctx)
    .filter((cert, i) => !known[i] && cert.role === ctx.signer)
    .map((cert) => ({ cert }));
  yield* rank(ctx, uncached);
  if (cached.length + uncached.length === 0) yield await fetchedVcek(ctx);
}

/** Several supplied VEKs (e.g. re-issued ones): try those that bind to the report and are in date first. */
function rank(ctx: Context, candidates: Candidate[]): Candidate[] {
  const score = (c: Candidate) => {
    const vek = "entry" in c ? { ...c.entry, ...vekValidity(c.entry) } : c.cert;
    const binds = !bindingProblem(ctx, productFor(ctx, vek.product), vek);
    const { notBefore, notAfter } = vek;
    const inDate = notBefore <= ctx.now && ctx.now <= notAfter;
    return (binds ? 2 : 0) + (inDate ? 1 : 0);
  };
  return candidates.length < 2 ? candidates : [...candidates].sort((a, b) => score(b) - score(a));
}

function vekValidity(entry: VerifiedVek): Validity {
  return entry.validity[entry.validity.length - 1]!;
}

function suppliedCerts(ctx: Context): Certificate[] {
  ctx.supplied ??= (ctx.opts.certificates ?? []).map(parsedCertificate);
  return ctx.supplied;
}

/**
 * ARKs and intermediates that verified in this isolate, parsed, by DER (derKey, confirmed byte for byte):
 * a new chip's evidence repeats them, and parsing is most of the cost of a new chip (bench/snp.ts).
 * Only certificates that passed every check of parseCertificate and the chain enter it.
 */
const parsedCa = new BoundedMap<string, Certificate>(CACHE_SIZE);
/** ARKs whose self-signature verified, by derKey (confirmed byte for byte); trust in them is checked on every use. */
const selfSignedArks = new BoundedMap<string, Uint8Array>(CACHE_SIZE);
function parsedCertificate(der: Uint8Array): Certificate {
  const hit = parsedCa.get(derKey(der));
  return hit && equalBytes(hit.der, der) ? hit : parseCertificate(der);
}

/** Whether the ARK is validly self-signed: verified once per isolate. */
export async function selfSigned(ark: Certificate): Promise<boolean> {
  const key = derKey(ark.der);
  const hit = selfSignedArks.get(key);
  if (hit && equalBytes(hit, ark.der)) return true;
  if (!equalBytes(ark.issuer, ark.subject) || !(await verifyRsaPss(ark.spki, ark.tbs, ark.signature))) return false;
  selfSignedArks.set(key, ark.der);
  return true;
}

function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

/** Caching what verified is a favour to later calls: its failure never changes this verdict. */
async function bestEffort(call: () => void | Promise<void>): Promise<void> {
  try {
    await call();
  } catch {
    // Nothing to do: the next verification fetches again.
  }
}

async function fromProvider<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw new VerificationError("certs-unavailable", `could not get the ${what} from the certificate provider; retry later`);
  }
}

/** CHIP_ID as KDS keys VCEKs: 64 bytes, or the first 8 on Turin. */
function hwidOf(report: SnpReport, product: Product): Uint8Array {
  return product === "Turin" ? report.chipId.subarray(0, 8) : report.chipId;
}

function tcbKey(product: Product, report: SnpReport): string {
  return `${product}|${toHex(hwidOf(report, product))}|${report.reportedTcb}`;
}

async function fetchedVcek(ctx: Context): Promise<Candidate> {
  const { report, signer, opts } = ctx;
  if (signer === "VLEK") throw new VerificationError("cert-missing", "VLEK-signed report: the VLEK must be supplied with the evidence");
  const product = productFor(ctx, undefined);
  if (isAllZero(report.chipId)) throw new VerificationError("cert-missing", "CHIP_ID is masked: the VCEK must be supplied with the evidence");
  const entry = veksByTcb.get(tcbKey(product, report));
  if (entry) return { entry };
  const provider = opts.provider;
  if (!provider) throw new VerificationError("cert-missing", "no VCEK supplied and no certificate provider configured");
  const der = await fromProvider("VCEK", () => provider.vcek(product, hwidOf(report, product), decodeTcb(report.reportedTcb, product)));
  if (!der) throw new VerificationError("cert-missing", `no VCEK for this ${product} chip at REPORTED_TCB ${decodeTcb(report.reportedTcb, product).raw}`);
  const cert = parseCertificate(der);
  if (cert.role !== "VCEK") throw new VerificationError("vek-mismatch", `the report is signed by the VCEK but the certificate is not a SEV-VCEK: the provider returned a ${cert.role}`);
  return { cert };
}

async function verifyWith(ctx: Context, candidate: Candidate): Promise<VerifiedReport> {
  const { report, signer, opts, now } = ctx;
  const fresh = !("entry" in candidate);
  const product = productFor(ctx, "entry" in candidate ? candidate.entry.product : candidate.cert.product);
  const entry = "entry" in candidate ? candidate.entry : await verifyChain(ctx, product, candidate.cert);

  checkTrust(opts.trust, entry.intermediate.arkFp, product);
  for (const v of entry.validity) {
    if (now < v.notBefore) throw new VerificationError("cert-expired", `${v.name} certificate is not valid before ${v.notBefore.toISOString()}`);
    if (now > v.notAfter) throw new VerificationError("cert-expired", `${v.name} certificate expired at ${v.notAfter.toISOString()}`);
  }
  const problem = bindingProblem(ctx, product, entry);
  if (problem) throw problem;
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, entry.key, buf(report.signature), buf(report.bytes.subarray(0, SIGNED_SIZE)));
  if (!ok) throw new VerificationError("signature-invalid", `the report signature does not verify with the ${signer}`);
  const revocation = await checkRevocation(ctx, product, entry);

  const reportedTcb = decodeTcb(report.reportedTcb, product);
  const maskedChip = isAllZero(report.chipId);
  if (fresh) {
    if (signer === "VCEK" && !maskedChip) veksByTcb.set(tcbKey(product, report), entry);
    const chain: VerifiedChain = {
      product,
      signer,
      ark: entry.intermediate.ark.der,
      intermediate: entry.intermediate.cert.der,
      vek: entry.der,
      reportedTcb,
      vekNotAfter: vekValidity(entry).notAfter,
    };
    if (signer === "VCEK" && !maskedChip) chain.hwid = hwidOf(report, product);
    const provider = opts.provider;
    if (provider?.verified) await bestEffort(() => provider.verified!(chain));
  }
  return {
    report,
    product,
    signer,
    reportedTcb,
    currentTcb: decodeTcb(report.currentTcb, product),
    committedTcb: decodeTcb(report.committedTcb, product),
    launchTcb: decodeTcb(report.launchTcb, product),
    guestPolicy: decodeGuestPolicy(report.policy),
    platformInfo: decodePlatformInfo(report.platformInfo),
    vekFingerprint: entry.fp,
    revocation,
  };
}

/**
 * AMD's CRL for this chain (docs/snp-verification.md §CRL): a revoked intermediate or VEK is refused in any
 * mode, as is a CRL the chain's ARK did not sign; a missing or stale CRL is refused only in strict mode.
 */
async function checkRevocation(ctx: Context, product: Product, entry: VerifiedVek): Promise<Revocation> {
  const options = ctx.opts.revocation;
  if (!options) return { status: "not-checked", detail: "no revocation source configured" };
  const { signer, now } = ctx;
  const what = `${product} ${signer} CRL`;
  const gap = (status: "unavailable" | "stale", detail: string): Revocation => {
    if (options.mode === "strict") throw new VerificationError("crl-unavailable", `${detail}; retry later`);
    return { status, detail };
  };
  let der: Uint8Array | undefined;
  try {
    der = await options.source.crl(product, signer);
  } catch {
    // A failing source is no different from one without a CRL.
  }
  if (!der) return gap("unavailable", `no ${what} available`);
  const { intermediate } = entry;
  const verified = await verifiedCrl(der, intermediate.ark, intermediate.arkFp);
  if (!verified) return gap("unavailable", `the ${what} at hand is not issued by this chain's ARK`);
  const { crl, fresh } = verified;
  if (fresh && options.source.verified) {
    const { arkFp } = intermediate;
    await bestEffort(() => options.source.verified!({ product, signer, arkFingerprint: arkFp, der: crl.der, thisUpdate: crl.thisUpdate, ...(crl.nextUpdate && { nextUpdate: crl.nextUpdate }) }));
  }
  const revoked: [string, bigint][] = [
    [INTERMEDIATE_NAME[signer], intermediate.cert.serial],
    [signer, entry.serial],
  ];
  for (const [name, serial] of revoked) {
    if (crl.revoked.has(serial)) throw new VerificationError("cert-revoked", `the ${name} (serial 0x${serial.toString(16)}) is revoked by the ${what} of ${crl.thisUpdate.toISOString()}`);
  }
  if (!crl.nextUpdate) return gap("stale", `the ${what} names no next update`);
  const next = crl.nextUpdate.toISOString();
  if (now > crl.nextUpdate) return gap("stale", `the ${what} is stale: its next update was due ${next}`);
  return { status: "checked", detail: `${what} of ${crl.thisUpdate.toISOString()}, next update ${next}` };
}

/** Pinned or operator-listed, and for this product: an ARK vouches only for the product its CN names. */
export function trusted(trust: TrustAnchors, arkFp: string, product: Product): boolean {
  return trust.pinned.get(arkFp) === product || trust.extra.get(arkFp) === product;
}

function checkTrust(trust: TrustAnchors, arkFp: string, product: Product): void {
  if (!trusted(trust, arkFp, product)) {
    throw new VerificationError("cert-untrusted-root", `ARK ${arkFp.slice(0, 16)}… is neither AMD's pinned ${product} root nor an operator-listed ${product} root`);
  }
}

/** Why this VEK does not belong to this report (docs/snp-verification.md §Binding a VEK to a report), or undefined. */
function bindingProblem(ctx: Context, product: Product, vek: VekFacts): VerificationError | undefined {
  const { report, signer } = ctx;
  const { amd } = vek;
  const mismatch = (reason: string) => new VerificationError("vek-mismatch", reason);
  if (vek.product !== product) return mismatch(`${signer} issued by CN=${vek.issuerCn}, not by the ${product} ${INTERMEDIATE_NAME[signer]}`);
  // parseCertificate makes every SPL extension of the product present.
  for (const [name, reported] of Object.entries(tcbSpls(report.reportedTcb, product))) {
    const certified = amd.spl[name as keyof typeof amd.spl];
    if (certified !== reported) return mismatch(`${signer} ${name} is ${certified} but REPORTED_TCB has ${reported}`);
  }
  if (signer === "VCEK" && !isAllZero(report.chipId)) {
    if (product === "Turin" && !isAllZero(report.chipId.subarray(8))) return mismatch("Turin CHIP_ID must be zero after byte 8");
    // parseCertificate makes a VCEK carry hwID.
    const hwid = amd.hwid!;
    if (!equalBytes(hwid, hwidOf(report, product))) {
      return mismatch(`VCEK hwID ${toHex(hwid.subarray(0, 8))}… is not CHIP_ID ${toHex(report.chipId.subarray(0, 8))}…`);
    }
  }
  return undefined;
}

async function providerChain(ctx: Context, product: Product): Promise<Certificate[]> {
  const provider = ctx.opts.provider;
  if (provider && !ctx.providerChain) {
    const ders = await fromProvider(`${product} certificate chain`, () => provider.chain(product, ctx.signer));
    ctx.providerChain = ders.map(parsedCertificate);
  }
  return ctx.providerChain ?? [];
}

/**
 * Runs `use` on each certificate named as `cert`'s issuer, the supplied ones first and then (fetched on first
 * need) the provider's chain for this product, until one succeeds: a same-named decoy listed before the genuine
 * issuer must not break a valid chain. When all fail, the first failure is the verdict.
 */
async function viaIssuer<T>(ctx: Context, product: Product, cert: Certificate, name: string, use: (issuer: Certificate) => Promise<T>): Promise<T> {
  let firstError: VerificationError | undefined;
  const tried: Certificate[] = [];
  const attempt = async (pool: Certificate[]): Promise<{ value: T } | undefined> => {
    for (const issuer of pool) {
      if (!equalBytes(issuer.subject, cert.issuer) || tried.some((t) => equalBytes(t.der, issuer.der))) continue;
      tried.push(issuer);
      try {
        return { value: await use(issuer) };
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
        firstError ??= e;
      }
    }
    return undefined;
  };
  const supplied = await attempt(suppliedCerts(ctx));
  if (supplied) return supplied.value;
  let chain: Certificate[];
  try {
    chain = await providerChain(ctx, product);
  } catch (e) {
    // A supplied issuer that failed says more than a provider that cannot answer.
    throw firstError ?? e;
  }
  const fetched = await attempt(chain);
  if (fetched) return fetched.value;
  if (firstError) throw firstError;
  if (ctx.providerChain?.length) {
    throw new VerificationError("cert-chain-invalid", `the issuer CN=${cert.issuerCn} is not among the ${product} ${name}/ARK certificates`);
  }
  throw new VerificationError("cert-missing", `no ${name} certificate CN=${cert.issuerCn} supplied or available`);
}

async function verifyChain(ctx: Context, product: Product, vek: Certificate): Promise<VerifiedVek> {
  const { signer } = ctx;
  const interName = INTERMEDIATE_NAME[signer];
  // The VEK's digest and key import need no verdict: they run while its chain is checked (WebCrypto runs
  // on a thread pool in Node; workerd runs it inline, where the order costs nothing). Unused if the chain fails.
  const vekKey = Promise.all([fingerprint(vek.der), importVekKey(vek.spki)]);
  vekKey.catch(() => {});
  const inter = await viaIssuer(ctx, product, vek, interName, async (candidate) => {
    const verified = await verifiedIntermediate(ctx, product, candidate, interName);
    if (!(await verifyRsaPss(candidate.spki, vek.tbs, vek.signature))) {
      throw new VerificationError("cert-chain-invalid", `the ${signer} signature by ${candidate.subjectCn} does not verify`);
    }
    return verified;
  });
  const [fp, key] = await vekKey;
  const entry: VerifiedVek = {
    fp,
    der: vek.der,
    serial: vek.serial,
    signer,
    product: vek.product,
    key,
    amd: vek.amd,
    issuerCn: vek.issuerCn,
    intermediate: inter,
    validity: [...inter.validity, { name: signer, notBefore: vek.notBefore, notAfter: vek.notAfter }],
  };
  veksByDer.set(derKey(vek.der), entry);
  return entry;
}

async function verifiedIntermediate(ctx: Context, product: Product, inter: Certificate, name: string): Promise<VerifiedIntermediate> {
  // Keyed by derKey and confirmed byte for byte: no digest of the intermediate per new chip.
  const interKey = derKey(inter.der);
  const hit = intermediates.get(interKey);
  const cached = hit && equalBytes(hit.cert.der, inter.der) ? hit : undefined;
  // A cached intermediate whose ARK is not trusted now may still chain to another, trusted, ARK.
  if (cached && trusted(ctx.opts.trust, cached.arkFp, product)) return cached;
  const entry = await viaIssuer(ctx, product, inter, "ARK", async (ark): Promise<VerifiedIntermediate> => {
    // Only the trust check needs the fingerprint: the two signature checks run beside it, and the
    // verdicts are read in the order trust, self-signature, intermediate.
    const [fpResult, selfResult, signedResult] = await Promise.allSettled([fingerprint(ark.der), selfSigned(ark), verifyRsaPss(ark.spki, inter.tbs, inter.signature)]);
    const arkFp = settled(fpResult);
    checkTrust(ctx.opts.trust, arkFp, product);
    if (!settled(selfResult)) throw new VerificationError("cert-chain-invalid", "the ARK is not validly self-signed");
    if (!settled(signedResult)) throw new VerificationError("cert-chain-invalid", `the ${name} signature by the ARK does not verify`);
    return {
      cert: inter,
      ark,
      arkFp,
      validity: [
        { name: "ARK", notBefore: ark.notBefore, notAfter: ark.notAfter },
        { name, notBefore: inter.notBefore, notAfter: inter.notAfter },
      ],
    };
  });
  intermediates.set(interKey, entry);
  parsedCa.set(interKey, inter);
  parsedCa.set(derKey(entry.ark.der), entry.ark);
  return entry;
}
