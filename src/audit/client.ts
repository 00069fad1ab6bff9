// Verifies the whole audit log through the admin API (used by `kbs audit verify`): first every shard's
// head as the witness holds it, then every exported row in (shard, seq) order, page by page.

import { verifyAuditChain, type AuditEntry, type AuditHead } from "./chain";

interface HeadsPage {
  heads: { shard: string; seq: number; hash: string }[];
  next: string | null;
}

interface RowsPage {
  entries: AuditEntry[];
  next: { after_shard: string; after_seq: number } | null;
}

export type LogVerdict = { ok: true; shards: number; rows: number } | { ok: false; shard: string; seq: number; reason: string };

export async function verifyAuditLog(fetchFn: typeof fetch, baseUrl: string, token: string, pageSize = 500): Promise<LogVerdict> {
  const base = `${baseUrl.replace(/\/+$/, "")}/kbs/v0/admin`;
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetchFn(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${base}${path}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    return (await res.json()) as T;
  };

  // Heads first: a row written after this read can only make the log longer than its witness, never shorter.
  const witnessed = new Map<string, AuditHead>();
  for (let after = ""; ; ) {
    const page = await get<HeadsPage>(`/audit/heads?after=${encodeURIComponent(after)}&limit=1000`);
    for (const h of page.heads) witnessed.set(h.shard, { seq: h.seq, hash: h.hash });
    if (page.next === null) break;
    after = page.next;
  }

  const seen = new Set<string>();
  let rows = 0;
  let shard: string | null = null;
  let from: AuditHead | undefined;
  const finish = (name: string, head: AuditHead | undefined): LogVerdict | null => {
    // The shard's last page: it must reach its witnessed head.
    const verdict = verifyAuditChain([], { ...(head && { from: head }), witness: witnessed.get(name) ?? null });
    return verdict.ok ? null : { ok: false, shard: name, seq: verdict.seq, reason: verdict.reason };
  };
  for (let cursor = { after_shard: "", after_seq: 0 }; ; ) {
    const page = await get<RowsPage>(`/audit?after_shard=${encodeURIComponent(cursor.after_shard)}&after_seq=${cursor.after_seq}&limit=${pageSize}`);
    for (const entry of page.entries) {
      if (entry.shard !== shard) {
        if (shard !== null) {
          const bad = finish(shard, from);
          if (bad) return bad;
        }
        shard = entry.shard;
        seen.add(shard);
        from = undefined;
      }
      const verdict = verifyAuditChain([entry], { ...(from && { from }), witness: witnessed.get(entry.shard) ?? null, final: false });
      if (!verdict.ok) return { ok: false, shard: entry.shard, seq: verdict.seq, reason: verdict.reason };
      from = verdict.head!;
      rows++;
    }
    if (page.next === null) break;
    cursor = page.next;
  }
  if (shard !== null) {
    const bad = finish(shard, from);
    if (bad) return bad;
  }
  for (const [name, head] of witnessed) {
    if (!seen.has(name)) return { ok: false, shard: name, seq: 1, reason: `shard ${name} is missing, though row ${head.seq} was witnessed` };
  }
  return { ok: true, shards: seen.size, rows };
}
