// The audit log's hash chain (src/audit/chain.ts): altering, deleting, reordering or inserting rows breaks
// the chain at the first affected row; the writer's head exposes a truncated or rewritten tail; paging
// with `from` agrees with whole-log verification; and the hash is canonical (key order inside details
// does not matter) and pinned by a known answer.

import { createHash } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { appendAuditEntry, GENESIS_HASH, hashAuditEntry, verifyAuditChain, type AuditEntry, type AuditVerdict } from "../../src/audit/chain";

type Fields = Omit<AuditEntry, "seq" | "prevHash" | "hash">;
type Head = { seq: number; hash: string };

const EVENTS = ["attest", "secret.release", "secret.update", "workload.register", "admin.read", "keys.rewrap"];

function fieldsOf(i: number): Fields {
  const ok = i % 7 !== 3;
  return {
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

async function buildChain(n: number): Promise<AuditEntry[]> {
  const rows: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    const prev = rows.at(-1);
    rows.push(await appendAuditEntry(prev ? { seq: prev.seq, hash: prev.hash } : null, fieldsOf(i)));
  }
  return rows;
}

/** Recomputes seq links and hashes from `start` (0-based) on, as a forger with write access to D1 would. */
async function rechain(rows: AuditEntry[], start: number): Promise<AuditEntry[]> {
  const out = rows.slice(0, start);
  for (const row of rows.slice(start)) {
    const prev = out.at(-1);
    const { seq: _s, prevHash: _p, hash: _h, ...fields } = row;
    out.push(await appendAuditEntry(prev ? { seq: prev.seq, hash: prev.hash } : null, fields));
  }
  return out;
}

const clone = (rows: readonly AuditEntry[]) => structuredClone(rows) as AuditEntry[];
const headOf = (rows: readonly AuditEntry[]): Head => ({ seq: rows.at(-1)!.seq, hash: rows.at(-1)!.hash });

/** Verifies page by page the way the CLI does: `from` chains pages, the head is checked on the last one only. */
async function verifyPaged(rows: readonly AuditEntry[], pageSize: number, head?: Head | null): Promise<AuditVerdict> {
  let from: Head | undefined;
  let count = 0;
  for (let i = 0; ; i += pageSize) {
    const page = rows.slice(i, i + pageSize);
    const last = i + pageSize >= rows.length;
    const verdict = await verifyAuditChain(page, { ...(from && { from }), ...(last && head !== undefined && { head }) });
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

beforeAll(async () => {
  rows = await buildChain(N);
  head = headOf(rows);
});

describe("a well-formed chain", () => {
  it("links seq 1..50 from the genesis hash, each hash covering its row", async () => {
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(rows[0]!.prevHash).toBe(GENESIS_HASH);
    expect(GENESIS_HASH).toMatch(/^0{64}$/);
    for (const [i, row] of rows.entries()) {
      expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
      if (i > 0) expect(row.prevHash).toBe(rows[i - 1]!.hash);
      const { hash, ...body } = row;
      expect(await hashAuditEntry(body)).toBe(hash);
    }
    expect(new Set(rows.map((r) => r.hash)).size).toBe(N);
  });

  it("verifies, with and without the writer's head", async () => {
    expect(await verifyAuditChain(rows, { head })).toEqual({ ok: true, count: N, head });
    expect(await verifyAuditChain(rows)).toEqual({ ok: true, count: N, head });
  });

  it("appendAuditEntry does not mutate its input and keeps every field", async () => {
    const fields = fieldsOf(7);
    const before = structuredClone(fields);
    const e = await appendAuditEntry({ seq: 41, hash: "ab".repeat(32) }, fields);
    expect(fields).toEqual(before);
    expect(e).toMatchObject({ ...before, seq: 42, prevHash: "ab".repeat(32) });
  });

  it("an empty log: verifies with a null head, fails against a non-empty head, and an empty page after `from` is fine", async () => {
    expect(await verifyAuditChain([])).toEqual({ ok: true, count: 0, head: null });
    expect(await verifyAuditChain([], { head: null })).toEqual({ ok: true, count: 0, head: null });
    expect(await verifyAuditChain([], { head: { seq: 1, hash: rows[0]!.hash } })).toMatchObject({ ok: false, seq: 1 });
    expect(await verifyAuditChain([], { from: head, head })).toEqual({ ok: true, count: 0, head });
    expect(await verifyAuditChain([], { from: { seq: 49, hash: rows[48]!.hash }, head })).toMatchObject({ ok: false, seq: 50 });
    // Rows exist but the writer says the log is empty.
    expect(await verifyAuditChain(rows.slice(0, 2), { head: null })).toMatchObject({ ok: false });
  });

  it("survives the storage round trip (ok as 0/1 → boolean, details as a JSON string)", async () => {
    const stored = rows.map((r) => ({ ...r, ok: r.ok ? 1 : 0, details: JSON.stringify(r.details) }));
    const read: AuditEntry[] = stored.map((r) => ({ ...r, ok: r.ok === 1, details: JSON.parse(r.details) as Record<string, unknown> }));
    expect(await verifyAuditChain(read, { head })).toEqual({ ok: true, count: N, head });
    expect(await verifyAuditChain(JSON.parse(JSON.stringify(rows)) as AuditEntry[], { head })).toMatchObject({ ok: true });
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

  it.each(mutations)("%s", async (_name, mutate) => {
    for (const k of ks) {
      const tampered = clone(rows);
      mutate(tampered[k - 1]!);
      expect(stable(tampered[k - 1])).not.toBe(stable(rows[k - 1]));
      expect(await verifyAuditChain(tampered), `row ${k}`).toEqual({ ok: false, seq: k, reason: `row ${k} was altered` });
      expect(await verifyAuditChain(tampered, { head })).toMatchObject({ ok: false, seq: k });
    }
  });

  it("a changed prevHash or seq is caught at that row too", async () => {
    for (const k of ks) {
      const relinked = clone(rows);
      relinked[k - 1]!.prevHash = k === 1 ? rows[0]!.hash : GENESIS_HASH;
      expect(await verifyAuditChain(relinked)).toEqual({ ok: false, seq: k, reason: `row ${k} does not follow the previous row` });
      const renumbered = clone(rows);
      renumbered[k - 1]!.seq = k + 100;
      expect(await verifyAuditChain(renumbered)).toMatchObject({ ok: false, seq: k, reason: expect.stringMatching(/missing/) });
    }
  });

  it("re-hashing only the altered row moves the failure to the next row", async () => {
    const k = 20;
    const tampered = clone(rows);
    tampered[k - 1]!.actor = "someone-else";
    const { hash: _h, ...body } = tampered[k - 1]!;
    tampered[k - 1]!.hash = await hashAuditEntry(body);
    expect(await verifyAuditChain(tampered)).toEqual({ ok: false, seq: k + 1, reason: `row ${k + 1} does not follow the previous row` });
  });

  it("re-hashing the whole tail after the alteration is caught only by the writer's head", async () => {
    const k = 30;
    const tampered = clone(rows);
    tampered[k - 1]!.ok = !tampered[k - 1]!.ok;
    const forged = await rechain(tampered, k - 1);
    expect(await verifyAuditChain(forged)).toMatchObject({ ok: true, count: N });
    expect(await verifyAuditChain(forged, { head })).toMatchObject({ ok: false, seq: N + 1 });
    expect(await verifyPaged(forged, 10, head)).toMatchObject({ ok: false, seq: N + 1 });
  });
});

describe("deleting, reordering and inserting rows", () => {
  it("deleting row k fails at k", async () => {
    for (const k of [1, 2, 25, 49]) {
      const gone = rows.filter((r) => r.seq !== k);
      expect(await verifyAuditChain(gone)).toEqual({ ok: false, seq: k, reason: `row ${k} is missing (found ${k + 1} next)` });
      expect(await verifyAuditChain(gone, { head })).toMatchObject({ ok: false, seq: k });
    }
    // Deleting the last row is a truncation: only the head shows it.
    const noLast = rows.slice(0, -1);
    expect(await verifyAuditChain(noLast)).toMatchObject({ ok: true, count: N - 1 });
    expect(await verifyAuditChain(noLast, { head })).toMatchObject({ ok: false, seq: N });
  });

  it("deleting row k and renumbering the rest fails at k (the link is broken)", async () => {
    const k = 12;
    const renumbered = clone(rows.filter((r) => r.seq !== k)).map((r) => (r.seq > k ? { ...r, seq: r.seq - 1 } : r));
    expect(await verifyAuditChain(renumbered)).toEqual({ ok: false, seq: k, reason: `row ${k} does not follow the previous row` });
  });

  it("swapping two rows fails at the first of them", async () => {
    for (const [i, j] of [[0, 1], [24, 25], [48, 49], [3, 40], [0, 49]] as const) {
      const swapped = [...rows];
      [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
      expect(await verifyAuditChain(swapped), `${i + 1}<->${j + 1}`).toMatchObject({ ok: false, seq: i + 1 });
    }
    // Even with their seq numbers swapped back, the links do not fit.
    const relabelled = clone(rows);
    [relabelled[9], relabelled[10]] = [{ ...relabelled[10]!, seq: 10 }, { ...relabelled[9]!, seq: 11 }];
    expect(await verifyAuditChain(relabelled)).toMatchObject({ ok: false, seq: 10 });
  });

  it("a duplicated row, or a row inserted with a recomputed tail, is caught", async () => {
    const dup = [...rows.slice(0, 10), rows[9]!, ...rows.slice(10)];
    expect(await verifyAuditChain(dup)).toMatchObject({ ok: false, seq: 11 });
    const inserted = [...rows.slice(0, 10), { ...rows[9]!, actor: "inserted" }, ...rows.slice(10)];
    const forged = await rechain(inserted, 10);
    expect(await verifyAuditChain(forged)).toMatchObject({ ok: true, count: N + 1 });
    expect(await verifyAuditChain(forged, { head })).toMatchObject({ ok: false, seq: N + 2 });
  });

  it("truncating the last 3 rows passes without the head and fails with it", async () => {
    const truncated = rows.slice(0, N - 3);
    expect(await verifyAuditChain(truncated)).toEqual({ ok: true, count: N - 3, head: headOf(truncated) });
    expect(await verifyAuditChain(truncated, { head })).toEqual({ ok: false, seq: N - 2, reason: `the log ends at row ${N - 3} but its writer's head is row ${N}` });
    expect(await verifyPaged(truncated, 10, head)).toMatchObject({ ok: false, seq: N - 2 });
  });

  it("a head whose seq matches but whose hash does not is refused", async () => {
    expect(await verifyAuditChain(rows, { head: { seq: N, hash: rows[N - 2]!.hash } })).toMatchObject({ ok: false, seq: N + 1 });
    // A head behind the rows (rows appended past the head) is refused too.
    expect(await verifyAuditChain(rows, { head: headOf(rows.slice(0, N - 1)) })).toMatchObject({ ok: false });
  });
});

describe("page-by-page verification with `from`", () => {
  const sizes = [1, 3, 7, 10, 16, 25, 49, 50, 64];

  it.each(sizes)("pages of %i give the same verdict as the whole log", async (size) => {
    expect(await verifyPaged(rows, size, head)).toEqual(await verifyAuditChain(rows, { head }));
    expect(await verifyPaged(rows, size)).toEqual({ ok: true, count: N, head });
  });

  it.each(sizes)("pages of %i fail at the same row and for the same reason as the whole log", async (size) => {
    const cases: AuditEntry[][] = [];
    const altered = clone(rows);
    altered[22]!.details = { ...altered[22]!.details, n: -1 };
    cases.push(altered);
    cases.push(rows.filter((r) => r.seq !== 31));
    const swapped = [...rows];
    [swapped[10], swapped[11]] = [swapped[11]!, swapped[10]!];
    cases.push(swapped);
    cases.push(rows.slice(0, N - 3));
    for (const c of cases) {
      const whole = await verifyAuditChain(c, { head });
      expect(whole.ok).toBe(false);
      expect(await verifyPaged(c, size, head)).toEqual(whole);
    }
  });

  it("`from` must be the real previous row", async () => {
    const page = rows.slice(10, 20);
    expect(await verifyAuditChain(page, { from: { seq: 10, hash: rows[9]!.hash } })).toEqual({ ok: true, count: 10, head: headOf(page) });
    expect(await verifyAuditChain(page, { from: { seq: 10, hash: rows[8]!.hash } })).toEqual({ ok: false, seq: 11, reason: "row 11 does not follow the previous row" });
    expect(await verifyAuditChain(page, { from: { seq: 9, hash: rows[9]!.hash } })).toMatchObject({ ok: false, seq: 10, reason: expect.stringMatching(/missing/) });
    // Without `from`, a page from the middle is not a chain from genesis.
    expect(await verifyAuditChain(page)).toMatchObject({ ok: false, seq: 1 });
  });
});

describe("canonical hashing", () => {
  const base: Omit<AuditEntry, "hash"> = {
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

  it("matches a known answer: SHA-256 of sorted-key JSON with v: 1", async () => {
    const canonical =
      '{"actor":"ops","at":1700000000000,"details":{"a":{"c":null,"d":[1,"x"]},"b":1},"event":"secret.update","keyId":"disk","ok":true,' +
      `"prevHash":"${GENESIS_HASH}","reason":null,"seq":1,"session":null,"v":1,"version":2,"workload":"w1"}`;
    expect(await hashAuditEntry(base)).toBe(createHash("sha256").update(canonical, "utf8").digest("hex"));
  });

  it("does not depend on key order inside details, at any depth, nor on the order of the entry's own keys", async () => {
    const reordered = { ...base, details: { a: { c: null, d: [1, "x"] }, b: 1 } };
    const reversedEntry = Object.fromEntries(Object.entries(reordered).reverse()) as unknown as typeof base;
    const h = await hashAuditEntry(base);
    expect(await hashAuditEntry(reordered)).toBe(h);
    expect(await hashAuditEntry(reversedEntry)).toBe(h);
    const deep1 = { ...base, details: { x: { y: { z: 1, w: [{ p: 1, q: 2 }] }, v: 2 } } };
    const deep2 = { ...base, details: { x: { v: 2, y: { w: [{ q: 2, p: 1 }], z: 1 } } } };
    expect(await hashAuditEntry(deep1)).toBe(await hashAuditEntry(deep2));
    // An entry built with reordered details verifies against the original hash.
    const row = await appendAuditEntry(null, { ...fieldsOf(0), details: { one: 1, two: { b: 2, a: 1 } } });
    expect(await verifyAuditChain([{ ...row, details: { two: { a: 1, b: 2 }, one: 1 } }])).toMatchObject({ ok: true });
  });

  it("depends on array order, value types, and which field a value is in", async () => {
    const h = await hashAuditEntry(base);
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
    ];
    const hashes = await Promise.all(variants.map((v) => hashAuditEntry(v)));
    for (const [i, other] of hashes.entries()) expect(other, `variant ${i}`).not.toBe(h);
    expect(new Set(hashes).size).toBe(variants.length);
  });

  it("string contents cannot imitate structure", async () => {
    const a = await hashAuditEntry({ ...base, details: { a: "b", c: "d" } });
    const b = await hashAuditEntry({ ...base, details: { a: 'b","c":"d' } });
    const c = await hashAuditEntry({ ...base, details: { 'a":"b","c': "d" } });
    const d = await hashAuditEntry({ ...base, actor: 'ops","event":"x', event: "secret.update" });
    expect(new Set([a, b, c, d, await hashAuditEntry(base)]).size).toBe(5);
  });

  it("a key whose value is undefined counts as absent, as it is once stored as JSON", async () => {
    const withUndefined = { ...base, details: { ...base.details, gone: undefined } };
    expect(await hashAuditEntry(withUndefined)).toBe(await hashAuditEntry(base));
  });
});

describe("properties", () => {
  const M = 12;
  let small: AuditEntry[];
  let smallHead: Head;
  beforeAll(async () => {
    small = await buildChain(M);
    smallHead = headOf(small);
  });

  type Field = keyof AuditEntry;
  const json = fc.jsonValue({ maxDepth: 3 });
  const replacement: Record<Field, fc.Arbitrary<unknown>> = {
    seq: fc.integer({ min: -5, max: 100 }),
    at: fc.oneof(fc.integer(), fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
    actor: fc.oneof(fc.string(), fc.constantFrom("guest", "ops-0@example", "ops-1@example", "admin-token")),
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

  it("mutating one field of one row (no no-ops) fails verification at that row", async () => {
    const mutation = fc.constantFrom(...fields).chain((field) => fc.tuple(fc.constant(field), replacement[field]));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: M - 1 }), mutation, async (k, [field, value]) => {
        const tampered = clone(small);
        apply(tampered[k]!, field, value);
        fc.pre(stable(tampered[k]) !== stable(small[k]));
        const expected = { ok: false, seq: k + 1 };
        const reason = field === "seq" ? /missing/ : field === "prevHash" ? /does not follow/ : /was altered/;
        const verdict = await verifyAuditChain(tampered);
        expect(verdict).toMatchObject(expected);
        expect(verdict.ok === false && verdict.reason).toMatch(reason);
        expect(await verifyAuditChain(tampered, { head: smallHead })).toMatchObject(expected);
        expect(await verifyPaged(tampered, 5, smallHead)).toEqual(verdict);
      }),
      { numRuns: 400 },
    );
  });

  it("deleting any row or swapping any two rows fails at the first affected row", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: M - 1 }), fc.integer({ min: 0, max: M - 1 }), async (i, j) => {
        if (i === j) {
          const gone = small.filter((_, x) => x !== i);
          expect(await verifyAuditChain(gone, { head: smallHead })).toMatchObject({ ok: false, seq: i + 1 });
        } else {
          const swapped = [...small];
          [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
          expect(await verifyAuditChain(swapped)).toMatchObject({ ok: false, seq: Math.min(i, j) + 1 });
        }
      }),
      { numRuns: 200 },
    );
  });

  it("any chain of random entries verifies, in one piece and page by page", async () => {
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
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 8 }), fc.integer({ min: 1, max: 4 }), async (entries, pageSize) => {
        const chain: AuditEntry[] = [];
        for (const e of entries) chain.push(await appendAuditEntry(chain.at(-1) ?? null, e));
        const h = chain.length ? headOf(chain) : null;
        const whole = await verifyAuditChain(chain, { head: h });
        expect(whole).toEqual({ ok: true, count: chain.length, head: h });
        if (chain.length) expect(await verifyPaged(chain, pageSize, h)).toEqual(whole);
        // As stored and read back (JSON), too.
        expect(await verifyAuditChain(JSON.parse(JSON.stringify(chain)) as AuditEntry[], { head: h })).toMatchObject({ ok: true });
      }),
      { numRuns: 200 },
    );
  });
});
