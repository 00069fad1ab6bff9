// A shard of the audit log kept inside the Durable Object that owns the audited state. Appending is
// synchronous, so a caller commits the state change and its audit row in one storage transaction; rows
// are exported to D1 later, off the request path, and a repeated export is harmless.

import { createHash } from "node:crypto";
import { faultPoint } from "../faults";
import { exportAuditEntry } from "../store/audit";
import { appendAuditEntry, type AuditEntry, type AuditFields, type AuditHead } from "./chain";

export const OUTBOX_SCHEMA = "CREATE TABLE IF NOT EXISTS audit_outbox (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, exported INTEGER NOT NULL DEFAULT 0)";

/** Appends after the shard's last row (the outbox's own last row is its head). Call inside a transaction. */
export function appendToOutbox(sql: SqlStorage, fields: AuditFields): AuditEntry {
  const last = sql.exec<{ entry: string }>("SELECT entry FROM audit_outbox ORDER BY seq DESC LIMIT 1").toArray()[0];
  const entry = appendAuditEntry(last ? (JSON.parse(last.entry) as AuditEntry) : null, fields);
  sql.exec("INSERT INTO audit_outbox (seq, entry) VALUES (?, ?)", entry.seq, JSON.stringify(entry));
  return entry;
}

export function hasUnexported(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM audit_outbox WHERE exported = 0 LIMIT 1").toArray().length > 0;
}

/**
 * Copies the rows not yet exported into D1 (one atomic batch), then marks them. A crash between the two
 * repeats the copy next time, which INSERT OR IGNORE makes a no-op. Returns the exported head, if any.
 */
export async function exportOutbox(sql: SqlStorage, db: D1Database): Promise<AuditHead | null> {
  const rows = sql.exec<{ entry: string }>("SELECT entry FROM audit_outbox WHERE exported = 0 ORDER BY seq").toArray().map((r) => JSON.parse(r.entry) as AuditEntry);
  if (rows.length === 0) return null;
  await db.batch(rows.map((e) => exportAuditEntry(db, e)));
  faultPoint("outbox.after-export");
  const last = rows.at(-1)!;
  sql.exec("UPDATE audit_outbox SET exported = 1 WHERE seq <= ?", last.seq);
  return { seq: last.seq, hash: last.hash };
}

/** Sessions appear in the log by a digest: the session id is a bearer credential for its secret. */
export function sessionRef(sessionId: string): string {
  return createHash("sha256").update(`edgekbs/session/${sessionId}`, "utf8").digest("hex").slice(0, 16);
}
