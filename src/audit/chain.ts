// The audit log's hash chains (pure). The log is sharded: the admin shard, and one shard per attestation
// session, each written by the one place that owns its state. Within a shard every entry's hash covers
// its fields (the shard included) and the previous hash, so altering, deleting or reordering rows breaks
// the chain at the first affected row; a witness (a head recorded outside D1) also exposes a truncated tail.

import { createHash } from "node:crypto";

export interface AuditEntry {
  /** "admin", or "session/<Durable Object id>" for a guest's attestation session. */
  shard: string;
  seq: number;
  /** Unix ms. */
  at: number;
  actor: string;
  event: string;
  workload: string | null;
  keyId: string | null;
  version: number | null;
  session: string | null;
  ok: boolean;
  reason: string | null;
  /** Never secret values: measurements, TCBs, digests, counts. */
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

export type AuditFields = Omit<AuditEntry, "seq" | "prevHash" | "hash">;

export const GENESIS_HASH = "0".repeat(64);

/** Canonical JSON: object keys sorted at every depth, so the hash does not depend on insertion order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Synchronous (node:crypto, also in workerd with nodejs_compat) so that a Durable Object can build an
 * entry and commit it with the state change it describes inside one synchronous storage transaction.
 */
export function hashAuditEntry(entry: Omit<AuditEntry, "hash">): string {
  const { shard, seq, at, actor, event, workload, keyId, version, session, ok, reason, details, prevHash } = entry;
  return createHash("sha256")
    .update(canonical({ v: 2, shard, seq, at, actor, event, workload, keyId, version, session, ok, reason, details, prevHash }), "utf8")
    .digest("hex");
}

/** The entry exactly as it reads back from storage: absent fields null, details through JSON (Dates, undefined). */
function stored(fields: AuditFields): AuditFields {
  const { workload, keyId, version, session, reason, details } = fields;
  return {
    ...fields,
    workload: workload ?? null,
    keyId: keyId ?? null,
    version: version ?? null,
    session: session ?? null,
    reason: reason ?? null,
    details: JSON.parse(JSON.stringify(details ?? {})) as Record<string, unknown>,
  };
}

export function appendAuditEntry(prev: AuditHead | null, fields: AuditFields): AuditEntry {
  const body = { ...stored(fields), seq: (prev?.seq ?? 0) + 1, prevHash: prev?.hash ?? GENESIS_HASH };
  return { ...body, hash: hashAuditEntry(body) };
}

export type AuditVerdict = { ok: true; count: number; head: AuditHead | null } | { ok: false; seq: number; reason: string };

/**
 * Checks one shard's rows in order. `from` continues a chain verified earlier (page by page). `witness`
 * is a head recorded outside D1 after these rows were written: the chain must reach it and agree with it,
 * so rows removed or rewritten up to it are caught. Rows after the witness are allowed: a writer records
 * its rows first and tells the witness afterwards, so the witness may lag but is never ahead. Pages other
 * than a shard's last pass `final: false`: the chain need not reach the witness yet.
 */
export function verifyAuditChain(rows: readonly AuditEntry[], opts: { from?: AuditHead; witness?: AuditHead | null; final?: boolean } = {}): AuditVerdict {
  let expectSeq = (opts.from?.seq ?? 0) + 1;
  let prevHash = opts.from?.hash ?? GENESIS_HASH;
  const shard = rows[0]?.shard;
  const witness = opts.witness ?? null;
  for (const row of rows) {
    if (row.seq !== expectSeq) return { ok: false, seq: expectSeq, reason: `row ${expectSeq} is missing (found ${row.seq} next)` };
    if (row.shard !== shard) return { ok: false, seq: row.seq, reason: `row ${row.seq} belongs to another shard` };
    if (row.prevHash !== prevHash) return { ok: false, seq: row.seq, reason: `row ${row.seq} does not follow the previous row` };
    if (hashAuditEntry(row) !== row.hash) return { ok: false, seq: row.seq, reason: `row ${row.seq} was altered` };
    if (witness && row.seq === witness.seq && row.hash !== witness.hash) return { ok: false, seq: row.seq, reason: `row ${row.seq} differs from the witnessed head` };
    prevHash = row.hash;
    expectSeq++;
  }
  const last = rows.at(-1) ?? opts.from ?? null;
  const end = last?.seq ?? 0;
  if (witness && opts.final !== false && end < witness.seq) return { ok: false, seq: end + 1, reason: `the log ends at row ${end} but row ${witness.seq} was witnessed` };
  return { ok: true, count: rows.length, head: last ? { seq: last.seq, hash: last.hash } : null };
}
