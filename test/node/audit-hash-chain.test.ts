// The audit log's hash chains (src/audit/chain.ts): altering, deleting, reordering or inserting rows breaks
// a shard's chain at the first affected row; rows of two shards never verify as one chain, and a row moved
// to another shard no longer matches its hash; a witness (a head recorded outside D1, which may lag but is
// never ahead) exposes rows removed or rewritten up to it, while rows after it pass; paging with `from` and
// `final: false` agrees with whole-log verification; and the hash is canonical (key order inside details
// does not matter) and pinned by a known answer over the v: 2 form that includes the shard.

import { createHash } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { appendAuditEntry, GENESIS_HASH, hashAuditEntry, verifyAuditChain, type AuditEntry, type AuditVerdict } from "../../src/audit/chain";

type Fields = Omit<AuditEntry, "seq" | "prevHash" | "hash">;
type Head = { seq: number; hash: string };

const EVENTS = ["attest", "secret.release", "secret.update", "workload.register", "admin.read", "keys.rewrap"];

const ADMIN = "admin";
const SESSION = "session/4f1c0e9a2b7d";

function fieldsOf(i: number, shard = ADMIN): Fields {
  const ok = i % 7 !== 3;
  return {
    shard,
    at: 1_700_000_000_000 + i * 1_000,
    actor: i % 5 === 0 ? "guest" : `ops-${i % 3}@example`,
    event: EVENTS[i % EVENTS.length]!,
    workload: i % 4 === 0 ? null : `tenant-${i % 3}.web`,
    keyId: i % 2 === 1 ? "disk" : null,
    version: i % 2 === 1 ? i : null,
    session: i % 3 === 0 ? createHash("sha256").update(`s${i}`).digest("hex").slice(0, 16) : null,
    ok,
    reason: ok ? null : "tcb-too-old",
    details: {
      n: i,
      measurement: createHash("sha384").update(`m${i}`).digest("hex"),
      nested: { tcb: { bootloader: i % 10, snp: 22, microcode: 213 }, list: [i, `x${i}`, { deep: i % 2 === 0 }] },
    },
  };
}

function buildChain(n: number, shard = ADMIN): AuditEntry[] {
  const rows: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    const prev = rows.at(-1);
    rows.push(appendAuditEntry(prev ? { seq: prev.seq, hash: prev.hash } : null, fieldsOf(i, shard)));
  }
  return rows;
}

/** Recomputes seq links and hashes from `start` (0-based) on, as a forger with write access to D1 would. */
function rechain(rows: AuditEntry[], start: number): AuditEntry[] {
  const out = rows.slice(0, start);
  for (const row of rows.slice(start)) {
    const prev = out.at(-1);
    const { seq: _s, prevHash: _p, hash: _h, ...fields } = row;
    out.push(appendAuditEntry(prev ? { seq: prev.seq, hash: prev.hash } : null, fields));
  }
  return out;
}

const clone = (rows: readonly AuditEntry[]) => structuredClone(rows) as AuditEntry[];
const headOf = (rows: readonly AuditEntry[]): Head => ({ seq: rows.at(-1)!.seq, hash: rows.at(-1)!.hash });
/** The witness as it was recorded when row `seq` (1-based) of `rows` was the last one. */
const witnessAt = (rows: readonly AuditEntry[], seq: number): Head => ({ seq, hash: rows[seq - 1]!.hash });

/**
 * Verifies page by page the way `kbs audit verify` does: `from` chains pages, every page sees the witness
 * (so its hash is checked wherever the witnessed row falls), and only the last page is final (must reach it).
 */
function verifyPaged(rows: readonly AuditEntry[], pageSize: number, witness?: Head | null): AuditVerdict {
  let from: Head | undefined;
  let count = 0;
  for (let i = 0; ; i += pageSize) {
    const page = rows.slice(i, i + pageSize);
    const last = i + pageSize >= rows.length;
    const verdict = verifyAuditChain(page, { ...(from && { from }), ...(witness !== undefined && { witness }), ...(!last && { final: false }) });
    if (!verdict.ok) return verdict;
    count += verdict.count;
    if (last) return { ...verdict, count };
    from = verdict.head!;
  }
}

/** JSON with object keys sorted: the test's own notion of "the same entry" (independent of chain.ts). */
function stable(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sort) : v !== null && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(sort(JSON.parse(JSON.stringify(value) ?? "null")));
}

const N = 50;
let rows: AuditEntry[];
let head: Head;

beforeAll(() => {
  rows = buildChain(N);
  head = headOf(rows);
});

describe("a well-formed chain", () => {
  it("links seq 1..50 from the genesis hash, each hash covering its row", () => {
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.shard))).toEqual(new Set([ADMIN]));
    expect(rows[0]!.prevHash).toBe(GENESIS_HASH);
    expect(GENESIS_HASH).toMatch(/^0{64}$/);
    for (const [i, row] of rows.entries()) {
      expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
      if (i > 0) expect(row.prevHash).toBe(rows[i - 1]!.hash);
      const { hash, ...body } = row;
      expect(hashAuditEntry(body)).toBe(hash);
    }
    expect(new Set(rows.map((r) => r.hash)).size).toBe(N);
  });

  it("hashing is synchronous: plain values, not promises (awaiting them still works)", async () => {
    const { hash, ...body } = rows[0]!;
    const h = hashAuditEntry(body);
    expect(typeof h).toBe("string");
    expect(h).toBe(hash);
    const e = appendAuditEntry(null, fieldsOf(0));
    expect(e).not.toBeInstanceOf(Promise);
    expect(e).toEqual(rows[0]);
    const v = verifyAuditChain(rows);
    expect(v).not.toBeInstanceOf(Promise);
    expect(v).toEqual({ ok: true, count: N, head });
    expect(await verifyAuditChain(rows, { witness: head })).toEqual(v);
  });

  it("verifies without a witness, with a null one, with the last row witnessed, and with any earlier row witnessed (the witness lags)", () => {
    expect(verifyAuditChain(rows, { witness: head })).toEqual({ ok: true, count: N, head });
    expect(verifyAuditChain(rows)).toEqual({ ok: true, count: N, head });
    expect(verifyAuditChain(rows, { witness: null })).toEqual({ ok: true, count: N, head });
    for (const seq of [1, 2, 25, N - 1]) {
      // The verdict's head is the log's real end, not the witness.
      expect(verifyAuditChain(rows, { witness: witnessAt(rows, seq) }), `witness at ${seq}`).toEqual({ ok: true, count: N, head });
    }
  });

  it("appendAuditEntry does not mutate its input and keeps every field, the shard included", () => {
    for (const shard of [ADMIN, SESSION]) {
      const fields = fieldsOf(7, shard);
      const before = structuredClone(fields);
      const e = appendAuditEntry({ seq: 41, hash: "ab".repeat(32) }, fields);
      expect(fields).toEqual(before);
      expect(e).toMatchObject({ ...before, seq: 42, prevHash: "ab".repeat(32) });
      expect(e.shard).toBe(shard);
    }
  });

  it("an empty log: verifies with no or a null witness, fails against a witnessed row, and an empty page after `from` is fine", () => {
    expect(verifyAuditChain([])).toEqual({ ok: true, count: 0, head: null });
    expect(verifyAuditChain([], { witness: null })).toEqual({ ok: true, count: 0, head: null });
    expect(verifyAuditChain([], { witness: witnessAt(rows, 1) })).toEqual({ ok: false, seq: 1, reason: "the log ends at row 0 but row 1 was witnessed" });
    expect(verifyAuditChain([], { from: head, witness: head })).toEqual({ ok: true, count: 0, head });
    expect(verifyAuditChain([], { from: witnessAt(rows, 49), witness: head })).toEqual({ ok: false, seq: 50, reason: "the log ends at row 49 but row 50 was witnessed" });
    // A witness behind `from` was checked on an earlier page; the empty last page still passes.
    expect(verifyAuditChain([], { from: head, witness: witnessAt(rows, 10) })).toEqual({ ok: true, count: 0, head });
    // Rows exist but nothing was witnessed yet (null): the witness lags, so the rows pass.
    expect(verifyAuditChain(rows.slice(0, 2), { witness: null })).toEqual({ ok: true, count: 2, head: witnessAt(rows, 2) });
  });

  it("survives the storage round trip (ok as 0/1 → boolean, details as a JSON string)", () => {
    const stored = rows.map((r) => ({ ...r, ok: r.ok ? 1 : 0, details: JSON.stringify(r.details) }));
    const read: AuditEntry[] = stored.map((r) => ({ ...r, ok: r.ok === 1, details: JSON.parse(r.details) as Record<string, unknown> }));
    expect(verifyAuditChain(read, { witness: head })).toEqual({ ok: true, count: N, head });
    expect(verifyAuditChain(JSON.parse(JSON.stringify(rows)) as AuditEntry[], { witness: head })).toMatchObject({ ok: true });
  });
});

describe("altering one field of row k fails at k", () => {
  const mutations: [string, (r: AuditEntry) => void][] = [
    ["actor", (r) => void (r.actor = `${r.actor}x`)],
    ["actor (to the other actor)", (r) => void (r.actor = r.actor === "guest" ? "ops-1@example" : "guest")],
    ["event", (r) => void (r.event = r.event === "secret.release" ? "attest" : "secret.release")],
    ["ok", (r) => void (r.ok = !r.ok)],
    ["details (nested value)", (r) => void ((r.details.nested as { tcb: { snp: number } }).tcb.snp = 23)],
    ["details (deep array element)", (r) => void ((r.details.nested as { list: { deep: boolean }[] }).list[2]!.deep = !(r.details.nested as { list: { deep: boolean }[] }).list[2]!.deep)],
    ["details (key removed)", (r) => void delete r.details.measurement],
    ["details (key added)", (r) => void (r.details.extra = 1)],
    ["details (emptied)", (r) => void (r.details = {})],
    ["at (+1 ms)", (r) => void (r.at += 1)],
    ["reason", (r) => void (r.reason = r.reason === null ? "forged" : null)],
    ["reason (to the empty string)", (r) => void (r.reason = r.reason === null ? "" : null)],
    ["workload", (r) => void (r.workload = r.workload === null ? "tenant-9.web" : null)],
    ["keyId", (r) => void (r.keyId = r.keyId === null ? "disk" : "tls")],
    ["version", (r) => void (r.version = r.version === null ? 0 : r.version + 1)],
    ["session", (r) => void (r.session = r.session === null ? "0011223344556677" : null)],
    ["hash", (r) => void (r.hash = `${r.hash.slice(0, 63)}${r.hash.endsWith("0") ? "1" : "0"}`)],
  ];
  const ks = [1, 2, 17, 25, 49, 50];

  it.each(mutations)("%s", (_name, mutate) => {
    for (const k of ks) {
      const tampered = clone(rows);
      mutate(tampered[k - 1]!);
      expect(stable(tampered[k - 1])).not.toBe(stable(rows[k - 1]));
      expect(verifyAuditChain(tampered), `row ${k}`).toEqual({ ok: false, seq: k, reason: `row ${k} was altered` });
      expect(verifyAuditChain(tampered, { witness: head })).toEqual({ ok: false, seq: k, reason: `row ${k} was altered` });
      // A witness that lags behind the altered row does not hide it either.
      expect(verifyAuditChain(tampered, { witness: witnessAt(rows, 1) })).toMatchObject({ ok: false, seq: k });
    }
  });

  it("shard: a row moved to another shard fails as altered; within its old shard's rows it is a stranger", () => {
    for (const k of ks) {
      const prev = k === 1 ? undefined : witnessAt(rows, k - 1);
      for (const other of [SESSION, "Admin", "admin ", ""]) {
        const tampered = clone(rows);
        tampered[k - 1]!.shard = other;
        expect(stable(tampered[k - 1])).not.toBe(stable(rows[k - 1]));
        // Read as part of the shard it now claims (on its own, continuing from the real previous row): altered.
        expect(verifyAuditChain([tampered[k - 1]!], { ...(prev && { from: prev }) }), `row ${k} → ${other}`).toEqual({ ok: false, seq: k, reason: `row ${k} was altered` });
        // Read among its old shard's rows: row 1 sets the shard, so a moved row 1 is altered, any later one foreign.
        const reason = k === 1 ? `row ${k} was altered` : `row ${k} belongs to another shard`;
        expect(verifyAuditChain(tampered)).toEqual({ ok: false, seq: k, reason });
        expect(verifyAuditChain(tampered, { witness: head })).toEqual({ ok: false, seq: k, reason });
      }
    }
  });

  it("shard: relabelling a whole shard, or a whole page of it, fails at its first row as altered", () => {
    const moved = clone(rows).map((r) => ({ ...r, shard: SESSION }));
    expect(verifyAuditChain(moved)).toEqual({ ok: false, seq: 1, reason: "row 1 was altered" });
    const page = clone(rows.slice(10, 20)).map((r) => ({ ...r, shard: SESSION }));
    expect(verifyAuditChain(page, { from: witnessAt(rows, 10) })).toEqual({ ok: false, seq: 11, reason: "row 11 was altered" });
    // Only a forger who re-hashes the relabelled rows gets a chain that verifies without a witness …
    const forged = rechain(moved, 0);
    expect(verifyAuditChain(forged)).toEqual({ ok: true, count: N, head: headOf(forged) });
    // … and the admin shard's witness refuses it at the witnessed row.
    expect(verifyAuditChain(forged, { witness: witnessAt(rows, 5) })).toEqual({ ok: false, seq: 5, reason: "row 5 differs from the witnessed head" });
  });

  it("a changed prevHash or seq is caught at that row too", () => {
    for (const k of ks) {
      const relinked = clone(rows);
      relinked[k - 1]!.prevHash = k === 1 ? rows[0]!.hash : GENESIS_HASH;
      expect(verifyAuditChain(relinked)).toEqual({ ok: false, seq: k, reason: `row ${k} does not follow the previous row` });
      const renumbered = clone(rows);
      renumbered[k - 1]!.seq = k + 100;
      expect(verifyAuditChain(renumbered)).toMatchObject({ ok: false, seq: k, reason: expect.stringMatching(/missing/) });
    }
  });

  it("re-hashing only the altered row moves the failure to the next row", () => {
    const k = 20;
    const tampered = clone(rows);
    tampered[k - 1]!.actor = "someone-else";
    const { hash: _h, ...body } = tampered[k - 1]!;
    tampered[k - 1]!.hash = hashAuditEntry(body);
    expect(verifyAuditChain(tampered)).toEqual({ ok: false, seq: k + 1, reason: `row ${k + 1} does not follow the previous row` });
    // Witnessed exactly there, the re-hashed row itself is refused.
    expect(verifyAuditChain(tampered, { witness: witnessAt(rows, k) })).toEqual({ ok: false, seq: k, reason: `row ${k} differs from the witnessed head` });
  });

  it("re-hashing the whole tail after the alteration is caught only by a witness at or after the altered row", () => {
    const k = 30;
    const tampered = clone(rows);
    tampered[k - 1]!.ok = !tampered[k - 1]!.ok;
    const forged = rechain(tampered, k - 1);
    expect(verifyAuditChain(forged)).toMatchObject({ ok: true, count: N });
    const reason = `row ${N} differs from the witnessed head`;
    expect(verifyAuditChain(forged, { witness: head })).toEqual({ ok: false, seq: N, reason });
    expect(verifyPaged(forged, 10, head)).toEqual({ ok: false, seq: N, reason });
    for (const seq of [k, k + 1, 40]) {
      expect(verifyAuditChain(forged, { witness: witnessAt(rows, seq) }), `witness at ${seq}`).toEqual({ ok: false, seq, reason: `row ${seq} differs from the witnessed head` });
    }
    // The documented limit: a witness recorded before the altered row cannot see a re-hashed tail.
    expect(verifyAuditChain(forged, { witness: witnessAt(rows, k - 1) })).toMatchObject({ ok: true, count: N });
  });
});

describe("deleting, reordering and inserting rows", () => {
  it("deleting row k up to the witnessed row fails at k", () => {
    for (const k of [1, 2, 25, 49]) {
      const gone = rows.filter((r) => r.seq !== k);
      expect(verifyAuditChain(gone)).toEqual({ ok: false, seq: k, reason: `row ${k} is missing (found ${k + 1} next)` });
      expect(verifyAuditChain(gone, { witness: head })).toMatchObject({ ok: false, seq: k });
      expect(verifyAuditChain(gone, { witness: witnessAt(rows, k) })).toMatchObject({ ok: false, seq: k });
    }
    // Deleting the last row is a truncation: only a witness at that row shows it.
    const noLast = rows.slice(0, -1);
    expect(verifyAuditChain(noLast)).toMatchObject({ ok: true, count: N - 1 });
    expect(verifyAuditChain(noLast, { witness: head })).toEqual({ ok: false, seq: N, reason: `the log ends at row ${N - 1} but row ${N} was witnessed` });
    // The witness may lag: witnessed at N - 1, the missing row N is not (yet) provable.
    expect(verifyAuditChain(noLast, { witness: witnessAt(rows, N - 1) })).toEqual({ ok: true, count: N - 1, head: headOf(noLast) });
  });

  it("removing every row up to the witnessed one fails at row 1", () => {
    for (const w of [1, 10, N]) {
      const rest = rows.slice(w);
      const verdict = verifyAuditChain(rest, { witness: witnessAt(rows, w) });
      expect(verdict, `witness at ${w}`).toMatchObject({ ok: false, seq: 1 });
      expect(verdict.ok === false && verdict.reason).toBe(rest.length ? `row 1 is missing (found ${w + 1} next)` : `the log ends at row 0 but row ${w} was witnessed`);
    }
    // Removing the witnessed rows and re-chaining the rest from genesis is refused at the witnessed row.
    const forged = rechain(rows.slice(5), 0);
    expect(verifyAuditChain(forged)).toMatchObject({ ok: true, count: N - 5 });
    expect(verifyAuditChain(forged, { witness: witnessAt(rows, 5) })).toEqual({ ok: false, seq: 5, reason: "row 5 differs from the witnessed head" });
    expect(verifyAuditChain(forged, { witness: head })).toEqual({ ok: false, seq: N - 4, reason: `the log ends at row ${N - 5} but row ${N} was witnessed` });
  });

  it("deleting row k and renumbering the rest fails at k (the link is broken)", () => {
    const k = 12;
    const renumbered = clone(rows.filter((r) => r.seq !== k)).map((r) => (r.seq > k ? { ...r, seq: r.seq - 1 } : r));
    expect(verifyAuditChain(renumbered)).toEqual({ ok: false, seq: k, reason: `row ${k} does not follow the previous row` });
  });

  it("swapping two rows fails at the first of them", () => {
    for (const [i, j] of [[0, 1], [24, 25], [48, 49], [3, 40], [0, 49]] as const) {
      const swapped = [...rows];
      [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
      expect(verifyAuditChain(swapped), `${i + 1}<->${j + 1}`).toMatchObject({ ok: false, seq: i + 1 });
      expect(verifyAuditChain(swapped, { witness: head })).toMatchObject({ ok: false, seq: i + 1 });
    }
    // Even with their seq numbers swapped back, the links do not fit.
    const relabelled = clone(rows);
    [relabelled[9], relabelled[10]] = [{ ...relabelled[10]!, seq: 10 }, { ...relabelled[9]!, seq: 11 }];
    expect(verifyAuditChain(relabelled)).toMatchObject({ ok: false, seq: 10 });
  });

  it("a duplicated row, or a row inserted with a recomputed tail, is caught", () => {
    const dup = [...rows.slice(0, 10), rows[9]!, ...rows.slice(10)];
    expect(verifyAuditChain(dup)).toMatchObject({ ok: false, seq: 11 });
    const inserted = [...rows.slice(0, 10), { ...rows[9]!, actor: "inserted" }, ...rows.slice(10)];
    const forged = rechain(inserted, 10);
    expect(verifyAuditChain(forged)).toMatchObject({ ok: true, count: N + 1 });
    // The forged chain is one row longer; its row N is the old row N - 1 re-hashed, so it differs from the witness.
    expect(verifyAuditChain(forged, { witness: head })).toEqual({ ok: false, seq: N, reason: `row ${N} differs from the witnessed head` });
    expect(verifyAuditChain(forged, { witness: witnessAt(rows, 11) })).toEqual({ ok: false, seq: 11, reason: "row 11 differs from the witnessed head" });
    // Witnessed before the insertion point, the insertion cannot be told from rows appended later.
    expect(verifyAuditChain(forged, { witness: witnessAt(rows, 10) })).toMatchObject({ ok: true, count: N + 1 });
  });

  it("truncating the last 3 rows passes without a witness and fails against one at any removed row", () => {
    const truncated = rows.slice(0, N - 3);
    expect(verifyAuditChain(truncated)).toEqual({ ok: true, count: N - 3, head: headOf(truncated) });
    expect(verifyAuditChain(truncated, { witness: head })).toEqual({ ok: false, seq: N - 2, reason: `the log ends at row ${N - 3} but row ${N} was witnessed` });
    expect(verifyAuditChain(truncated, { witness: witnessAt(rows, N - 2) })).toEqual({ ok: false, seq: N - 2, reason: `the log ends at row ${N - 3} but row ${N - 2} was witnessed` });
    expect(verifyPaged(truncated, 10, head)).toEqual({ ok: false, seq: N - 2, reason: `the log ends at row ${N - 3} but row ${N} was witnessed` });
  });

  it("the documented lag: a truncated tail beyond the witness passes", () => {
    // The writer records rows first and tells the witness afterwards, so rows after the witness may be
    // missing without proof: cutting the log back to the witnessed row (or anywhere after it) passes.
    const w = 40;
    const witness = witnessAt(rows, w);
    for (const end of [w, w + 1, N - 3, N - 1]) {
      const truncated = rows.slice(0, end);
      expect(verifyAuditChain(truncated, { witness }), `cut to ${end}`).toEqual({ ok: true, count: end, head: headOf(truncated) });
      expect(verifyPaged(truncated, 7, witness)).toEqual({ ok: true, count: end, head: headOf(truncated) });
    }
    // One row further back and it is caught.
    expect(verifyAuditChain(rows.slice(0, w - 1), { witness })).toEqual({ ok: false, seq: w, reason: `the log ends at row ${w - 1} but row ${w} was witnessed` });
  });

  it("rows after the witness pass; a witnessed row rewritten, or a witness ahead of the log, is refused", () => {
    // Rows appended after the witness was recorded (the witness lags).
    expect(verifyAuditChain(rows, { witness: witnessAt(rows, N - 1) })).toEqual({ ok: true, count: N, head });
    expect(verifyAuditChain(rows, { witness: witnessAt(rows, 1) })).toEqual({ ok: true, count: N, head });
    // The witnessed seq with another hash (the row at that seq was rewritten, or the witness is wrong).
    expect(verifyAuditChain(rows, { witness: { seq: N, hash: rows[N - 2]!.hash } })).toEqual({ ok: false, seq: N, reason: `row ${N} differs from the witnessed head` });
    expect(verifyAuditChain(rows, { witness: { seq: 17, hash: GENESIS_HASH } })).toEqual({ ok: false, seq: 17, reason: "row 17 differs from the witnessed head" });
    // Row 17 rewritten and re-hashed in place (its successor's link breaks too, but the witness is checked first at 17).
    const rewritten = clone(rows);
    rewritten[16]!.actor = "rewritten";
    const { hash: _h, ...body } = rewritten[16]!;
    rewritten[16]!.hash = hashAuditEntry(body);
    expect(verifyAuditChain(rewritten, { witness: witnessAt(rows, 17) })).toEqual({ ok: false, seq: 17, reason: "row 17 differs from the witnessed head" });
    // A witness ahead of the log: never the case for an honest log, so it is a truncation.
    expect(verifyAuditChain(rows, { witness: { seq: N + 1, hash: head.hash } })).toEqual({ ok: false, seq: N + 1, reason: `the log ends at row ${N} but row ${N + 1} was witnessed` });
  });
});

describe("shards", () => {
  let session: AuditEntry[];
  beforeAll(() => {
    session = buildChain(N, SESSION);
  });

  it("each shard is its own chain from seq 1 and genesis, and the shard is in the hash", () => {
    expect(session.map((r) => r.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(session[0]!.prevHash).toBe(GENESIS_HASH);
    expect(verifyAuditChain(session, { witness: headOf(session) })).toEqual({ ok: true, count: N, head: headOf(session) });
    // The same fields in another shard hash differently, row by row.
    for (let i = 0; i < N; i++) {
      const { shard: _a, prevHash: _p1, hash: h1, ...a } = session[i]!;
      const { shard: _b, prevHash: _p2, hash: h2, ...b } = rows[i]!;
      expect(a).toEqual(b);
      expect(h1).not.toBe(h2);
    }
    // A shard's witness does not vouch for another shard's rows.
    expect(verifyAuditChain(session, { witness: witnessAt(rows, 20) })).toEqual({ ok: false, seq: 20, reason: "row 20 differs from the witnessed head" });
    expect(verifyAuditChain(rows, { witness: headOf(session) })).toEqual({ ok: false, seq: N, reason: `row ${N} differs from the witnessed head` });
  });

  it("rows of two shards mixed in one call fail at the first stranger", () => {
    // Admin rows 1-5, then the session's rows 6-20: the seq numbers run on, the shard does not.
    expect(verifyAuditChain([...rows.slice(0, 5), ...session.slice(5)])).toEqual({ ok: false, seq: 6, reason: "row 6 belongs to another shard" });
    // The session's row 1 first: the shard is set by it, and admin row 2 is the stranger.
    expect(verifyAuditChain([session[0]!, ...rows.slice(1, 10)])).toEqual({ ok: false, seq: 2, reason: "row 2 belongs to another shard" });
    // One foreign row in the middle, with a witness that would otherwise pass.
    const one = [...rows];
    one[29] = session[29]!;
    expect(verifyAuditChain(one, { witness: head })).toEqual({ ok: false, seq: 30, reason: "row 30 belongs to another shard" });
    // Alternating rows (as an unordered query would return them).
    const interleaved = session.slice(0, 5).flatMap((s, i) => [s, rows[i]!]);
    expect(verifyAuditChain(interleaved)).toMatchObject({ ok: false, seq: 2 });
    // Both shards concatenated (each whole and valid on its own).
    expect(verifyAuditChain([...rows, ...session])).toEqual({ ok: false, seq: N + 1, reason: `row ${N + 1} is missing (found 1 next)` });
    expect(verifyAuditChain(rows)).toMatchObject({ ok: true });
    expect(verifyAuditChain(session)).toMatchObject({ ok: true });
  });

  it("a page of another shard after `from` does not follow (the link is per shard)", () => {
    const first = verifyAuditChain(rows.slice(0, 10), { final: false });
    expect(first).toMatchObject({ ok: true, count: 10 });
    expect(verifyAuditChain(session.slice(10), { from: first.ok ? first.head! : undefined })).toEqual({ ok: false, seq: 11, reason: "row 11 does not follow the previous row" });
  });
});

describe("page-by-page verification with `from` and `final: false`", () => {
  const sizes = [1, 3, 7, 10, 16, 25, 49, 50, 64];

  it.each(sizes)("pages of %i give the same verdict as the whole log", (size) => {
    expect(verifyPaged(rows, size, head)).toEqual(verifyAuditChain(rows, { witness: head }));
    expect(verifyPaged(rows, size, head)).toEqual({ ok: true, count: N, head });
    expect(verifyPaged(rows, size)).toEqual({ ok: true, count: N, head });
    // A lagging witness, wherever it falls among the pages.
    for (const w of [1, 17, 33]) expect(verifyPaged(rows, size, witnessAt(rows, w))).toEqual({ ok: true, count: N, head });
  });

  it.each(sizes)("pages of %i fail at the same row and for the same reason as the whole log", (size) => {
    const cases: [AuditEntry[], Head][] = [];
    const altered = clone(rows);
    altered[22]!.details = { ...altered[22]!.details, n: -1 };
    cases.push([altered, head]);
    cases.push([rows.filter((r) => r.seq !== 31), head]);
    const swapped = [...rows];
    [swapped[10], swapped[11]] = [swapped[11]!, swapped[10]!];
    cases.push([swapped, head]);
    cases.push([rows.slice(0, N - 3), head]);
    // A re-hashed tail, caught at a witnessed row in the middle of the log (on a non-final page).
    const rehashed = clone(rows);
    rehashed[19]!.reason = "forged";
    cases.push([rechain(rehashed, 19), witnessAt(rows, 33)]);
    // Truncated before a lagging witness.
    cases.push([rows.slice(0, 30), witnessAt(rows, 33)]);
    for (const [c, witness] of cases) {
      const whole = verifyAuditChain(c, { witness });
      expect(whole.ok).toBe(false);
      expect(verifyPaged(c, size, witness)).toEqual(whole);
    }
    // A row moved to another shard fails at the same row; the shard is read from each page's first row, so
    // the reason is "altered" when the moved row opens a page and "belongs to another shard" otherwise.
    const shardMoved = clone(rows);
    shardMoved[14]!.shard = SESSION;
    const whole = verifyAuditChain(shardMoved, { witness: head });
    expect(whole).toEqual({ ok: false, seq: 15, reason: "row 15 belongs to another shard" });
    const paged = verifyPaged(shardMoved, size, head);
    expect(paged).toEqual(14 % size === 0 ? { ok: false, seq: 15, reason: "row 15 was altered" } : whole);
  });

  it("a non-final page need not reach the witness, but is otherwise checked in full", () => {
    const page = rows.slice(0, 10);
    expect(verifyAuditChain(page, { witness: head, final: false })).toEqual({ ok: true, count: 10, head: headOf(page) });
    // The same page as the last one (the default, or final: true) must reach the witness.
    const short = { ok: false, seq: 11, reason: `the log ends at row 10 but row ${N} was witnessed` };
    expect(verifyAuditChain(page, { witness: head })).toEqual(short);
    expect(verifyAuditChain(page, { witness: head, final: true })).toEqual(short);
    // The witnessed row passing by on a non-final page is still compared.
    expect(verifyAuditChain(page, { witness: { seq: 5, hash: rows[5]!.hash }, final: false })).toEqual({ ok: false, seq: 5, reason: "row 5 differs from the witnessed head" });
    expect(verifyAuditChain(page, { witness: witnessAt(rows, 10), final: false })).toMatchObject({ ok: true, count: 10 });
    const middle = rows.slice(10, 20);
    const from = witnessAt(rows, 10);
    expect(verifyAuditChain(middle, { from, witness: { seq: 15, hash: GENESIS_HASH }, final: false })).toEqual({ ok: false, seq: 15, reason: "row 15 differs from the witnessed head" });
    expect(verifyAuditChain(middle, { from, witness: witnessAt(rows, 15), final: false })).toEqual({ ok: true, count: 10, head: headOf(middle) });
    // Alterations, gaps and strangers are caught on a non-final page as on any other.
    const altered = clone(page);
    altered[3]!.event = "forged";
    expect(verifyAuditChain(altered, { witness: head, final: false })).toEqual({ ok: false, seq: 4, reason: "row 4 was altered" });
    expect(verifyAuditChain(page.filter((r) => r.seq !== 6), { witness: head, final: false })).toMatchObject({ ok: false, seq: 6 });
    expect(verifyAuditChain([...page.slice(0, 5), { ...page[5]!, shard: SESSION }], { final: false })).toEqual({ ok: false, seq: 6, reason: "row 6 belongs to another shard" });
    // An empty non-final page passes whatever the witness; `final: false` without a witness changes nothing.
    expect(verifyAuditChain([], { witness: head, final: false })).toEqual({ ok: true, count: 0, head: null });
    expect(verifyAuditChain(page, { final: false })).toEqual(verifyAuditChain(page));
  });

  it("pages verified with `final: false` and an empty final page (as `kbs audit verify` does) catch a truncation only at the end", () => {
    const truncated = rows.slice(0, N - 3);
    let from: Head | undefined;
    for (const row of truncated) {
      const v = verifyAuditChain([row], { ...(from && { from }), witness: head, final: false });
      expect(v, `row ${row.seq}`).toMatchObject({ ok: true, count: 1 });
      from = v.ok ? v.head! : undefined;
    }
    expect(verifyAuditChain([], { from: from!, witness: head })).toEqual({ ok: false, seq: N - 2, reason: `the log ends at row ${N - 3} but row ${N} was witnessed` });
    expect(verifyAuditChain([], { from: from!, witness: witnessAt(rows, N - 3) })).toEqual({ ok: true, count: 0, head: headOf(truncated) });
  });

  it("`from` must be the real previous row", () => {
    const page = rows.slice(10, 20);
    expect(verifyAuditChain(page, { from: { seq: 10, hash: rows[9]!.hash } })).toEqual({ ok: true, count: 10, head: headOf(page) });
    expect(verifyAuditChain(page, { from: { seq: 10, hash: rows[8]!.hash } })).toEqual({ ok: false, seq: 11, reason: "row 11 does not follow the previous row" });
    expect(verifyAuditChain(page, { from: { seq: 9, hash: rows[9]!.hash } })).toMatchObject({ ok: false, seq: 10, reason: expect.stringMatching(/missing/) });
    // Without `from`, a page from the middle is not a chain from genesis.
    expect(verifyAuditChain(page)).toMatchObject({ ok: false, seq: 1 });
  });
});

describe("canonical hashing", () => {
  const base: Omit<AuditEntry, "hash"> = {
    shard: "admin",
    seq: 1,
    at: 1_700_000_000_000,
    actor: "ops",
    event: "secret.update",
    workload: "w1",
    keyId: "disk",
    version: 2,
    session: null,
    ok: true,
    reason: null,
    details: { b: 1, a: { d: [1, "x"], c: null } },
    prevHash: GENESIS_HASH,
  };

  const sha256Hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

  it("matches a known answer: SHA-256 (node:crypto) of sorted-key JSON with v: 2 and the shard", () => {
    const canonical =
      '{"actor":"ops","at":1700000000000,"details":{"a":{"c":null,"d":[1,"x"]},"b":1},"event":"secret.update","keyId":"disk","ok":true,' +
      `"prevHash":"${GENESIS_HASH}","reason":null,"seq":1,"session":null,"shard":"admin","v":2,"version":2,"workload":"w1"}`;
    // The test's own canonical form (stable(): sorted keys at every depth) agrees with the literal.
    expect(stable({ ...base, v: 2 })).toBe(canonical);
    expect(hashAuditEntry(base)).toBe(sha256Hex(canonical));
    // A session shard's entry, with a session id and non-ASCII text (hashed as UTF-8).
    const entry = { ...base, shard: "session/4f1c0e9a2b7d", seq: 7, session: "4f1c0e9a2b7d", actor: "guest", event: "attest", ok: false, reason: "tcb-too-old", details: { note: "é—✓", z: [true, false], a: -0.5 }, prevHash: "ab".repeat(32) };
    const canonical2 =
      '{"actor":"guest","at":1700000000000,"details":{"a":-0.5,"note":"é—✓","z":[true,false]},"event":"attest","keyId":"disk","ok":false,' +
      `"prevHash":"${"ab".repeat(32)}","reason":"tcb-too-old","seq":7,"session":"4f1c0e9a2b7d","shard":"session/4f1c0e9a2b7d","v":2,"version":2,"workload":"w1"}`;
    expect(stable({ ...entry, v: 2 })).toBe(canonical2);
    expect(hashAuditEntry(entry)).toBe(sha256Hex(canonical2));
    // The previous format (v: 1, no shard) is not accepted as the same hash.
    const v1 = canonical.replace(',"shard":"admin","v":2,', ',"v":1,');
    expect(v1).not.toContain("shard");
    expect(hashAuditEntry(base)).not.toBe(sha256Hex(v1));
    // appendAuditEntry stores exactly that hash.
    const { seq: _s, prevHash: _p, ...fields } = base;
    expect(appendAuditEntry(null, fields)).toEqual({ ...base, hash: sha256Hex(canonical) });
  });

  it("does not depend on key order inside details, at any depth, nor on the order of the entry's own keys", () => {
    const reordered = { ...base, details: { a: { c: null, d: [1, "x"] }, b: 1 } };
    const reversedEntry = Object.fromEntries(Object.entries(reordered).reverse()) as unknown as typeof base;
    const h = hashAuditEntry(base);
    expect(hashAuditEntry(reordered)).toBe(h);
    expect(hashAuditEntry(reversedEntry)).toBe(h);
    const deep1 = { ...base, details: { x: { y: { z: 1, w: [{ p: 1, q: 2 }] }, v: 2 } } };
    const deep2 = { ...base, details: { x: { v: 2, y: { w: [{ q: 2, p: 1 }], z: 1 } } } };
    expect(hashAuditEntry(deep1)).toBe(hashAuditEntry(deep2));
    // An entry built with reordered details verifies against the original hash.
    const row = appendAuditEntry(null, { ...fieldsOf(0), details: { one: 1, two: { b: 2, a: 1 } } });
    expect(verifyAuditChain([{ ...row, details: { two: { a: 1, b: 2 }, one: 1 } }])).toMatchObject({ ok: true });
  });

  it("depends on array order, value types, and which field a value is in", () => {
    const h = hashAuditEntry(base);
    const variants: Omit<AuditEntry, "hash">[] = [
      { ...base, details: { b: 1, a: { d: ["x", 1], c: null } } },
      { ...base, details: { b: "1", a: { d: [1, "x"], c: null } } },
      { ...base, details: { b: 1, a: { d: [1, "x"] } } },
      { ...base, details: { b: 1, a: { d: [1, "x"], c: "null" } } },
      { ...base, details: { b: 1, a: { d: [1, "x", null], c: null } } },
      { ...base, details: { b: 1, a: { d: [[1, "x"]], c: null } } },
      { ...base, actor: "secret.update", event: "ops" },
      { ...base, workload: "disk", keyId: "w1" },
      { ...base, workload: "null" },
      { ...base, session: "" },
      { ...base, version: null },
      { ...base, version: 20 },
      { ...base, seq: 2 },
      { ...base, prevHash: "f".repeat(64) },
      { ...base, ok: 1 as unknown as boolean },
      { ...base, shard: "session/4f1c0e9a2b7d" },
      { ...base, shard: "Admin" },
      { ...base, shard: "" },
      { ...base, shard: "w1", workload: "admin" },
      { ...base, shard: "session/x", session: "x" },
      { ...base, session: "admin" },
    ];
    const hashes = variants.map((v) => hashAuditEntry(v));
    for (const [i, other] of hashes.entries()) expect(other, `variant ${i}`).not.toBe(h);
    expect(new Set(hashes).size).toBe(variants.length);
  });

  it("string contents cannot imitate structure", () => {
    const a = hashAuditEntry({ ...base, details: { a: "b", c: "d" } });
    const b = hashAuditEntry({ ...base, details: { a: 'b","c":"d' } });
    const c = hashAuditEntry({ ...base, details: { 'a":"b","c': "d" } });
    const d = hashAuditEntry({ ...base, actor: 'ops","event":"x', event: "secret.update" });
    const e = hashAuditEntry({ ...base, shard: 'admin","v":1,"x":"' });
    expect(new Set([a, b, c, d, e, hashAuditEntry(base)]).size).toBe(6);
  });

  it("a key whose value is undefined counts as absent, as it is once stored as JSON", () => {
    const withUndefined = { ...base, details: { ...base.details, gone: undefined } };
    expect(hashAuditEntry(withUndefined)).toBe(hashAuditEntry(base));
  });

  it("covers only the entry's fields: an extra property on the row does not change the hash", () => {
    const extra = { ...base, v: 1, somethingElse: "x" } as unknown as typeof base;
    expect(hashAuditEntry(extra)).toBe(hashAuditEntry(base));
  });
});

describe("properties", () => {
  const M = 12;
  let small: AuditEntry[];
  let smallHead: Head;
  beforeAll(() => {
    small = buildChain(M);
    smallHead = headOf(small);
  });

  type Field = keyof AuditEntry;
  const json = fc.jsonValue({ maxDepth: 3 });
  const replacement: Record<Field, fc.Arbitrary<unknown>> = {
    shard: fc.oneof(fc.string(), fc.constantFrom(ADMIN, SESSION, "session/", "Admin", "admin ")),
    seq: fc.integer({ min: -5, max: 100 }),
    at: fc.oneof(fc.integer(), fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
    actor: fc.oneof(fc.string(), fc.constantFrom("guest", "ops-0@example", "ops-1@example", "token", "jwt:/ops-0@example")),
    event: fc.oneof(fc.string(), fc.constantFrom(...EVENTS)),
    workload: fc.option(fc.string(), { nil: null }),
    keyId: fc.option(fc.string(), { nil: null }),
    version: fc.option(fc.integer({ min: 0, max: 60 }), { nil: null }),
    session: fc.option(fc.string(), { nil: null }),
    ok: fc.boolean(),
    reason: fc.option(fc.string(), { nil: null }),
    details: fc.oneof(
      fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 5 }),
      fc.integer({ min: 0, max: 300 }).map((snp) => ({ __nestedSnp: snp })),
    ),
    prevHash: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string()),
    hash: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string()),
  };
  const fields = Object.keys(replacement) as Field[];

  /** Applies a replacement; `__nestedSnp` changes one nested value inside the existing details. */
  function apply(row: AuditEntry, field: Field, value: unknown): void {
    if (field === "details" && value !== null && typeof value === "object" && "__nestedSnp" in value) {
      (row.details.nested as { tcb: { snp: number } }).tcb.snp = (value as { __nestedSnp: number }).__nestedSnp;
    } else {
      (row as unknown as Record<string, unknown>)[field] = value;
    }
  }

  it("mutating one field of one row (no no-ops) fails verification at that row", () => {
    const mutation = fc.constantFrom(...fields).chain((field) => fc.tuple(fc.constant(field), replacement[field]));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: M - 1 }), mutation, fc.integer({ min: 1, max: M }), (k, [field, value], w) => {
        const tampered = clone(small);
        apply(tampered[k]!, field, value);
        fc.pre(stable(tampered[k]) !== stable(small[k]));
        const expected = { ok: false, seq: k + 1 };
        // Row 1 sets the shard being read, so only a later row's changed shard makes it a stranger.
        const reason = field === "seq" ? /missing/ : field === "prevHash" ? /does not follow/ : field === "shard" && k > 0 ? /belongs to another shard/ : /was altered/;
        const verdict = verifyAuditChain(tampered);
        expect(verdict).toMatchObject(expected);
        expect(verdict.ok === false && verdict.reason).toMatch(reason);
        expect(verifyAuditChain(tampered, { witness: smallHead })).toEqual(verdict);
        // Any witness, lagging or not, gives the same verdict: the rows before k agree with it.
        expect(verifyAuditChain(tampered, { witness: witnessAt(small, w) })).toEqual(verdict);
        // Paged, the same row fails; a moved row opening a page (k = 5, 10) reads as altered rather than foreign.
        const paged = verifyPaged(tampered, 5, smallHead);
        if (field === "shard" && k % 5 === 0) expect(paged).toEqual({ ok: false, seq: k + 1, reason: `row ${k + 1} was altered` });
        else expect(paged).toEqual(verdict);
      }),
      { numRuns: 400 },
    );
  });

  it("deleting any row or swapping any two rows fails at the first affected row", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: M - 1 }), fc.integer({ min: 0, max: M - 1 }), (i, j) => {
        if (i === j) {
          const gone = small.filter((_, x) => x !== i);
          expect(verifyAuditChain(gone, { witness: smallHead })).toMatchObject({ ok: false, seq: i + 1 });
          expect(verifyAuditChain(gone, { witness: witnessAt(small, i + 1) })).toMatchObject({ ok: false, seq: i + 1 });
        } else {
          const swapped = [...small];
          [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
          expect(verifyAuditChain(swapped)).toMatchObject({ ok: false, seq: Math.min(i, j) + 1 });
        }
      }),
      { numRuns: 200 },
    );
  });

  it("truncating to any length passes against a witness at or before the cut and fails against one after it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: M }), fc.integer({ min: 1, max: M }), fc.integer({ min: 1, max: 5 }), (end, w, pageSize) => {
        const cut = small.slice(0, end);
        const witness = witnessAt(small, w);
        const whole = verifyAuditChain(cut, { witness });
        if (end >= w) expect(whole).toEqual({ ok: true, count: end, head: end ? headOf(cut) : null });
        else expect(whole).toEqual({ ok: false, seq: end + 1, reason: `the log ends at row ${end} but row ${w} was witnessed` });
        if (end) expect(verifyPaged(cut, pageSize, witness)).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it("any chain of random entries verifies, in one piece and page by page", () => {
    const entry = fc.record({
      at: fc.integer({ min: 0, max: 2 ** 47 }),
      actor: fc.string(),
      event: fc.string(),
      workload: fc.option(fc.string(), { nil: null }),
      keyId: fc.option(fc.string(), { nil: null }),
      version: fc.option(fc.nat(), { nil: null }),
      session: fc.option(fc.string(), { nil: null }),
      ok: fc.boolean(),
      reason: fc.option(fc.string(), { nil: null }),
      details: fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 4 }),
    });
    const shard = fc.oneof(fc.constantFrom(ADMIN, SESSION), fc.string().map((id) => `session/${id}`), fc.string());
    fc.assert(
      fc.property(shard, fc.array(entry, { maxLength: 8 }), fc.integer({ min: 1, max: 4 }), fc.nat(), (s, entries, pageSize, pick) => {
        const chain: AuditEntry[] = [];
        for (const e of entries) chain.push(appendAuditEntry(chain.at(-1) ?? null, { ...e, shard: s }));
        expect(chain.every((r) => r.shard === s)).toBe(true);
        const h = chain.length ? headOf(chain) : null;
        const whole = verifyAuditChain(chain, { witness: h });
        expect(whole).toEqual({ ok: true, count: chain.length, head: h });
        if (chain.length) {
          expect(verifyPaged(chain, pageSize, h)).toEqual(whole);
          // Any earlier witness passes too (it lags).
          expect(verifyAuditChain(chain, { witness: witnessAt(chain, (pick % chain.length) + 1) })).toEqual(whole);
        }
        // As stored and read back (JSON), too.
        expect(verifyAuditChain(JSON.parse(JSON.stringify(chain)) as AuditEntry[], { witness: h })).toMatchObject({ ok: true });
      }),
      { numRuns: 200 },
    );
  });
});
