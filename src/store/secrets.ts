// Sealed secrets in D1 (schema.sql `secrets`): values are sealed before they reach the database and
// opened only for a release, so neither D1 nor its backups ever hold a secret in the clear.

import { openSecret, rewrapSecret, sealSecret, type MasterKeyring, type SealedSecret } from "../crypto/seal";

export interface SecretVersion {
  keyId: string;
  version: number;
  kid: string;
  createdAt: number;
  createdBy: string;
  deletedAt: number | null;
}

interface SecretRow {
  key_id: string;
  version: number;
  kid: string;
  wrapped_key: ArrayBuffer;
  ciphertext: ArrayBuffer;
  created_at: number;
  created_by: string;
  deleted_at: number | null;
}

const sealedOf = (r: SecretRow): SealedSecret => ({ kid: r.kid, wrappedKey: new Uint8Array(r.wrapped_key), ciphertext: new Uint8Array(r.ciphertext) });

/** Thrown when two writers raced for the same new version; the caller may simply retry. */
export class VersionConflict extends Error {}

/** The statement that stores a new version (for batching with other writes, e.g. registration). */
export async function newVersionStatement(db: D1Database, ring: MasterKeyring, s: { workloadId: string; keyId: string; value: Uint8Array; actor: string; now: number }): Promise<{ version: number; statement: D1PreparedStatement }> {
  const latest = await db.prepare("SELECT MAX(version) AS v FROM secrets WHERE workload_id = ?1 AND key_id = ?2").bind(s.workloadId, s.keyId).first<{ v: number | null }>();
  const version = (latest?.v ?? 0) + 1;
  const sealed = await sealSecret(ring, { workloadId: s.workloadId, keyId: s.keyId, version }, s.value);
  const statement = db
    .prepare("INSERT INTO secrets (workload_id, key_id, version, kid, wrapped_key, ciphertext, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
    .bind(s.workloadId, s.keyId, version, sealed.kid, sealed.wrappedKey, sealed.ciphertext, s.now, s.actor);
  return { version, statement };
}

/** Runs a batch that adds a secret version; a primary-key clash means a concurrent writer won. */
export async function runVersioned(db: D1Database, statements: D1PreparedStatement[]): Promise<void> {
  try {
    await db.batch(statements);
  } catch (e) {
    if (/UNIQUE constraint failed: secrets/.test(String((e as Error).message))) throw new VersionConflict("a concurrent update created this version first");
    throw e;
  }
}

/** The newest live version of a workload's secret, opened; null when there is none. */
export async function releasableSecret(db: D1Database, ring: MasterKeyring, workloadId: string, keyId: string): Promise<{ version: number; value: Uint8Array } | null> {
  const row = await db
    .prepare("SELECT key_id, version, kid, wrapped_key, ciphertext, created_at, created_by, deleted_at FROM secrets WHERE workload_id = ?1 AND key_id = ?2 AND deleted_at IS NULL ORDER BY version DESC LIMIT 1")
    .bind(workloadId, keyId)
    .first<SecretRow>();
  if (!row) return null;
  return { version: row.version, value: await openSecret(ring, { workloadId, keyId, version: row.version }, sealedOf(row)) };
}

/** Metadata of every version (never values). */
export async function listSecretVersions(db: D1Database, workloadId: string): Promise<SecretVersion[]> {
  const { results } = await db
    .prepare("SELECT key_id, version, kid, created_at, created_by, deleted_at FROM secrets WHERE workload_id = ?1 ORDER BY key_id, version")
    .bind(workloadId)
    .all<Omit<SecretRow, "wrapped_key" | "ciphertext">>();
  return results.map((r) => ({ keyId: r.key_id, version: r.version, kid: r.kid, createdAt: r.created_at, createdBy: r.created_by, deletedAt: r.deleted_at }));
}

/** Soft delete: the versions stay (restorable by an operator) but are never released. Returns how many changed. */
export async function softDeleteSecret(db: D1Database, workloadId: string, keyId: string, now: number, version?: number): Promise<number> {
  const r = await db
    .prepare("UPDATE secrets SET deleted_at = ?4 WHERE workload_id = ?1 AND key_id = ?2 AND (?3 IS NULL OR version = ?3) AND deleted_at IS NULL")
    .bind(workloadId, keyId, version ?? null, now)
    .run();
  return r.meta.changes;
}

/** Destroy: removes soft-deleted versions for good. Returns how many rows went. */
export async function destroySecret(db: D1Database, workloadId: string, keyId: string): Promise<number> {
  const r = await db.prepare("DELETE FROM secrets WHERE workload_id = ?1 AND key_id = ?2 AND deleted_at IS NOT NULL").bind(workloadId, keyId).run();
  return r.meta.changes;
}

/** Re-wraps every data key not yet under the active master key (values are not decrypted). */
export async function rewrapAll(db: D1Database, ring: MasterKeyring): Promise<{ rewrapped: number; total: number }> {
  const { results } = await db.prepare("SELECT workload_id, key_id, version, kid, wrapped_key, ciphertext, created_at, created_by, deleted_at FROM secrets").all<SecretRow & { workload_id: string }>();
  const updates: D1PreparedStatement[] = [];
  for (const r of results) {
    const next = await rewrapSecret(ring, { workloadId: r.workload_id, keyId: r.key_id, version: r.version }, sealedOf(r));
    if (next) {
      updates.push(
        db.prepare("UPDATE secrets SET kid = ?4, wrapped_key = ?5 WHERE workload_id = ?1 AND key_id = ?2 AND version = ?3").bind(r.workload_id, r.key_id, r.version, next.kid, next.wrappedKey),
      );
    }
  }
  if (updates.length) await db.batch(updates);
  return { rewrapped: updates.length, total: results.length };
}
