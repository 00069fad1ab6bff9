// D1 cache of AMD certificates that already chained to a trusted ARK (migrations/).

import { toHex } from "../crypto/bytes";
import type { Product, SignerKind } from "../tee/snp/types";
import type { D1Reader } from "./secrets";

export interface CachedCert {
  key: string;
  der: Uint8Array;
  notAfter: Date;
}

// Cache keys. A VCEK per product, chip and REPORTED_TCB (as KDS keys it). The ASK/ASVK and ARK of AMD's own
// pinned chain per product; those of an operator-listed (lab) root only from `kbs amd import`, under that
// ARK's fingerprint, so a lab chain never takes the slot real guests of the product are served from.
export const vcekKey = (product: Product, hwid: Uint8Array, tcbRaw: string) => `vcek/${product}/${toHex(hwid)}/${tcbRaw}`;
export const intermediateKey = (product: Product, signer: SignerKind, listedArk?: string) => `${signer === "VLEK" ? "asvk" : "ask"}/${product}${listedArk ? `/${listedArk}` : ""}`;
export const arkKey = (product: Product, listedArk?: string) => `ark/${product}${listedArk ? `/${listedArk}` : ""}`;

export async function getCachedCert(db: D1Reader, key: string, now: Date): Promise<Uint8Array | undefined> {
  const row = await db
    .prepare("SELECT der FROM amd_certs WHERE cache_key = ?1 AND not_after > ?2")
    .bind(key, Math.floor(now.getTime() / 1000))
    .first<{ der: ArrayBuffer | number[] }>();
  return row ? new Uint8Array(row.der) : undefined;
}

/** The cached chain certificates of a product's signer kind: AMD's pair (when both are cached), and every listed root's. */
export async function getCachedChains(db: D1Reader, product: Product, signer: SignerKind, now: Date): Promise<{ amd: [Uint8Array, Uint8Array] | undefined; listed: Uint8Array[] }> {
  const [inter, ark] = [intermediateKey(product, signer), arkKey(product)];
  const { results } = await db
    .prepare("SELECT cache_key, der FROM amd_certs WHERE not_after > ?1 AND (cache_key IN (?2, ?3) OR cache_key LIKE ?4 OR cache_key LIKE ?5)")
    .bind(Math.floor(now.getTime() / 1000), inter, ark, `${inter}/%`, `${ark}/%`)
    .all<{ cache_key: string; der: ArrayBuffer | number[] }>();
  const der = (key: string) => results.find((r) => r.cache_key === key)?.der;
  const [amdInter, amdArk] = [der(inter), der(ark)];
  return {
    amd: amdInter && amdArk ? [new Uint8Array(amdInter), new Uint8Array(amdArk)] : undefined,
    listed: results.filter((r) => r.cache_key !== inter && r.cache_key !== ark).map((r) => new Uint8Array(r.der)),
  };
}

/** Every cached ARK, ASK and ASVK (a few per product): the issuers an imported certificate may chain to. */
export async function getCachedIssuers(db: D1Reader, now: Date): Promise<Uint8Array[]> {
  const { results } = await db
    .prepare("SELECT der FROM amd_certs WHERE not_after > ?1 AND cache_key NOT LIKE 'vcek/%'")
    .bind(Math.floor(now.getTime() / 1000))
    .all<{ der: ArrayBuffer | number[] }>();
  return results.map((r) => new Uint8Array(r.der));
}

/** The upsert of one certificate (batched with others, or with an import's audit row). */
export function cachedCertStatement(db: D1Database, c: CachedCert, now: Date): D1PreparedStatement {
  return db
    .prepare("INSERT INTO amd_certs (cache_key, der, not_after, fetched_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cache_key) DO UPDATE SET der = excluded.der, not_after = excluded.not_after, fetched_at = excluded.fetched_at")
    .bind(c.key, c.der, Math.floor(c.notAfter.getTime() / 1000), Math.floor(now.getTime() / 1000));
}

export async function putCachedCerts(db: D1Database, certs: CachedCert[], now: Date): Promise<void> {
  if (certs.length === 0) return;
  await db.batch(certs.map((c) => cachedCertStatement(db, c, now)));
}
