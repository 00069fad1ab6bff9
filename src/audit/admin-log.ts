// The admin shards: every admin action (registration, changes, deletes, rewrap, reads) is written to D1
// in the same batch as its audit row, so an action without its record, or a record without its action,
// cannot exist, whatever crashes when. Actions on one workload go to its shard "admin/<workload id>",
// the rest (listing, rewrap, audit reads) to "admin": admins of different workloads never contend.
// Only admin requests write here, never a guest's.

import type { Env } from "../env";
import { faultArmed, faultPoint } from "../faults";
import { insertAuditEntry, isAuditSeqTaken, lastAuditEntry } from "../store/audit";
import { isVersionTaken, VersionConflict } from "../store/secrets";
import { appendAuditEntry, type AuditFields } from "./chain";
import { witness } from "./witness";

export const ADMIN_SHARD = "admin";

export function adminShard(workload: string | null | undefined): string {
  return workload ? `${ADMIN_SHARD}/${workload}` : ADMIN_SHARD;
}

export type AdminAuditFields = Partial<Omit<AuditFields, "shard" | "at">> & Pick<AuditFields, "actor" | "event">;

export interface AuditedAction<T> {
  /** The action's writes; empty for an audited read. */
  statements: D1PreparedStatement[];
  audit: AdminAuditFields;
  result: T;
}

const ATTEMPTS = 8;

/**
 * Runs `prepare` (reads, then the statements to write) and commits its statements with the audit row in
 * one D1 batch. Two admins racing for the shard's next seq, or for a secret's next version, make one
 * batch fail whole; it is prepared again from fresh reads. Ends in VersionConflict (409) if it keeps losing.
 */
export async function commitAudited<T>(env: Env, prepare: () => Promise<AuditedAction<T>>): Promise<T> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // Losers of a race retry after a random pause, so they do not collide again in lockstep.
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    const { statements, audit, result } = await prepare();
    const shard = adminShard(audit.workload);
    const prev = await lastAuditEntry(env.DB, shard);
    const entry = appendAuditEntry(prev, { ok: true, workload: null, keyId: null, version: null, session: null, reason: null, details: {}, ...audit, shard, at: Date.now() });
    // A test can make the batch fail between the action and its row, to show the batch is all-or-nothing.
    const injected = faultArmed("admin.in-batch") ? [env.DB.prepare("SELECT json('injected fault')")] : [];
    try {
      await env.DB.batch([...statements, ...injected, insertAuditEntry(env.DB, entry)]);
    } catch (e) {
      if (isAuditSeqTaken(e) || isVersionTaken(e)) continue;
      throw e;
    }
    try {
      faultPoint("admin.after-commit");
      await witness(env, shard, { seq: entry.seq, hash: entry.hash });
    } catch (e) {
      // The action and its record are committed; a witness that lags only narrows what it can prove.
      console.error(JSON.stringify({ event: "audit.witness-skipped", name: (e as Error)?.name }));
    }
    return result;
  }
  throw new VersionConflict("concurrent admin writes kept taking the next version; retry");
}
