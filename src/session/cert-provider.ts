import { sha256, toHex } from "../crypto/bytes";
import { fetchCertChain, fetchVcek } from "../kds/kds";
import { arkKey, getCachedCert, getCachedChains, intermediateKey, putCachedCerts, vcekKey } from "../store/amd-certs";
import { PINNED_ARKS } from "../tee/snp/trust";
import type { CertificateProvider, VerifiedChain } from "../tee/snp/types";
import type { CacheDb } from "./cache-db";

/**
 * Certificates the evidence did not carry: first the D1 cache (read from the nearest replica; only ever
 * filled with certificates that chained to a trusted ARK), then AMD KDS. The verifier re-checks every
 * certificate either way. Filling the cache is best-effort and happens after the answer. Chains of
 * operator-listed roots that an admin imported are offered beside AMD's (the verifier picks the issuer whose
 * signature holds), and alone when KDS cannot be reached.
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
      return (await cached(vcekKey(product, hwid, tcb.raw))) ?? (await fetchVcek(kdsUrl, product, hwid, tcb));
    },
    async chain(product, signer) {
      const { amd, listed } = await getCachedChains(db.read, product, signer, now);
      if (amd) {
        fromCache.add(intermediateKey(product, signer)).add(arkKey(product));
        return [...amd, ...listed];
      }
      try {
        return [...(await fetchCertChain(kdsUrl, product, signer)), ...listed];
      } catch (e) {
        if (listed.length === 0) throw e;
        return listed;
      }
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
      if (chain.signer === "VCEK" && chain.hwid) rows.push({ key: vcekKey(chain.product, chain.hwid, chain.reportedTcb.raw), der: chain.vek, notAfter });
      const missing = rows.filter((r) => !fromCache.has(r.key));
      if (missing.length) db.defer(putCachedCerts(db.write, missing, now), "certificate");
    },
  };
}
