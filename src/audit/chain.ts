// The audit log's hash chain (pure): every entry's hash covers its fields and the previous hash, so
// altering, deleting or reordering rows breaks the chain at the first affected row; the writer's head
// (last seq and hash) also exposes a truncated tail.

import { sha256, toHex, utf8 } from "../crypto/bytes";

export interface AuditEntry {
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

export async function hashAuditEntry(entry: Omit<AuditEntry, "hash">): Promise<string> {
  const { seq, at, actor, event, workload, keyId, version, session, ok, reason, details, prevHash } = entry;
  return toHex(await sha256(utf8(canonical({ v: 1, seq, at, actor, event, workload, keyId, version, session, ok, reason, details, prevHash }))));
}

/** The entry exactly as it reads back from storage: absent fields null, details through JSON (Dates, undefined). */
function stored(fields: Omit<AuditEntry, "seq" | "prevHash" | "hash">): Omit<AuditEntry, "seq" | "prevHash" | "hash"> {
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

export async function appendAuditEntry(prev: { seq: number; hash: string } | null, fields: Omit<AuditEntry, "seq" | "prevHash" | "hash">): Promise<AuditEntry> {
  const body = { ...stored(fields), seq: (prev?.seq ?? 0) + 1, prevHash: prev?.hash ?? GENESIS_HASH };
  return { ...body, hash: await hashAuditEntry(body) };
}

export type AuditVerdict = { ok: true; count: number; head: { seq: number; hash: string } | null } | { ok: false; seq: number; reason: string };

/**
 * Checks rows in order. `from` continues a chain verified earlier (page by page); `head` is the writer's
 * last entry, so rows missing at the end are caught too.
 */
export async function verifyAuditChain(rows: readonly AuditEntry[], opts: { from?: { seq: number; hash: string }; head?: { seq: number; hash: string } | null } = {}): Promise<AuditVerdict> {
  let expectSeq = (opts.from?.seq ?? 0) + 1;
  let prevHash = opts.from?.hash ?? GENESIS_HASH;
  for (const row of rows) {
    if (row.seq !== expectSeq) return { ok: false, seq: expectSeq, reason: `row ${expectSeq} is missing (found ${row.seq} next)` };
    if (row.prevHash !== prevHash) return { ok: false, seq: row.seq, reason: `row ${row.seq} does not follow the previous row` };
    if ((await hashAuditEntry(row)) !== row.hash) return { ok: false, seq: row.seq, reason: `row ${row.seq} was altered` };
    prevHash = row.hash;
    expectSeq++;
  }
  const last = rows.at(-1) ?? (opts.from ? { seq: opts.from.seq, hash: opts.from.hash } : null);
  if (opts.head !== undefined) {
    const head = opts.head;
    if ((head?.seq ?? 0) !== (last?.seq ?? 0) || (head && head.hash !== last?.hash)) {
      return { ok: false, seq: (last?.seq ?? 0) + 1, reason: `the log ends at row ${last?.seq ?? 0} but its writer's head is row ${head?.seq ?? 0}` };
    }
  }
  return { ok: true, count: rows.length, head: last ? { seq: last.seq, hash: last.hash } : null };
}
