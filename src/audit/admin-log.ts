// The admin shards: every admin action (registration, changes, deletes, rewrap, reads) is written to D1
// in the same batch as its audit row, so an action without its record, or a record without its action,
// cannot exist, whatever crashes when. Actions on one workload go to its shard "admin/<workload id>",
// the rest (listing, rewrap, audit reads) to "admin": admins of different workloads never contend.
// Only admin requests write here, never a guest's.

import { log } from "../config";
import type { Env } from "../env";
import { faultArmed } from "../faults";
import { insertAuditEntry, lastAuditEntry } from "../store/audit";
import { VersionConflict } from "../store/secrets";
import { appendAuditEntry, type AuditFields } from "./chain";
import { witness } from "./witness";

export const ADMIN_SHARD = "admin";

export function adminShard(workload: string | null | undefined): string {
  return workload ? `${ADMIN_SHARD}/${workload}` : ADMIN_SHARD;
}

export type AdminAuditFields = Partial<Omit<AuditFields, "shard" | "at" | "workload">> & Pick<AuditFields, "actor" | "event">;

export interface AuditedAction<T> {
  /** The action's writes; empty for an audited read. */
  statements: D1PreparedStatement[];
  audit: AdminAuditFields;
  result: T;
}

const ATTEMPTS = 8;

/**
 * Runs `prepare` (reads, then the statements to write) for an action on `workload` (null: none) and commits
 * its statements with the audit row in one D1 batch. Two admins racing on one workload (for the shard's
 * next row, or a secret's next version) make one batch fail whole; it is prepared again from fresh reads.
 * Ends in VersionConflict (409) if it keeps losing.
 */
export async function commitAudited<T>(env: Env, workload: string | null, prepare: () => Promise<AuditedAction<T>>): Promise<T> {
  const shard = adminShard(workload);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // Losers of a race retry after a random pause, so they do not collide again in lockstep.
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    // The shard's head is read before the action's own reads: if it moves before our batch lands, another
    // admin acted on the same workload in between and our reads may be stale.
    const prev = await lastAuditEntry(env.DB, shard);
    const { statements, audit, result } = await prepare();
    const entry = appendAuditEntry(prev, { ok: true, keyId: null, version: null, session: null, reason: null, details: {}, ...audit, workload, shard, at: Date.now() });
    // A test can make the batch fail between the action and its row, to show the batch is all-or-nothing.
    const injected = faultArmed("admin.in-batch") ? [env.DB.prepare("SELECT json('injected fault')")] : [];
    try {
      await env.DB.batch([...statements, ...injected, insertAuditEntry(env.DB, entry)]);
    } catch (e) {
      // Lost a race: another admin's batch on this workload landed since we read the head (taking the row,
      // or the secret version we computed). Re-read rather than parse D1's error text.
      if (((await lastAuditEntry(env.DB, shard))?.seq ?? 0) >= entry.seq) continue;
      throw e;
    }
    // The action and its record are committed; a witness that lags (its call failed, which witness() logs,
    // or a test dropped it as a kill right here would) only narrows what it can prove.
    if (!faultArmed("admin.after-commit")) await witness(env, shard, { seq: entry.seq, hash: entry.hash });
    // Who did what to which workload and key, as a guest event's line says it; never the details' values.
    log(env, "info", { event: audit.event, actor: audit.actor, workload, key_id: audit.keyId, version: audit.version, ok: true });
    return result;
  }
  throw new VersionConflict("concurrent admin writes kept taking the next version; retry");
}
