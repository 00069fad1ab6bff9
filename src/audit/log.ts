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
 * from D1 is detectable as well. A batch is one D1 transaction: all its rows land or none do.
 */
export class AuditLog extends DurableObject<Env> {
  private pending: { fields: AuditFields; done: (head: AuditHead) => void; failed: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private cachedHead: AuditHead | null | undefined;

  /**
   * Appends one entry after every earlier one. Appends that arrive while a write is in flight are
   * group-committed in the next single D1 batch, so throughput does not stop at one round trip per row.
   */
  append(fields: AuditFields): Promise<AuditHead> {
    return new Promise((done, failed) => {
      this.pending.push({ fields, done, failed });
      this.flushing ??= this.flush();
    });
  }

  async head(): Promise<AuditHead | null> {
    while (this.flushing) await this.flushing;
    return this.loadHead();
  }

  private async loadHead(): Promise<AuditHead | null> {
    if (this.cachedHead === undefined) this.cachedHead = (await this.ctx.storage.get<AuditHead>("head")) ?? null;
    return this.cachedHead;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, 100);
      try {
        let prev = await this.loadHead();
        const entries: AuditEntry[] = [];
        for (const { fields } of batch) {
          const entry = await appendAuditEntry(prev, { ...fields, at: Date.now() });
          entries.push(entry);
          prev = { seq: entry.seq, hash: entry.hash };
        }
        await this.env.DB.batch(entries.map((e) => this.insert(e)));
        await this.ctx.storage.put("head", prev);
        this.cachedHead = prev;
        batch.forEach(({ done }, i) => done({ seq: entries[i]!.seq, hash: entries[i]!.hash }));
      } catch (e) {
        // Re-read the head next time rather than trust an in-memory value that may not have been stored.
        this.cachedHead = undefined;
        batch.forEach(({ failed }) => failed(e));
      }
    }
    this.flushing = null;
  }

  private insert(e: AuditEntry): D1PreparedStatement {
    return this.env.DB.prepare(
      "INSERT INTO audit_log (seq, at, actor, event, workload, key_id, version, session, ok, reason, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    ).bind(e.seq, e.at, e.actor, e.event, e.workload, e.keyId, e.version, e.session, e.ok ? 1 : 0, e.reason, JSON.stringify(e.details), e.prevHash, e.hash);
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
