// Verifies the whole audit log through the admin API, page by page (used by `kbs audit verify`).

import { verifyAuditChain, type AuditEntry, type AuditVerdict } from "./chain";

interface Page {
  entries: AuditEntry[];
  head: { seq: number; hash: string } | null;
  next: number | null;
}

export async function verifyAuditLog(fetchFn: typeof fetch, baseUrl: string, token: string, pageSize = 500): Promise<AuditVerdict> {
  let from: { seq: number; hash: string } | undefined;
  let count = 0;
  for (;;) {
    const url = `${baseUrl.replace(/\/+$/, "")}/kbs/v0/admin/audit?after=${from?.seq ?? 0}&limit=${pageSize}`;
    const res = await fetchFn(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    const page = (await res.json()) as Page;
    const last = page.next === null;
    // Only the final page is held against the writer's head; earlier pages chain into the next.
    const verdict = await verifyAuditChain(page.entries, { ...(from && { from }), ...(last && { head: page.head }) });
    if (!verdict.ok) return verdict;
    count += verdict.count;
    if (last) return { ...verdict, count };
    from = verdict.head!;
  }
}
