// Sealed secrets in D1 (table `secrets`, migrations/): values are sealed before they reach the database and
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

/** Thrown when two writers kept racing for the same new version; the caller may simply retry. */
export class VersionConflict extends Error {}

/** D1 or a D1 read-replica session: anything that prepares statements. */
export type D1Reader = Pick<D1Database, "prepare">;

/** The statement that stores a new version (batched with its audit row, and with registration's writes). */
export async function newVersionStatement(db: D1Database, ring: MasterKeyring, s: { workloadId: string; keyId: string; value: Uint8Array; actor: string; now: number }): Promise<{ version: number; statement: D1PreparedStatement }> {
  const latest = await db.prepare("SELECT MAX(version) AS v FROM secrets WHERE workload_id = ?1 AND key_id = ?2").bind(s.workloadId, s.keyId).first<{ v: number | null }>();
  const version = (latest?.v ?? 0) + 1;
  const sealed = await sealSecret(ring, { workloadId: s.workloadId, keyId: s.keyId, version }, s.value);
  const statement = db
    .prepare("INSERT INTO secrets (workload_id, key_id, version, kid, wrapped_key, ciphertext, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
    .bind(s.workloadId, s.keyId, version, sealed.kid, sealed.wrappedKey, sealed.ciphertext, s.now, s.actor);
  return { version, statement };
}

export type Releasable = { kind: "secret"; version: number; value: Uint8Array } | { kind: "no-such-key" } | { kind: "revoked"; why: string };

/**
 * The newest live version of a workload's secret, opened, provided the workload is still live and at the
 * generation the session attested (a change of measurement or policy, a delete or a destroy moves it on).
 */
export async function releasableSecret(db: D1Reader, ring: MasterKeyring, workloadId: string, keyId: string, generation: number): Promise<Releasable> {
  const row = await db
    .prepare(
      `SELECT w.generation, w.deleted_at AS workload_deleted, s.key_id, s.version, s.kid, s.wrapped_key, s.ciphertext, s.created_at, s.created_by, s.deleted_at
       FROM workloads w LEFT JOIN secrets s ON s.workload_id = w.workload_id AND s.key_id = ?2 AND s.deleted_at IS NULL
       WHERE w.workload_id = ?1 ORDER BY s.version DESC LIMIT 1`,
    )
    .bind(workloadId, keyId)
    .first<{ generation: number; workload_deleted: number | null } & { [K in keyof SecretRow]: SecretRow[K] | null }>();
  if (!row || row.workload_deleted !== null) return { kind: "revoked", why: "the workload was deleted" };
  if (row.generation !== generation) return { kind: "revoked", why: "the workload's measurement or policy changed since this session attested" };
  if (row.version === null) return { kind: "no-such-key" };
  const secret = row as SecretRow;
  return { kind: "secret", version: secret.version, value: await openSecret(ring, { workloadId, keyId, version: secret.version }, sealedOf(secret)) };
}

/** Metadata of every version (never values). */
export async function listSecretVersions(db: D1Database, workloadId: string): Promise<SecretVersion[]> {
  const { results } = await db
    .prepare("SELECT key_id, version, kid, created_at, created_by, deleted_at FROM secrets WHERE workload_id = ?1 ORDER BY key_id, version")
    .bind(workloadId)
    .all<Omit<SecretRow, "wrapped_key" | "ciphertext">>();
  return results.map((r) => ({ keyId: r.key_id, version: r.version, kid: r.kid, createdAt: r.created_at, createdBy: r.created_by, deletedAt: r.deleted_at }));
}

/** How many live versions a soft delete would touch (all of them, or one). */
export async function countLiveVersions(db: D1Database, workloadId: string, keyId: string, version?: number): Promise<number> {
  const r = await db
    .prepare("SELECT COUNT(*) AS n FROM secrets WHERE workload_id = ?1 AND key_id = ?2 AND (?3 IS NULL OR version = ?3) AND deleted_at IS NULL")
    .bind(workloadId, keyId, version ?? null)
    .first<{ n: number }>();
  return r?.n ?? 0;
}

/** Soft delete: the versions stay (restorable by an operator) but are never released. */
export function softDeleteSecretStatement(db: D1Database, workloadId: string, keyId: string, now: number, version?: number): D1PreparedStatement {
  return db
    .prepare("UPDATE secrets SET deleted_at = ?4 WHERE workload_id = ?1 AND key_id = ?2 AND (?3 IS NULL OR version = ?3) AND deleted_at IS NULL")
    .bind(workloadId, keyId, version ?? null, now);
}

export async function countDeletedVersions(db: D1Database, workloadId: string, keyId: string): Promise<number> {
  const r = await db.prepare("SELECT COUNT(*) AS n FROM secrets WHERE workload_id = ?1 AND key_id = ?2 AND deleted_at IS NOT NULL").bind(workloadId, keyId).first<{ n: number }>();
  return r?.n ?? 0;
}

/** Destroy: removes soft-deleted versions for good. */
export function destroySecretStatement(db: D1Database, workloadId: string, keyId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM secrets WHERE workload_id = ?1 AND key_id = ?2 AND deleted_at IS NOT NULL").bind(workloadId, keyId);
}

/** The updates that re-wrap every data key not yet under the active master key (values are not decrypted). */
export async function rewrapStatements(db: D1Database, ring: MasterKeyring): Promise<{ statements: D1PreparedStatement[]; rewrapped: number; total: number }> {
  const { results } = await db.prepare("SELECT workload_id, key_id, version, kid, wrapped_key, ciphertext, created_at, created_by, deleted_at FROM secrets").all<SecretRow & { workload_id: string }>();
  const statements: D1PreparedStatement[] = [];
  for (const r of results) {
    const next = await rewrapSecret(ring, { workloadId: r.workload_id, keyId: r.key_id, version: r.version }, sealedOf(r));
    if (next) {
      statements.push(
        db.prepare("UPDATE secrets SET kid = ?4, wrapped_key = ?5 WHERE workload_id = ?1 AND key_id = ?2 AND version = ?3").bind(r.workload_id, r.key_id, r.version, next.kid, next.wrappedKey),
      );
    }
  }
  return { statements, rewrapped: statements.length, total: results.length };
}
