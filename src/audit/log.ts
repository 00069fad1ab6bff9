import { DurableObject } from "cloudflare:workers";
import { toHex } from "../crypto/bytes";
import type { Env } from "../env";
import { appendAuditEntry, type AuditEntry } from "./chain";

/** What a caller records; the writer adds seq, time and the chain hashes. */
export type AuditFields = Omit<AuditEntry, "seq" | "at" | "prevHash" | "hash">;

export interface AuditHead {
  seq: number;
  hash: string;
}

/**
 * The only writer of `audit_log`: one instance (by name) serialises appends, so concurrent requests
 * can neither fork the chain nor lose a row, and it remembers the head, so removing the newest rows
 * from D1 is detectable as well.
 */
export class AuditLog extends DurableObject<Env> {
  private tail: Promise<unknown> = Promise.resolve();
  private cachedHead: AuditHead | null | undefined;

  /** Appends one entry after every earlier one has been written. */
  append(fields: AuditFields): Promise<AuditHead> {
    const run = this.tail.then(() => this.write(fields));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async head(): Promise<AuditHead | null> {
    await this.tail;
    return this.loadHead();
  }

  private async loadHead(): Promise<AuditHead | null> {
    if (this.cachedHead === undefined) this.cachedHead = (await this.ctx.storage.get<AuditHead>("head")) ?? null;
    return this.cachedHead;
  }

  private async write(fields: AuditFields): Promise<AuditHead> {
    const prev = await this.loadHead();
    const entry = await appendAuditEntry(prev, { ...fields, at: Date.now() });
    try {
      await this.env.DB.prepare(
        "INSERT INTO audit_log (seq, at, actor, event, workload, key_id, version, session, ok, reason, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
      )
        .bind(entry.seq, entry.at, entry.actor, entry.event, entry.workload, entry.keyId, entry.version, entry.session, entry.ok ? 1 : 0, entry.reason, JSON.stringify(entry.details), entry.prevHash, entry.hash)
        .run();
      const head = { seq: entry.seq, hash: entry.hash };
      await this.ctx.storage.put("head", head);
      this.cachedHead = head;
      return head;
    } catch (e) {
      // Re-read the head next time rather than trust an in-memory value that may not have been stored.
      this.cachedHead = undefined;
      throw e;
    }
  }
}

/** Records an event; callers await it, so an action whose audit row cannot be written does not happen. */
export function audit(env: Env, fields: Partial<AuditFields> & Pick<AuditFields, "actor" | "event" | "ok">): Promise<AuditHead> {
  const full: AuditFields = { workload: null, keyId: null, version: null, session: null, reason: null, details: {}, ...fields };
  return env.AUDIT.get(env.AUDIT.idFromName("audit")).append(full);
}

/** Sessions appear in the log by a digest: the session id is a bearer credential for its secret. */
export async function sessionRef(sessionId: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`edgekbs/session/${sessionId}`)));
  return toHex(d.subarray(0, 8));
}
