// Typed D1 access to `audit_log`: the exported copy of every shard's chain (migrations/0002). Rows are keyed by
// (shard, seq), so an export that is repeated after a crash inserts nothing twice.

import type { AuditEntry, AuditHead } from "../audit/chain";

/** A row as D1 holds it: snake_case names, ok as 0/1, details as JSON text. */
type AuditRow = Omit<AuditEntry, "keyId" | "ok" | "details" | "prevHash"> & { key_id: string | null; ok: number; details: string; prev_hash: string };

const entryOf = (r: AuditRow): AuditEntry => ({
  shard: r.shard,
  seq: r.seq,
  at: r.at,
  actor: r.actor,
  event: r.event,
  workload: r.workload,
  keyId: r.key_id,
  version: r.version,
  session: r.session,
  ok: r.ok === 1,
  reason: r.reason,
  details: JSON.parse(r.details) as Record<string, unknown>,
  prevHash: r.prev_hash,
  hash: r.hash,
});

const COLUMNS = "shard, seq, at, actor, event, workload, key_id, version, session, ok, reason, details, prev_hash, hash";

function insert(db: D1Database, e: AuditEntry, verb: string): D1PreparedStatement {
  return db
    .prepare(`${verb} INTO audit_log (${COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)`)
    .bind(e.shard, e.seq, e.at, e.actor, e.event, e.workload, e.keyId, e.version, e.session, e.ok ? 1 : 0, e.reason, JSON.stringify(e.details), e.prevHash, e.hash);
}

/** A new row that must not exist yet: in a batch with the action it records, a taken seq fails both. */
export const insertAuditEntry = (db: D1Database, e: AuditEntry) => insert(db, e, "INSERT");

/** An exported row: repeating the export after a crash is harmless. */
export const exportAuditEntry = (db: D1Database, e: AuditEntry) => insert(db, e, "INSERT OR IGNORE");

export async function lastAuditEntry(db: D1Database, shard: string): Promise<AuditHead | null> {
  return await db.prepare("SELECT seq, hash FROM audit_log WHERE shard = ?1 ORDER BY seq DESC LIMIT 1").bind(shard).first<AuditHead>();
}

/** Rows in (shard, seq) order after the cursor. */
export async function auditPage(db: D1Database, after: { shard: string; seq: number }, limit: number): Promise<AuditEntry[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM audit_log WHERE shard > ?1 OR (shard = ?1 AND seq > ?2) ORDER BY shard, seq LIMIT ?3`)
    .bind(after.shard, after.seq, limit)
    .all<AuditRow>();
  return results.map(entryOf);
}
