// D1 cache of AMD certificates that already chained to a trusted ARK (migrations/).

import type { D1Reader } from "./secrets";

export interface CachedCert {
  key: string;
  der: Uint8Array;
  notAfter: Date;
}

export async function getCachedCert(db: D1Reader, key: string, now: Date): Promise<Uint8Array | undefined> {
  const row = await db
    .prepare("SELECT der FROM amd_certs WHERE cache_key = ?1 AND not_after > ?2")
    .bind(key, Math.floor(now.getTime() / 1000))
    .first<{ der: ArrayBuffer | number[] }>();
  return row ? new Uint8Array(row.der) : undefined;
}

export async function putCachedCerts(db: D1Database, certs: CachedCert[], now: Date): Promise<void> {
  if (certs.length === 0) return;
  const fetchedAt = Math.floor(now.getTime() / 1000);
  await db.batch(
    certs.map((c) =>
      db
        .prepare("INSERT INTO amd_certs (cache_key, der, not_after, fetched_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cache_key) DO UPDATE SET der = excluded.der, not_after = excluded.not_after, fetched_at = excluded.fetched_at")
        .bind(c.key, c.der, Math.floor(c.notAfter.getTime() / 1000), fetchedAt),
    ),
  );
}
