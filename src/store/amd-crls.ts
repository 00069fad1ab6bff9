// D1 cache of AMD CRLs that verified under a trusted ARK (migrations/). Stale rows are kept on
// purpose: when KDS is unreachable the verifier decides what an out-of-date CRL is worth (CRL_MODE).

import type { Product, SignerKind } from "../tee/snp/types";

import type { D1Reader } from "./secrets";

export interface CachedCrl {
  der: Uint8Array;
  /** Absent when the CRL names no nextUpdate. */
  nextUpdate?: Date;
}

export async function getCachedCrl(db: D1Reader, product: Product, signer: SignerKind): Promise<CachedCrl | undefined> {
  const row = await db
    .prepare("SELECT der, next_update FROM amd_crls WHERE product = ?1 AND signer = ?2")
    .bind(product, signer)
    .first<{ der: ArrayBuffer | number[]; next_update: number | null }>();
  if (!row) return undefined;
  return { der: new Uint8Array(row.der), ...(row.next_update !== null ? { nextUpdate: new Date(row.next_update * 1000) } : {}) };
}

/** The upsert of a product's CRL for one signer kind (run alone, or batched with an import's audit row). */
export function cachedCrlStatement(db: D1Database, product: Product, signer: SignerKind, crl: CachedCrl, now: Date): D1PreparedStatement {
  return db
    .prepare("INSERT INTO amd_crls (product, signer, der, next_update, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (product, signer) DO UPDATE SET der = excluded.der, next_update = excluded.next_update, fetched_at = excluded.fetched_at")
    .bind(product, signer, crl.der, crl.nextUpdate ? Math.floor(crl.nextUpdate.getTime() / 1000) : null, Math.floor(now.getTime() / 1000));
}

export async function putCachedCrl(db: D1Database, product: Product, signer: SignerKind, crl: CachedCrl, now: Date): Promise<void> {
  await cachedCrlStatement(db, product, signer, crl, now).run();
}
