// High-volume property tests of the pure parsers behind the HTTP routes, without HTTP (test/workers/fuzz.test.ts
// drives the same inputs through the Worker, a few hundred requests only: see RUNS_PER_GROUP there).
// For every parser: anything thrown is the module's own typed error (an escaping Error, TypeError or
// RangeError would be a 500), the answer is deterministic, and valid inputs are accepted with the right value.
//
// Reached: certificatesFromChainField and the decoders under it (pemBlocks, certificatesFrom, parseCertTable),
// parseCertificate (the DER reader, on structurally edited AMD certificates), parseSevRequest and the SEV
// certificate codecs under it, parseSevPolicy, parseLaunchMeasurement, parseSnpPolicy, checkTeeConfig, and
// body.ts's parse/validate with the exported WorkloadId, SecretValue and LaunchMeasurement and the inline schemas
// legacy.ts hands to parse (z.unknown() for extra-params, z.record(z.string(), z.unknown()) for tee-evidence).
// Not reached: the body schemas that are module-private (legacy.ts RegisterBody, AuthBody, SnpRequest,
// AttestBody, SnpEvidenceJson; admin.ts Page, AuditPage, HeadsPage, WorkloadChange, SecretBody); fuzz.test.ts
// reaches them over HTTP.

import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as asn1js from "asn1js";
import fc from "fast-check";
import * as z from "zod/mini";
import { describe, expect, it } from "vitest";
import { buf, concat, fromBase64Loose, fromHex, toBase64, toHex, utf8 } from "../../src/crypto/bytes";
import { PemError, pemBlocks, toPem } from "../../src/crypto/pem";
import { Refused, TeeError } from "../../src/errors";
import { LaunchMeasurement, parse, SecretValue, validate, WorkloadId } from "../../src/http/body";
import { MAX_PROBLEM_BYTES, problemBody } from "../../src/http/problem";
import { checkTeeConfig } from "../../src/http/tee-config";
import { certificatesFromChainField } from "../../src/session/evidence";
import { parseLaunchMeasurement, parseSevPolicy, parseSevRequest } from "../../src/tee/sev/json";
import { decodeCaCertificate, decodeSevCertificate, encodeCaCertificate, encodeSevCertificate } from "../../src/tee/sev/certs";
import { Algo, SEV_CERT_SIZE, SevError, Usage } from "../../src/tee/sev/types";
import { CERT_TABLE_GUIDS, certificatesFrom, parseCertTable, type CertTableEntry } from "../../src/tee/snp/certtable";
import { parseSnpPolicy, PolicyError } from "../../src/tee/snp/policy";
import { decode, readAs, type Node as DerNode } from "../../src/tee/snp/der";
import { VerificationError } from "../../src/tee/snp/types";
import { parseCertificate } from "../../src/tee/snp/x509";
import { FIXTURES, fixture } from "../helpers/fixtures";
import { createSyntheticChip } from "../../lab/synthetic-amd";

/**
 * Runs of the cheap properties; the valid-input properties and the costlier ones get a half or a third. Keep it
 * divisible by 6: fast-check never ends a property whose numRuns is fractional.
 */
const RUNS = 900;
/**
 * Each parseSevRequest validates ~11,500 byte values through zod (~1.3 ms), so its damaged-input property gets
 * fewer runs, and asks twice (the determinism check) on every fourth run only.
 */
const SEV_RUNS = 300;
/** Damaged certificates; determinism is checked on every fourth run. */
const DER_RUNS = RUNS;

type Verdict<T> = { ok: true; value: T } | { ok: false; error: { name: string; code?: string; message: string } };

/** Runs `f`; a typed error (per `typed`) is a verdict, anything else escapes and fails the property. */
function verdictOf<T>(f: () => T, typed: (e: unknown) => boolean): Verdict<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (!typed(e)) throw e;
    const err = e as Error & { code?: string };
    return { ok: false, error: { name: err.constructor.name, code: err.code, message: err.message } };
  }
}

/** A verdict as text (bytes as hex): comparing it is far cheaper than a deep equality over byte arrays. */
const canonical = (value: unknown) => JSON.stringify(value, (_, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") : typeof v === "bigint" ? `${v}n` : v));

/** The verdict, checked to be the same when asked twice (unless `twice` is false). */
function judged<T>(f: () => T, typed: (e: unknown) => boolean, twice = true): Verdict<T> {
  const first = verdictOf(f, typed);
  if (!twice) return first;
  const again = verdictOf(f, typed);
  if (canonical(again) !== canonical(first)) expect(canonical(again)).toBe(canonical(first));
  return first;
}

/** A few random insertions, deletions and overwrites: the inputs most likely to slip past a parser. */
function mutated(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(text, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 }), fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 4 }))
    .map(([t, edits]) =>
      edits.reduce((b, [pos, kind, s]) => {
        const i = pos % (b.length + 1);
        return kind === 0 ? b.slice(0, i) + s + b.slice(i) : kind === 1 ? b.slice(0, i) + b.slice(i + 1 + s.length) : b.slice(0, i) + s + b.slice(i + s.length);
      }, t),
    );
}

const fixtureText = (path: string) => readFileSync(resolve(FIXTURES, path), "utf8");

// ---------------------------------------------------------------------------------------------------------
// SNP cert_chain

/** Real DER certificates: VCEKs, a VLEK, ASKs and ARKs. */
const DERS: Uint8Array[] = [
  fixture("snp/milan-vcek-gosevguest-for-attestation.der"),
  fixture("snp/genoa-vcek-trustee-e2e.der"),
  fixture("oak/turin-vcek-oak-turin_oc.der"),
  fixture("aws/milan-vlek-aws-us-east-2-trustee-test-vlek.der"),
  ...pemBlocks(fixtureText("amd-roots/canonical/milan-ask.pem")),
  ...pemBlocks(fixtureText("amd-roots/canonical/genoa-ark.pem")),
];
const GUID_BYTES = Object.fromEntries(Object.entries(CERT_TABLE_GUIDS).map(([k, g]) => [k, fromHex(g.replaceAll("-", ""))])) as Record<keyof typeof CERT_TABLE_GUIDS, Uint8Array>;

/** A GHCB certificate table (entries, an all-zero terminator, then the blobs), written independently of the parser. */
function certTable(entries: { guid: Uint8Array; data: Uint8Array }[]): Uint8Array {
  const header = new Uint8Array((entries.length + 1) * 24);
  const dv = new DataView(header.buffer);
  let offset = header.length;
  entries.forEach(({ guid, data }, i) => {
    header.set(guid, i * 24);
    dv.setUint32(i * 24 + 16, offset, true);
    dv.setUint32(i * 24 + 20, data.length, true);
    offset += data.length;
  });
  return concat(header, ...entries.map((e) => e.data));
}

const chain = fc.array(fc.constantFrom(...DERS), { minLength: 1, maxLength: 10 });
const asPem = (ders: Uint8Array[]) => ders.map((d) => toPem(d)).join("");

/** Every form the field may legitimately take, with the certificates it names. */
const validChainField = fc.oneof<fc.Arbitrary<[string, Uint8Array[]]>[]>(
  chain.map((c) => [asPem(c), c]),
  chain.map((c) => [`# host comment\r\n${asPem(c).replaceAll("\n", "\r\n")}\n`, c]),
  fc.tuple(fc.constantFrom(...DERS), fc.boolean()).map(([d, upper]) => [upper ? toHex(d).toUpperCase() : toHex(d), [d]]),
  fc.tuple(fc.constantFrom(...DERS), fc.boolean()).map(([d, url]) => [url ? toBase64(d).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "") : toBase64(d), [d]]),
  fc
    .tuple(chain, fc.constantFrom(...(Object.keys(CERT_TABLE_GUIDS) as (keyof typeof CERT_TABLE_GUIDS)[])), fc.nat({ max: 64 }), fc.boolean())
    .map(([c, kind, padding, hex]) => {
      // Unknown GUIDs are skipped; known ones yield their DER, whatever padding follows it.
      const unknown = { guid: new Uint8Array(16).fill(0xab), data: new Uint8Array([1, 2, 3]) };
      const table = certTable([unknown, ...c.map((data) => ({ guid: GUID_BYTES[kind], data: concat(data, new Uint8Array(padding)) }))]);
      return [hex ? toHex(table) : toBase64(table), c];
    }),
  fc.tuple(chain, fc.array(fc.constantFrom("pem", "b64", "bytes", "obj-pem", "obj-bytes"), { minLength: 10, maxLength: 10 })).map(([c, forms]) => [
    JSON.stringify(
      c.map((d, i) => {
        const form = forms[i];
        return form === "pem" ? toPem(d) : form === "b64" ? toBase64(d) : form === "bytes" ? [...d] : { cert_type: "VCEK", data: form === "obj-pem" ? toPem(d) : [...d] };
      }),
    ),
    c,
  ]),
);

const chainField = fc.oneof(
  validChainField.map(([f]) => f),
  mutated(validChainField.map(([f]) => f)),
  fc.string({ maxLength: 200 }),
  fc.json(),
  fc.uint8Array({ maxLength: 300 }).map(toHex),
  fc.uint8Array({ maxLength: 300 }).map(toBase64),
  fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => [...b]), fc.jsonValue(), fc.record({ cert_type: fc.string(), data: fc.jsonValue() })), { maxLength: 4 }).map((a) => JSON.stringify(a)),
  // Tables with random headers: offsets and lengths pointing anywhere.
  fc.array(fc.tuple(fc.constantFrom(...Object.values(GUID_BYTES), new Uint8Array(16)), fc.nat(), fc.nat()), { maxLength: 4 }).chain((heads) =>
    fc.uint8Array({ maxLength: 200 }).map((tail) => {
      const h = new Uint8Array(heads.length * 24);
      heads.forEach(([g, off, len], i) => {
        h.set(g, i * 24);
        new DataView(h.buffer).setUint32(i * 24 + 16, off % 400, true);
        new DataView(h.buffer).setUint32(i * 24 + 20, len % 400, true);
      });
      return toBase64(concat(h, tail));
    }),
  ),
);

describe("certificatesFromChainField", () => {
  // Finding: the doc comment promises TeeError("snp", "evidence-malformed") "whatever the decoders underneath
  // threw", but a VerificationError from certtable.ts (a TeeError too) passes through unchanged: a malformed
  // certificate table or DER in cert_chain is answered 400 snp-cert-malformed, not evidence-malformed. Both are
  // typed 400s (never a 500), so both are accepted here.
  const typed = (e: unknown) => e instanceof TeeError && e.tee === "snp" && (e.code === "evidence-malformed" || e.code === "cert-malformed");

  it("accepts every legitimate form and yields exactly its certificates (more than 8 refused)", () => {
    fc.assert(
      fc.property(validChainField, ([field, ders]) => {
        const v = judged(() => certificatesFromChainField(field), typed);
        if (ders.length > 8) expect(v).toMatchObject({ ok: false, error: { message: "cert_chain holds more than 8 certificates" } });
        else expect(canonical(v)).toBe(canonical({ ok: true, value: ders }));
      }),
      { numRuns: RUNS / 3 },
    );
  });

  it("throws nothing but TeeError(snp, evidence-malformed or cert-malformed), deterministically, whatever the field", () => {
    fc.assert(
      fc.property(chainField, (field) => {
        const v = judged(() => certificatesFromChainField(field), typed);
        // Only an absent chain ("" or "[]") yields no certificate; any other field names at least one.
        if (v.ok) expect(v.value.length > 0 || field.trim() === "" || field.trim() === "[]").toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  // certificatesFromChainField turns any other error into "cert_chain could not be parsed"; this checks the
  // PEM decoder beneath it does not rely on that (nothing is being masked). certificatesFrom: see below.
  it("pemBlocks throws nothing but PemError", () => {
    fc.assert(
      fc.property(fc.oneof(chainField, mutated(chain.map(asPem))), (text) => {
        judged(() => pemBlocks(text), (e) => e instanceof PemError && e.message === "a CERTIFICATE block has invalid base64");
      }),
      { numRuns: RUNS / 2 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// SNP certificates: the DER reader (x509.ts on der.ts) and the GHCB certificate table (certtable.ts)

const certMalformed = (e: unknown) => e instanceof VerificationError && e.code === "cert-malformed";

/** A DER element as the fuzzer edits it: constructed (children) or primitive (content); `lengthField` replaces the encoded length. */
interface Tlv {
  tag: number;
  children?: Tlv[];
  content?: Uint8Array;
  lengthField?: number[];
}

/** Reads well-formed DER with one-byte tags (AMD's certificates) into the model; the test's own reader, not der.ts. */
function readTlv(b: Uint8Array, at = 0): { tlv: Tlv; end: number } {
  const tag = b[at]!;
  let length = b[at + 1]!;
  let p = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + b[p++]!;
  }
  const end = p + length;
  if (!(tag & 0x20)) return { tlv: { tag, content: b.slice(p, end) }, end };
  const children: Tlv[] = [];
  for (let q = p; q < end; ) {
    const child = readTlv(b, q);
    children.push(child.tlv);
    q = child.end;
  }
  return { tlv: { tag, children }, end };
}

/** The minimal (DER) length field for `n` content bytes. */
function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function encodeTlv(t: Tlv): Uint8Array {
  const body = t.children ? concat(...t.children.map(encodeTlv)) : t.content!;
  return concat(Uint8Array.of(t.tag, ...(t.lengthField ?? derLength(body.length))), body);
}

/** Every element with its parent (null for the root), the root first. */
function elements(root: Tlv): { node: Tlv; parent: Tlv | null }[] {
  const out: { node: Tlv; parent: Tlv | null }[] = [{ node: root, parent: null }];
  for (let i = 0; i < out.length; i++) for (const child of out[i]!.node.children ?? []) out.push({ node: child, parent: out[i]!.node });
  return out;
}

/** One structural edit; `at` picks among the elements it applies to (modulo their number), so any shape takes any edit. */
type TreeEdit =
  | { op: "remove" | "duplicate"; at: number }
  | { op: "insert"; at: number; node: Tlv }
  | { op: "wrap"; at: number; tag: number }
  | { op: "content"; at: number; content: Uint8Array }
  | { op: "length"; at: number; field: number[] }
  | { op: "time"; at: number; tag: number; text: string }
  | { op: "extensions"; extensions: Tlv[] };

/** Applies `edit` to `root` in place; returns the root (a new one when the root itself was wrapped). */
function applyEdit(root: Tlv, edit: TreeEdit): Tlv {
  const all = elements(root);
  const pick = <T>(list: T[], at: number): T | undefined => list[at % list.length];
  switch (edit.op) {
    case "remove":
    case "duplicate": {
      const hit = pick(all.slice(1), edit.at);
      if (!hit) return root;
      const siblings = hit.parent!.children!;
      const i = siblings.indexOf(hit.node);
      if (edit.op === "remove") siblings.splice(i, 1);
      else siblings.splice(i, 0, structuredClone(hit.node));
      return root;
    }
    case "insert": {
      const host = pick(all.filter((x) => x.node.children), edit.at)!.node;
      host.children!.splice(edit.at % (host.children!.length + 1), 0, structuredClone(edit.node));
      return root;
    }
    case "wrap": {
      const { node, parent } = pick(all, edit.at)!;
      const wrapped = { tag: edit.tag, children: [node] };
      if (!parent) return wrapped;
      parent.children![parent.children!.indexOf(node)] = wrapped;
      return root;
    }
    case "content": {
      const hit = pick(all.filter((x) => x.node.content), edit.at);
      if (hit) hit.node.content = edit.content;
      return root;
    }
    case "length":
      pick(all, edit.at)!.node.lengthField = edit.field;
      return root;
    case "time": {
      const hit = pick(all.filter((x) => x.node.tag === 0x17 || x.node.tag === 0x18), edit.at);
      if (hit) Object.assign(hit.node, { tag: edit.tag, content: utf8(edit.text) });
      return root;
    }
    case "extensions": {
      // TBSCertificate's [3] holds the SEQUENCE of extensions.
      const list = all.find((x) => x.node.tag === 0xa3)?.node.children?.[0];
      if (list?.children) list.children = structuredClone(edit.extensions);
      return root;
    }
  }
}

const asn1 = (node: asn1js.AsnType) => new Uint8Array(node.toBER(false));

/** An Extension { extnID, critical?, extnValue } in the model. */
function extension(oid: string, value: Uint8Array, critical: boolean): Tlv {
  const fields = [new asn1js.ObjectIdentifier({ value: oid }), ...(critical ? [new asn1js.Boolean({ value: true })] : []), new asn1js.OctetString({ valueHex: buf(value) })];
  return readTlv(asn1(new asn1js.Sequence({ value: fields }))).tlv;
}

// Real certificates (DERS, and trustee's VCEK with a DER-wrapped hwID) and a synthetic Turin VLEK chain, which
// no real sample covers (~250 ms of RSA key generation).
const LAB = await createSyntheticChip({ product: "Turin", vekKind: "VLEK" });
const CERT_SAMPLES = [...DERS, fixture("synthetic/trustee-test-vcek-invalid-new.der"), LAB.arkDer, LAB.askDer, LAB.vekDer];
const SAMPLE_TREES = CERT_SAMPLES.map((der) => readTlv(der).tlv);
const SAMPLE_EXTENSIONS = SAMPLE_TREES.flatMap((t) => elements(t).find((x) => x.node.tag === 0xa3)?.node.children?.[0]?.children ?? []);

const AMD_OID = "1.3.6.1.4.1.3704.1.";
/** extnValues for AMD's extensions: INTEGERs in and out of 0-255, IA5Strings, hwIDs bare or wrapped, anything. */
const extnValue = fc.oneof(
  fc.bigInt({ min: -(1n << 72n), max: 1n << 72n }).map((v) => asn1(asn1js.Integer.fromBigInt(v))),
  fc.integer({ min: 0, max: 255 }).map((v) => asn1(new asn1js.Integer({ value: v }))),
  fc.string({ unit: "binary-ascii", maxLength: 24 }).map((v) => asn1(new asn1js.IA5String({ value: v }))),
  fc.constantFrom(8, 10, 64, 66).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  fc.uint8Array({ minLength: 64, maxLength: 64 }).map((id) => concat(Uint8Array.of(0x04, 64), id)),
  fc.uint8Array({ maxLength: 80 }),
);
const randomExtension = fc
  .tuple(fc.oneof(fc.constantFrom("1", "2", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "4", "5", "6").map((arc) => AMD_OID + arc), fc.constantFrom("2.5.29.19", "2.5.29.15", "1.2.3")), extnValue, fc.boolean())
  .map(([oid, value, critical]) => extension(oid, value, critical));

/** Time texts: valid ones of any era, near-misses, and junk (written into a UTCTime or GeneralizedTime element). */
const timeText = fc.oneof(
  fc.date({ min: new Date(Date.UTC(-300, 0)), max: new Date(Date.UTC(12000, 0)), noInvalidDate: true }).map((d) => d.toISOString().replace(/[-:T]|\.\d+/g, "")),
  fc.stringMatching(/^[0-9]{10,14}(\.[0-9]{1,4})?(Z|[+-][0-9]{4})?$/),
  fc.string({ unit: fc.constantFrom(..."0123456789Z+-.: "), maxLength: 20 }),
  fc.string({ maxLength: 20 }),
);

/** Length fields: short and long forms of any value, indefinite, 2^31, more length bytes than anyone uses. */
const lengthField: fc.Arbitrary<number[]> = fc.oneof(
  fc.integer({ min: 0, max: 0x7f }).map((n) => [n]),
  fc.integer({ min: 1, max: 4 }).chain((n) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n }).map((b) => [0x80 | n, ...b])),
  fc.constantFrom<number[]>([0x80], [0x84, 0x80, 0, 0, 0], [0x84, 0xff, 0xff, 0xff, 0xff], [0x85, 1, 0, 0, 0, 0], [0x88, 0, 0, 0, 0, 0, 0, 0, 1], [0xff], [0x81, 0x05]),
);

const someTag = fc.oneof(fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x30, 0x31, 0xa0, 0xa3), fc.integer({ min: 0, max: 255 }));
const treeEdit: fc.Arbitrary<TreeEdit> = fc.oneof(
  fc.record({ op: fc.constantFrom("remove" as const, "duplicate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), node: fc.oneof(fc.record({ tag: someTag, content: fc.uint8Array({ maxLength: 40 }) }), randomExtension) }),
  fc.record({ op: fc.constant("wrap" as const), at: fc.nat(), tag: someTag }),
  fc.record({ op: fc.constant("content" as const), at: fc.nat(), content: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({ op: fc.constant("length" as const), at: fc.nat(), field: lengthField }),
  fc.record({ op: fc.constant("time" as const), at: fc.nat(), tag: fc.constantFrom(0x17, 0x18), text: timeText }),
  fc.record({ op: fc.constant("extensions" as const), extensions: fc.array(fc.oneof(fc.constantFrom(...SAMPLE_EXTENSIONS), randomExtension), { maxLength: 12 }) }),
);
/** Raw damage after encoding: a truncation or an overwritten byte. */
const byteEdit = fc.oneof(fc.record({ truncate: fc.nat() }), fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }));

/** A sample certificate after a few structural edits, then a little raw damage. */
const damagedCertificate = fc.tuple(fc.nat(), fc.array(treeEdit, { maxLength: 3 }), fc.array(byteEdit, { maxLength: 2 })).map(([i, edits, damage]) => {
  let root = structuredClone(SAMPLE_TREES[i % SAMPLE_TREES.length]!);
  for (const edit of edits) root = applyEdit(root, edit);
  let der = encodeTlv(root);
  for (const d of damage) {
    if ("truncate" in d) der = der.slice(0, d.truncate % (der.length + 1));
    else if (der.length) der[d.at % der.length] = d.value;
  }
  return der;
});

describe("parseCertificate (the DER reader)", () => {
  it("the fuzzer's TLV model re-encodes every sample byte for byte, and every sample parses", () => {
    for (const [i, der] of CERT_SAMPLES.entries()) {
      expect(toHex(encodeTlv(SAMPLE_TREES[i]!))).toBe(toHex(der));
      expect(parseCertificate(der).der).toEqual(der);
    }
  });

  it("throws nothing but VerificationError(cert-malformed), deterministically, whatever the damage", () => {
    let run = 0;
    fc.assert(
      fc.property(damagedCertificate, (der) => {
        const v = judged(() => parseCertificate(der), certMalformed, run++ % 4 === 0);
        if (v.ok) expect(toHex(v.value.der)).toBe(toHex(der));
      }),
      { numRuns: DER_RUNS },
    );
  });
});

/**
 * asn1js's reading of `der` (a BER parser, an independent oracle) as the fuzzer's model; null where it refuses,
 * "unreadable" where it throws (it does on a GeneralizedTime it cannot read, which der.ts leaves to time()).
 */
function asn1jsTree(der: Uint8Array): Tlv | null | "unreadable" {
  let decoded: ReturnType<typeof asn1js.fromBER>;
  try {
    decoded = asn1js.fromBER(buf(der), { parseEmbedded: false });
  } catch {
    return "unreadable";
  }
  const { offset, result } = decoded;
  if (offset !== der.length || result.error) return null;
  const model = (n: asn1js.BaseBlock): Tlv => {
    const { tagClass, tagNumber, isConstructed } = n.idBlock;
    const tag = ((tagClass - 1) << 6) | (isConstructed ? 0x20 : 0) | tagNumber;
    if (isConstructed) return { tag, children: (n.valueBlock as unknown as { value: asn1js.BaseBlock[] }).value.map(model) };
    return { tag, content: new Uint8Array(n.valueBeforeDecodeView.subarray(n.idBlock.blockLength + n.lenBlock.blockLength)) };
  };
  return model(result);
}

const derNodeModel = (n: DerNode): Tlv => (n.tag & 0x20 ? { tag: n.tag, children: n.children.map(derNodeModel) } : { tag: n.tag, content: new Uint8Array(n.content) });

describe("decode (der.ts), against asn1js", () => {
  it("accepts only input that asn1js reads as the same tree, and in its DER form only", () => {
    fc.assert(
      fc.property(damagedCertificate, (der) => {
        let mine: Tlv;
        try {
          mine = derNodeModel(readAs("cert-malformed", "x", () => decode(der, "x")));
        } catch (e) {
          if (!certMalformed(e)) throw e;
          return;
        }
        const theirs = asn1jsTree(der);
        if (theirs !== "unreadable") expect(theirs).toEqual(mine);
        // What it accepts is DER: re-encoded with minimal lengths, it is the same bytes.
        expect(toHex(encodeTlv(mine))).toBe(toHex(der));
      }),
      { numRuns: RUNS },
    );
  });
});

describe("hex and base64 decoders (every /attest reads its report and chain with them)", () => {
  it("fromHex decodes exactly even-length hex of either case, as Buffer does, and throws TypeError on anything else", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => toHex(b)), fc.uint8Array({ maxLength: 64 }).map((b) => toHex(b).toUpperCase()), fc.string({ maxLength: 20 }), fc.stringMatching(/^[0-9a-fA-Fg\u0660]{0,12}$/)), (text) => {
        const valid = /^(?:[0-9a-fA-F]{2})*$/.test(text);
        if (valid) expect(toHex(fromHex(text))).toBe(Buffer.from(text, "hex").toString("hex"));
        else expect(() => fromHex(text)).toThrow(TypeError);
      }),
      { numRuns: RUNS },
    );
  });

  it("fromBase64Loose decodes standard or URL base64, padded or not, with whitespace, and refuses what is not", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom("std", "url", "bare", "spaced"), (bytes, form) => {
        const std = Buffer.from(bytes).toString("base64");
        const text = form === "std" ? std : form === "url" ? Buffer.from(bytes).toString("base64url") : form === "bare" ? std.replace(/=+$/, "") : std.replace(/(.{4})/g, "$1\n ");
        expect(toHex(fromBase64Loose(text))).toBe(toHex(bytes));
      }),
      { numRuns: RUNS },
    );
    for (const bad of ["a", "abcde", "ab!d", "ab=c"]) expect(() => fromBase64Loose(bad)).toThrow(TypeError);
  });
});

/** Where a header entry points: into the blob area (a blob's start or length, shifted), or at an absolute value. */
type Pointer = { blob: number; shift: number } | { value: number };
interface TableLayout {
  entries: { guid: Uint8Array; offset: Pointer; length: Pointer }[];
  terminated: boolean;
  blobs: Uint8Array[];
}
const pointer: fc.Arbitrary<Pointer> = fc.oneof(
  fc.record({ blob: fc.nat(), shift: fc.oneof(fc.constant(0), fc.integer({ min: -30, max: 30 })) }),
  fc.record({ value: fc.oneof(fc.nat({ max: 4000 }), fc.constantFrom(0, 24, 48, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1)) }),
);
/** A table layout: entries with any GUID (known, random, zero), offset and length; a terminator or none; the blobs. */
const tableLayout: fc.Arbitrary<TableLayout> = fc.record({
  entries: fc.array(fc.record({ guid: fc.oneof(fc.constantFrom(...Object.values(GUID_BYTES)), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.constant(new Uint8Array(16))), offset: pointer, length: pointer }), { maxLength: 5 }),
  terminated: fc.boolean(),
  blobs: fc.array(fc.oneof(fc.constantFrom(...DERS), fc.constantFrom(...DERS).map((d) => utf8(toPem(d))), fc.uint8Array({ maxLength: 64 })), { maxLength: 4 }),
});

/** The bytes of a layout; overlapping entries, entries past the end and huge values arise as the pointers fall. */
function tableBytes({ entries, terminated, blobs }: TableLayout): Uint8Array {
  const header = new Uint8Array((entries.length + (terminated ? 1 : 0)) * 24);
  const starts: number[] = [];
  let end = header.length;
  for (const b of blobs) {
    starts.push(end);
    end += b.length;
  }
  const u32 = (n: number) => Math.min(Math.max(n, 0), 2 ** 32 - 1);
  const resolve = (p: Pointer, of: "start" | "length") => {
    if ("value" in p) return p.value;
    const i = p.blob % Math.max(blobs.length, 1);
    return u32((of === "start" ? (starts[i] ?? header.length) : (blobs[i]?.length ?? 0)) + p.shift);
  };
  const dv = new DataView(header.buffer);
  entries.forEach(({ guid, offset, length }, i) => {
    header.set(guid, i * 24);
    dv.setUint32(i * 24 + 16, resolve(offset, "start"), true);
    dv.setUint32(i * 24 + 20, resolve(length, "length"), true);
  });
  return concat(header, ...blobs);
}

/** What parseCertTable must answer, read independently: the entries before the first all-zero one, each inside the data after the header. */
function expectedTable(bytes: Uint8Array): CertTableEntry[] | "malformed" {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const heads: { guid: string; offset: number; length: number }[] = [];
  for (let at = 0; at + 24 <= bytes.length; at += 24) {
    if (bytes.subarray(at, at + 24).every((b) => b === 0)) {
      if (heads.some(({ offset, length }) => offset < at + 24 || offset + length > bytes.length)) return "malformed";
      return heads.map(({ guid, offset, length }) => ({ guid, data: bytes.slice(offset, offset + length) }));
    }
    const guid = toHex(bytes.subarray(at, at + 16)).replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
    heads.push({ guid, offset: dv.getUint32(at + 16, true), length: dv.getUint32(at + 20, true) });
  }
  return "malformed";
}

describe("the GHCB certificate table", () => {
  it("parseCertTable answers exactly what the table says, or VerificationError(cert-malformed)", () => {
    fc.assert(
      fc.property(tableLayout, (layout) => {
        const bytes = tableBytes(layout);
        const v = judged(() => parseCertTable(bytes), certMalformed);
        const expected = expectedTable(bytes);
        if (expected === "malformed") expect(v.ok).toBe(false);
        else expect(canonical(v)).toBe(canonical({ ok: true, value: expected }));
      }),
      { numRuns: RUNS / 2 },
    );
  });

  it("certificatesFrom throws nothing but VerificationError(cert-malformed), deterministically, whatever the bytes", () => {
    const bytes = fc.oneof(
      tableLayout.map(tableBytes),
      fc.tuple(tableLayout.map(tableBytes), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([t, i, b]) => {
        if (t.length) t[i % t.length] = b;
        return t;
      }),
      fc.uint8Array({ maxLength: 400 }),
      chainField.map((f) => utf8(f)),
      damagedCertificate,
    );
    fc.assert(
      fc.property(bytes, (b) => {
        judged(() => certificatesFrom(b), certMalformed);
      }),
      { numRuns: RUNS / 2 },
    );
  });
});


// ---------------------------------------------------------------------------------------------------------
// SEV

interface SevRequestJson {
  workload_id: string;
  build: { version: { major: number; minor: number }; build: number };
  chain: { ca: Record<"ark" | "ask", number[]>; sev: Record<"pdh" | "pek" | "oca" | "cek", number[]> };
}
const SEV_REQUEST = (JSON.parse(fixtureText("sev-legacy/kbstypes-sev_request.json")) as { "extra-params": SevRequestJson })["extra-params"];
const CERT_PATHS = [
  ["ca", "ark"],
  ["ca", "ask"],
  ["sev", "pdh"],
  ["sev", "pek"],
  ["sev", "oca"],
  ["sev", "cek"],
] as const;
/** A copy of the request's objects; the byte arrays are shared, so an edit copies the one it changes (certOf). */
const clone = (): SevRequestJson => {
  const { build, chain } = SEV_REQUEST;
  return { ...SEV_REQUEST, build: { ...build, version: { ...build.version } }, chain: { ca: { ...chain.ca }, sev: { ...chain.sev } } };
};
/** The certificate at [group, name] of `r`, copied so it may be edited. */
const certOf = (r: SevRequestJson, [g, k]: (typeof CERT_PATHS)[number]): unknown[] => {
  const certs = r.chain[g] as Record<string, unknown[]>;
  return (certs[k] = certs[k]!.slice());
};

/** The fixture's SevRequest with one damage: the certificate headers (what the decoders read), lengths, types, ranges. */
const damagedSevRequest: fc.Arbitrary<unknown> = fc.oneof(
  // Bytes of the decoded header fields (version, algo, curve/bits, usage, exponent size) set to anything.
  fc.tuple(fc.constantFrom(...CERT_PATHS), fc.array(fc.tuple(fc.nat({ max: 0x40 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })).map(([path, edits]) => {
    const r = clone();
    const cert = certOf(r, path);
    for (const [i, b] of edits) cert[i] = b;
    return r;
  }),
  // Truncated or extended certificates.
  fc.tuple(fc.constantFrom(...CERT_PATHS), fc.integer({ min: -2100, max: 100 })).map(([[g, k], delta]) => {
    const r = clone();
    const certs = (r.chain as Record<string, Record<string, number[]>>)[g]!;
    certs[k] = delta < 0 ? certs[k]!.slice(0, Math.max(0, certs[k]!.length + delta)) : [...certs[k]!, ...Array<number>(delta).fill(7)];
    return r;
  }),
  // One byte out of range or not an integer.
  fc.tuple(fc.constantFrom(...CERT_PATHS), fc.nat(), fc.constantFrom(256, -1, 1.5, Number.MAX_SAFE_INTEGER + 2, "1", null, true)).map(([path, i, bad]) => {
    const r = clone();
    const cert = certOf(r, path);
    cert[i % cert.length] = bad;
    return r;
  }),
  // Any field replaced by any JSON value.
  fc
    .tuple(fc.constantFrom<string[]>(["workload_id"], ["build"], ["build", "build"], ["build", "version"], ["build", "version", "major"], ["chain"], ["chain", "ca"], ["chain", "sev"], ...CERT_PATHS.map(([g, k]) => ["chain", g, k])), fc.jsonValue({ maxDepth: 2 }))
    .map(([path, value]) => {
      const r = clone() as unknown as Record<string, unknown>;
      let at = r;
      for (const p of path.slice(0, -1)) at = at[p] as Record<string, unknown>;
      at[path.at(-1)!] = value;
      return r;
    }),
  fc.jsonValue({ maxDepth: 3 }),
);

describe("SEV JSON parsers", () => {
  const typed = (e: unknown) => e instanceof SevError && e.tee === "sev";

  it("parseSevRequest accepts the real kbs-types request in any key order, with unknown keys, and keeps its bytes", () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(Object.keys(SEV_REQUEST), { minLength: 3 }), fc.dictionary(fc.string().filter((k) => !(k in SEV_REQUEST) && k !== "__proto__"), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), (order, extra) => {
        const value = Object.fromEntries([...order.map((k) => [k, SEV_REQUEST[k as keyof SevRequestJson]]), ...Object.entries(extra)]);
        const v = judged(() => parseSevRequest(value), typed);
        if (!v.ok) throw new Error(v.error.message);
        expect(v.value.workloadId).toBe(SEV_REQUEST.workload_id);
        expect(v.value.build).toEqual(SEV_REQUEST.build);
        for (const [g, k] of CERT_PATHS) {
          expect(toHex((v.value.chain as unknown as Record<string, Record<string, { bytes: Uint8Array }>>)[g]![k]!.bytes)).toBe(toHex(Uint8Array.from(SEV_REQUEST.chain[g as "ca"][k as "ark"])));
        }
      }),
      { numRuns: 50 },
    );
  });

  it("parseSevRequest throws nothing but SevError, deterministically, whatever the request", () => {
    let run = 0;
    fc.assert(
      fc.property(damagedSevRequest, (value) => {
        judged(() => parseSevRequest(value), typed, run++ % 4 === 0);
      }),
      { numRuns: SEV_RUNS },
    );
  });

  it("parseSevPolicy and parseLaunchMeasurement throw nothing but SevError and accept their valid forms", () => {
    const policyDoc = fc.record(
      {
        flags: fc.record({ bits: fc.oneof(fc.integer({ min: 0, max: 0x3f }), fc.integer({ min: 0, max: 0xffff })) }),
        minfw: fc.record({ major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }) }),
        allow_debug: fc.boolean(),
        allow_key_sharing: fc.boolean(),
      },
      { requiredKeys: ["flags", "minfw"] },
    );
    fc.assert(
      fc.property(policyDoc, (p) => {
        // Valid: no reserved bit (above 0x3f), no allow_* contradicting its flag; NO_DEBUG and NO_KEY_SHARING are added unless allowed.
        const bits = p.flags.bits;
        const valid = bits <= 0x3f && !(p.allow_debug && bits & 1) && !(p.allow_key_sharing && bits & 2);
        const flags = bits | (p.allow_debug ? 0 : 1) | (p.allow_key_sharing ? 0 : 2);
        const v = judged(() => parseSevPolicy(JSON.stringify(p)), typed);
        if (valid) expect(v).toEqual({ ok: true, value: { flags, minfw: p.minfw } });
        else expect(v.ok).toBe(false);
      }),
      { numRuns: RUNS / 3 },
    );
    fc.assert(
      fc.property(fc.oneof(mutated(policyDoc.map((p) => JSON.stringify(p))), fc.json(), fc.string({ maxLength: 60 })), (text) => {
        judged(() => parseSevPolicy(text), typed);
      }),
      { numRuns: RUNS / 3 },
    );
    const bytes = (n: number) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n });
    fc.assert(
      fc.property(fc.oneof(fc.record({ measure: bytes(32), mnonce: bytes(16) }), fc.record({ measure: fc.array(fc.jsonValue({ maxDepth: 0 }), { maxLength: 40 }), mnonce: fc.jsonValue({ maxDepth: 1 }) }), fc.jsonValue({ maxDepth: 2 })), (value) => {
        const v = judged(() => parseLaunchMeasurement(value), typed);
        const m = value as { measure?: unknown; mnonce?: unknown };
        const valid = (a: unknown, n: number) => Array.isArray(a) && a.length === n && a.every((b) => Number.isInteger(b) && b >= 0 && b <= 255);
        expect(v.ok).toBe(typeof m === "object" && m !== null && valid(m.measure, 32) && valid(m.mnonce, 16));
      }),
      { numRuns: RUNS / 3 },
    );
  });
});

// The binary certificate codecs beneath parseSevRequest (certs.ts), fuzzed directly: the JSON property above
// spends its time in zod and reaches them with the fixture's six certificates only.

/** Every real SEV certificate: platform certificates (2084 bytes; naossevtool's chain file holds three) and AMD CA certificates. */
const SEV_SAMPLES = readdirSync(resolve(FIXTURES, "sev-legacy"))
  .filter((f) => f.endsWith(".cert"))
  .flatMap((f) => {
    const bytes = fixture(`sev-legacy/${f}`);
    if (bytes.length % SEV_CERT_SIZE !== 0) return [bytes];
    return Array.from({ length: bytes.length / SEV_CERT_SIZE }, (_, i) => bytes.slice(i * SEV_CERT_SIZE, (i + 1) * SEV_CERT_SIZE));
  });
/** One of the values that matter, or any u32. */
const u32Near = (...v: number[]) => fc.oneof(fc.constantFrom(...v), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
const usage = u32Near(...Object.values(Usage));
const algo = u32Near(...Object.values(Algo));
const keySize = u32Near(0, 1, 2, 3, 1024, 2047, 2048, 2056, 3072, 4095, 4096, 4104); // curves and modulus bits
/** Writes of the u32 fields the decoders branch on, each with the values that matter there. */
const sevFieldWrites: fc.Arbitrary<(readonly [number, number])[]> = fc.oneof(
  ...([
    [0x00, u32Near(0, 1, 2)], // version (both formats)
    [0x08, usage],
    [0x0c, algo],
    [0x10, keySize], // EC curve or RSA modulus bits
    [0x414, usage], // the two signature slots
    [0x418, algo],
    [0x61c, usage],
    [0x620, algo],
    [0x24, usage], // CA usage, exponent bits, modulus bits
    [0x38, keySize],
    [0x3c, keySize],
  ] as const).map(([offset, value]) => fc.tuple(fc.constant<number>(offset), value).map((edit) => [edit])),
  // An RSA platform key (the real ones are all EC): algo and modulus size together.
  fc.tuple(fc.constantFrom(Algo.RSA_SHA256, Algo.RSA_SHA384), fc.constantFrom(2048, 2056, 3072, 4096)).map(([a, bits]) => [[0x0c, a] as const, [0x10, bits] as const]),
);
/** Sizes at the formats' edges: CA header, Naples's published ARK, 2048- and 4096-bit CA certificates, platform certificates. */
const SEV_SIZES = [0, 1, 0x3f, 0x40, 0x41, 575, 576, 831, 832, 833, 1599, 1600, 1601, 2083, 2084, 2085];

/** A real certificate or random bytes of a format's size, with header fields set, bytes overwritten, resized. */
const sevCertBytes = fc
  .tuple(
    fc.oneof({ arbitrary: fc.constantFrom(...SEV_SAMPLES), weight: 3 }, fc.constantFrom(576, 832, 1600, SEV_CERT_SIZE).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))),
    fc.array(sevFieldWrites, { maxLength: 4 }).map((w) => w.flat()),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.option(fc.tuple(fc.oneof(fc.constantFrom(...SEV_SIZES), fc.nat({ max: 4000 })), fc.integer({ min: 0, max: 255 })), { freq: 4 }),
  )
  .map(([base, fields, bytes, resize]) => {
    let out: Uint8Array = base.slice();
    const dv = new DataView(out.buffer);
    for (const [offset, value] of fields) if (offset + 4 <= out.length) dv.setUint32(offset, value, true);
    for (const [i, b] of bytes) if (out.length) out[i % out.length] = b;
    if (resize) {
      const [size, fill] = resize;
      out = concat(out.subarray(0, size), new Uint8Array(Math.max(0, size - out.length)).fill(fill));
    }
    return out;
  });

describe("SEV certificate codecs", () => {
  const typed = (e: unknown) => e instanceof SevError && e.code === "cert-malformed";

  it("decodeSevCertificate and decodeCaCertificate throw nothing but SevError(cert-malformed), deterministically; what they decode re-encodes byte for byte", () => {
    fc.assert(
      fc.property(sevCertBytes, (bytes) => {
        const platform = judged(() => decodeSevCertificate(bytes), typed);
        if (platform.ok) expect(toHex(encodeSevCertificate(platform.value))).toBe(toHex(bytes));
        const ca = judged(() => decodeCaCertificate(bytes), typed);
        if (ca.ok) expect(toHex(encodeCaCertificate(ca.value))).toBe(toHex(bytes));
      }),
      { numRuns: RUNS / 2 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// SNP policy

const hexOf = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).chain((b) => fc.constantFrom(toHex(b), toHex(b).toUpperCase()));
const bitRule = fc.constantFrom("required", "forbidden", "any");
const spl = fc.integer({ min: 0, max: 255 });
const floor = fc.record({ bootloader: spl, tee: spl, snp: spl, microcode: spl, fmc: spl }, { requiredKeys: [] });
const versionText = (parts: number) => fc.array(spl, { minLength: parts, maxLength: parts }).map((p) => p.join("."));
const nonEmpty = <T>(a: fc.Arbitrary<T>) => fc.uniqueArray(a, { minLength: 1, maxLength: 3 });

/** Valid policy documents: any subset of the keys, each with a valid value. */
const validPolicy = fc
  .record(
    {
      measurements: fc.array(hexOf(48), { maxLength: 2 }),
      products: nonEmpty(fc.constantFrom("Milan", "Genoa", "Turin")),
      min_report_version: fc.integer({ min: 2, max: 5 }),
      signers: nonEmpty(fc.constantFrom("VCEK", "VLEK")),
      vmpl: nonEmpty(fc.integer({ min: 0, max: 3 })),
      guest_policy: fc.record(
        { debug: bitRule, migrate_ma: bitRule, smt: bitRule, single_socket: bitRule, cxl_allow: bitRule, mem_aes_256_xts: bitRule, rapl_dis: bitRule, ciphertext_hiding: bitRule, page_swap_disable: bitRule, min_abi: versionText(2) },
        { requiredKeys: [] },
      ),
      platform: fc.record(
        { smt_enabled: bitRule, tsme_enabled: bitRule, ecc_enabled: bitRule, rapl_disabled: bitRule, ciphertext_hiding_enabled: bitRule, alias_check_complete: bitRule, tio_enabled: bitRule },
        { requiredKeys: [] },
      ),
      tcb: fc.record({ reported: floor, launch: floor, committed: floor }, { requiredKeys: [] }),
      firmware: fc.record({ min_version: versionText(3), allow_provisional: fc.boolean() }, { requiredKeys: [] }),
      host_data: hexOf(32),
      report_id_ma: hexOf(32),
      id_key_digests: nonEmpty(hexOf(48)),
      author_key_digests: nonEmpty(hexOf(48)),
      family_id: hexOf(16),
      image_id: hexOf(16),
      min_guest_svn: fc.integer({ min: 0, max: 0xffffffff }),
      chip_ids: nonEmpty(hexOf(64)),
      mitigation_vector: fc.record({ current: fc.array(fc.integer({ min: 0, max: 63 }), { maxLength: 3 }), launch: fc.array(fc.integer({ min: 0, max: 63 }), { maxLength: 3 }) }, { requiredKeys: [] }),
      allow_debug: fc.boolean(),
    },
    { requiredKeys: [] },
  )
  .filter((p) => p.allow_debug === undefined || p.guest_policy?.debug === undefined);

const POLICY_KEYS = ["measurements", "products", "min_report_version", "signers", "vmpl", "guest_policy", "platform", "tcb", "firmware", "host_data", "chip_ids", "min_guest_svn", "mitigation_vector", "allow_debug"];

/** Invalid or odd documents: wrong values at real keys, unknown keys, damaged text, non-documents. */
const policyText = fc.oneof(
  mutated(validPolicy.map((p) => JSON.stringify(p))),
  fc.dictionary(fc.oneof(fc.constantFrom(...POLICY_KEYS), fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).map((d) => JSON.stringify(d)),
  fc
    .tuple(validPolicy, fc.constantFrom("guest_policy", "platform", "tcb", "firmware", "mitigation_vector"), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { minKeys: 1, maxKeys: 2 }))
    .map(([p, k, inner]) => JSON.stringify({ ...p, [k]: inner })),
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 80 }).map((s) => `{${s}`),
  fc.string({ maxLength: 80 }),
);

describe("parseSnpPolicy", () => {
  const typed = (e: unknown) => e instanceof PolicyError && e.tee === "snp" && e.code === "policy-invalid";

  it("accepts every valid document, keeps what it says (hex lowercased) and parses back to itself", () => {
    fc.assert(
      fc.property(validPolicy, fc.constantFrom("", " ", "\n\t"), (doc, lead) => {
        const v = judged(() => parseSnpPolicy(lead + JSON.stringify(doc)), typed);
        if (!v.ok) throw new Error(v.error.message);
        const p = v.value;
        expect(parseSnpPolicy(JSON.stringify(p))).toEqual(p);
        expect(p.min_report_version).toBe(doc.min_report_version ?? 2);
        expect(p.measurements).toEqual((doc.measurements ?? []).map((m) => m.toLowerCase()));
        expect(p.host_data).toBe(doc.host_data?.toLowerCase());
        expect(p.guest_policy.debug).toBe(doc.guest_policy?.debug ?? (doc.allow_debug ? "any" : "forbidden"));
        expect(p.firmware.allow_provisional).toBe(doc.firmware?.allow_provisional ?? true);
        expect("allow_debug" in p).toBe(false);
      }),
      { numRuns: RUNS / 3 },
    );
  });

  it("throws nothing but PolicyError, deterministically; text not starting with { is the default policy", () => {
    const defaults = parseSnpPolicy("");
    fc.assert(
      fc.property(policyText, (text) => {
        const v = judged(() => parseSnpPolicy(text), typed);
        if (!text.trimStart().startsWith("{")) expect(v).toEqual({ ok: true, value: defaults });
        if (!v.ok) expect(v.error.message.length).toBeGreaterThan(0);
      }),
      { numRuns: RUNS },
    );
  });

  it("checkTeeConfig throws only TeeError(policy-invalid) for either TEE", () => {
    fc.assert(
      fc.property(fc.constantFrom("snp" as const, "sev" as const), policyText, (tee, text) => {
        judged(() => checkTeeConfig(tee, text), (e) => e instanceof TeeError && e.tee === tee && e.code === "policy-invalid");
      }),
      { numRuns: RUNS / 2 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// HTTP body parsing (src/http/body.ts)

const WORKLOAD_ID_RE = /^[A-Za-z0-9._~:@+-]{1,128}$/;
/** The refusals body.ts may raise: 400 body-malformed or body-invalid, renderable within the 200-byte limit. */
const refusal = (e: unknown) => e instanceof Refused && e.refusal.status === 400 && (e.refusal.code === "body-malformed" || e.refusal.code === "body-invalid");
const renderable = (v: Verdict<unknown>) => {
  if (!v.ok) expect(new TextEncoder().encode(problemBody({ status: 400, code: "body-invalid", detail: v.error.message })).length).toBeLessThanOrEqual(MAX_PROBLEM_BYTES);
};
/** Strings that hit the edges: the id alphabet, lengths around the limits, NUL, surrogates, astral characters. */
const edgyString = fc.oneof(
  fc.string({ maxLength: 140 }),
  fc.stringMatching(/^[A-Za-z0-9._~:@+-]{1,130}$/),
  fc.constantFrom(".", "..", "", "a".repeat(128), "a".repeat(129), "\0", "a\0b", "\ud800", "x\udc00y", "😀".repeat(128), "é".repeat(256), "é".repeat(257), "a".repeat(512), "a".repeat(513)),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("a", "é", "😀", "\0", "\ud800", "\udfff"), maxLength: 300 }),
);

describe("body.ts parse and validate", () => {
  it("WorkloadId accepts exactly 1-128 characters of its alphabet, except . and ..", () => {
    fc.assert(
      fc.property(edgyString, (s) => {
        const v = judged(() => validate(WorkloadId, s, "key id"), refusal);
        renderable(v);
        expect(v.ok).toBe(WORKLOAD_ID_RE.test(s) && s !== "." && s !== "..");
      }),
      { numRuns: RUNS },
    );
  });

  it("SecretValue (through parse, as a body field arrives) accepts 1-512 UTF-8 bytes of well-formed text without NUL", () => {
    fc.assert(
      fc.property(edgyString, (s) => {
        const v = judged(() => parse(SecretValue, JSON.stringify(s), "request body"), refusal);
        renderable(v);
        expect(v.ok).toBe(s.isWellFormed() && s.length > 0 && utf8(s).length <= 512 && !s.includes("\0"));
        if (v.ok) expect(v.value).toBe(s);
        else if (!s.isWellFormed()) expect(v.error.message).toContain("lone surrogate");
      }),
      { numRuns: RUNS },
    );
  });

  it("LaunchMeasurement accepts exactly hex of 32 or 48 bytes, either case", () => {
    const candidate = fc.oneof(hexOf(32), hexOf(48), fc.uint8Array({ maxLength: 60 }).map(toHex), mutated(hexOf(48)), fc.string({ maxLength: 100 }));
    fc.assert(
      fc.property(candidate, (s) => {
        const v = judged(() => validate(LaunchMeasurement, s, "launch_measurement"), refusal);
        expect(v.ok).toBe(/^[0-9a-fA-F]*$/.test(s) && (s.length === 64 || s.length === 96));
      }),
      { numRuns: RUNS },
    );
  });

  it("parse with legacy.ts's inline schemas: JSON without lone surrogates is accepted as JSON.parse reads it", () => {
    const text = fc.oneof(
      fc.json({ maxDepth: 3 }),
      fc.json({ maxDepth: 2 }).map((j) => j.replace(/"([^"\\]*)"/, '"$1\\ud800"')),
      fc.dictionary(fc.string({ unit: "binary", maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }).map((o) => JSON.stringify(o)),
      mutated(fc.json({ maxDepth: 2 })),
      fc.string({ maxLength: 40 }),
    );
    const wellFormed = (v: unknown): boolean =>
      typeof v === "string" ? v.isWellFormed() : Array.isArray(v) ? v.every(wellFormed) : v !== null && typeof v === "object" ? Object.entries(v).every(([k, x]) => k.isWellFormed() && wellFormed(x)) : true;
    const jsonOf = (t: string): { ok: boolean; value?: unknown } => {
      try {
        return { ok: true, value: JSON.parse(t) };
      } catch {
        return { ok: false };
      }
    };
    const record = z.record(z.string(), z.unknown());
    fc.assert(
      fc.property(text, (t) => {
        const expected = jsonOf(t);
        const accepted = expected.ok && wellFormed(expected.value);
        const any = judged(() => parse(z.unknown(), t, "extra-params"), refusal);
        renderable(any);
        expect(any.ok).toBe(accepted);
        if (any.ok) expect(any.value).toEqual(expected.value);
        const isRecord = accepted && typeof expected.value === "object" && expected.value !== null && !Array.isArray(expected.value);
        expect(judged(() => parse(record, t, "tee-evidence"), refusal).ok).toBe(isRecord);
      }),
      { numRuns: RUNS },
    );
  });

  // Found by this fuzzing: parse's lone-surrogate scan used to recurse once per nesting level, so JSON nested
  // ~5,000 deep (10 KB, far under the body limit) overflowed the stack and every JSON endpoint answered 500.
  it("deeply nested JSON is judged like any other body, never a RangeError", () => {
    for (const depth of [10, 1_000, 5_000, 100_000]) {
      const text = `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`;
      // Accepted: any JSON value and any object are valid here (compared once: the value is too deep to print).
      for (const schema of [z.unknown(), z.record(z.string(), z.unknown())]) expect(judged(() => parse(schema, text, "request body"), refusal, false).ok).toBe(true);
    }
  });
});
