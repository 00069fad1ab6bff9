import { sha256, toHex } from "../crypto/bytes";
import { fetchCertChain, fetchVcek } from "../kds/kds";
import { getCachedCert, putCachedCerts } from "../store/amd-certs";
import { PINNED_ARKS } from "../tee/snp/trust";
import type { CertificateProvider, Product, SignerKind, Tcb, VerifiedChain } from "../tee/snp/types";
import type { CacheDb } from "./cache-db";

const vcekKey = (product: Product, hwid: Uint8Array, tcb: Tcb) => `vcek/${product}/${toHex(hwid)}/${tcb.raw}`;
const intermediateKey = (product: Product, signer: SignerKind) => `${signer === "VLEK" ? "asvk" : "ask"}/${product}`;
const arkKey = (product: Product) => `ark/${product}`;

/**
 * Certificates the evidence did not carry: first the D1 cache (read from the nearest replica; only ever
 * filled with certificates that chained to a trusted ARK), then AMD KDS. The verifier re-checks every
 * certificate either way. Filling the cache is best-effort and happens after the answer.
 */
export function workerCertificateProvider(db: CacheDb, kdsUrl: string, now: Date): CertificateProvider {
  // Rows this request read from the cache need no write back: a warm attestation writes nothing.
  const fromCache = new Set<string>();
  const cached = async (key: string) => {
    const der = await getCachedCert(db.read, key, now);
    if (der) fromCache.add(key);
    return der;
  };
  return {
    async vcek(product, hwid, tcb) {
      return (await cached(vcekKey(product, hwid, tcb))) ?? (await fetchVcek(kdsUrl, product, hwid, tcb));
    },
    async chain(product, signer) {
      const [intermediate, ark] = await Promise.all([cached(intermediateKey(product, signer)), cached(arkKey(product))]);
      return intermediate && ark ? [intermediate, ark] : await fetchCertChain(kdsUrl, product, signer);
    },
    async verified(chain: VerifiedChain) {
      // Rows expire with the VEK: conservative for the long-lived ASK/ARK, which a later chain refreshes.
      const notAfter = chain.vekNotAfter;
      const rows = [];
      // The per-product ASK/ARK slots hold AMD's own chain only, so a lab ARK listed by the operator can
      // never displace it for real guests of that product.
      if (PINNED_ARKS.get(toHex(await sha256(chain.ark))) === chain.product) {
        rows.push({ key: intermediateKey(chain.product, chain.signer), der: chain.intermediate, notAfter });
        rows.push({ key: arkKey(chain.product), der: chain.ark, notAfter });
      }
      // A VLEK comes from its guest only; KDS keys are per chip, so only VCEKs are worth caching.
      if (chain.signer === "VCEK" && chain.hwid) rows.push({ key: vcekKey(chain.product, chain.hwid, chain.reportedTcb), der: chain.vek, notAfter });
      const missing = rows.filter((r) => !fromCache.has(r.key));
      if (missing.length) db.defer(putCachedCerts(db.write, missing, now), "certificate");
    },
  };
}
