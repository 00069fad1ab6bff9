import { fetchCrl } from "../kds/kds";
import { getCachedCrl, putCachedCrl } from "../store/amd-crls";
import { PINNED_ARKS } from "../tee/snp/trust";
import type { CrlSource, Product, SignerKind, VerifiedCrl } from "../tee/snp/types";
import type { CacheDb } from "./cache-db";

/** After KDS failed (outage, throttling), guests use the cached CRL for a while instead of each retrying KDS. */
const RETRY_AFTER_FAILURE_MS = 5 * 60_000;
const lastFailure = new Map<string, number>();

/**
 * AMD's CRLs for the verifier: the D1 copy while it is current, else KDS, else the stale D1 copy (the
 * verifier applies CRL_MODE to it). Only CRLs that verified under a trusted ARK are written back.
 */
export function workerCrlSource(db: CacheDb, kdsUrl: string, now: Date): CrlSource {
  // A current CRL served from the cache is not written back.
  const current = new Set<string>();
  return {
    async crl(product: Product, signer: SignerKind) {
      const cached = await getCachedCrl(db.read, product, signer);
      if (cached?.nextUpdate && cached.nextUpdate > now) {
        current.add(`${product}/${signer}`);
        return cached.der;
      }
      const key = `${product}/${signer}`;
      if (now.getTime() - (lastFailure.get(key) ?? -Infinity) < RETRY_AFTER_FAILURE_MS) return cached?.der;
      try {
        return (await fetchCrl(kdsUrl, product, signer)) ?? cached?.der;
      } catch {
        // Unreachable or throttled: remember it, and fall back to the stale copy.
        lastFailure.set(key, now.getTime());
      }
      return cached?.der;
    },
    async verified(crl: VerifiedCrl) {
      // The per-product rows hold AMD's lists only, so a lab root's CRL can never displace AMD's.
      if (PINNED_ARKS.get(crl.arkFingerprint) !== crl.product || current.has(`${crl.product}/${crl.signer}`)) return;
      db.defer(putCachedCrl(db.write, crl.product, crl.signer, { der: crl.der, ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}) }, now), "CRL");
    },
  };
}
