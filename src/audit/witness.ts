import { DurableObject } from "cloudflare:workers";
import { log } from "../config";
import type { Env } from "../env";
import type { AuditHead } from "./chain";

export interface WitnessedHead extends AuditHead {
  shard: string;
}

/**
 * Remembers each shard's newest head outside D1, so rows removed from or rewritten in `audit_log` are
 * detected. Writers tell it after their rows are durable (the session's export alarm, the admin commit),
 * never on a guest's request path; it may therefore lag a shard, but it is never ahead of one.
 */
export class AuditWitness extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS heads (shard TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL)");
  }

  /** Heads only move forward: a late or repeated report of an older head changes nothing. */
  note(shard: string, head: AuditHead): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO heads (shard, seq, hash) VALUES (?, ?, ?) ON CONFLICT (shard) DO UPDATE SET seq = excluded.seq, hash = excluded.hash WHERE excluded.seq > heads.seq",
      shard,
      head.seq,
      head.hash,
    );
  }

  list(after: string, limit: number): WitnessedHead[] {
    return this.ctx.storage.sql.exec<{ shard: string; seq: number; hash: string }>("SELECT shard, seq, hash FROM heads WHERE shard > ? ORDER BY shard LIMIT ?", after, limit).toArray();
  }
}

/** The one witness. Only admin calls and session export alarms reach it, never a guest's request. */
export function auditWitness(env: Env): DurableObjectStub<AuditWitness> {
  return env.AUDIT_WITNESS.get(env.AUDIT_WITNESS.idFromName("audit-witness"));
}

/** Tells the witness; a failure only delays detection (the witness lags), so it is logged, not raised. */
export async function witness(env: Env, shard: string, head: AuditHead): Promise<void> {
  try {
    await auditWitness(env).note(shard, head);
  } catch (e) {
    log(env, "error", { event: "audit.witness-failed", shard, name: (e as Error)?.name });
  }
}
