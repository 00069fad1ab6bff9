// Envelope encryption of secrets at rest (src/crypto/seal.ts): round trips, confidentiality of the stored
// fields, binding to workload / key id / version / master key, tamper detection, master-key rotation,
// and KBS_MASTER_KEY parsing that never echoes key material.

import { ConfigError } from "../../src/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toBase64, toBase64Url, toHex, utf8 } from "../../src/crypto/bytes";
import { generateMasterKey, openSecret, parseMasterKeys, rewrapSecret, sealSecret, SealError, type SealedSecret, type SecretContext } from "../../src/crypto/seal";

const IV_BYTES = 12;
const TAG_BYTES = 16;
const CTX: SecretContext = { workloadId: "tenant-a.web", keyId: "disk-passphrase", version: 3 };
/** Recognisable, ≥16 bytes, and long enough that every base64 alignment leaves a long searchable run. */
const PLAINTEXT = utf8("EDGEKBS-RECOGNISABLE-PLAINTEXT-0123456789-correct-horse-battery-staple");

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

function flipped(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[index]! ^= mask;
  return out;
}

const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);
/** The key part of a `kid:base64` entry. */
const keyText = (entry: string) => entry.slice(entry.indexOf(":") + 1);

describe("round trip and layout", () => {
  it("opens what it sealed, under the active kid, with the documented sizes", async () => {
    const ring = await parseMasterKeys(generateMasterKey("k1"));
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    expect(sealed.kid).toBe("k1");
    // IV ‖ GCM(32-byte data key) and IV ‖ GCM(value): 12-byte IV, 16-byte tag.
    expect(sealed.wrappedKey.length).toBe(IV_BYTES + 32 + TAG_BYTES);
    expect(sealed.ciphertext.length).toBe(IV_BYTES + PLAINTEXT.length + TAG_BYTES);
    expect(await openSecret(ring, CTX, sealed)).toEqual(PLAINTEXT);
  });

  it("matches the documented layout: both layers open by hand with the documented AADs, and only with them", async () => {
    const entry = generateMasterKey("kA");
    const ring = await parseMasterKeys(entry);
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    const kek = await crypto.subtle.importKey("raw", Buffer.from(keyText(entry), "base64"), "AES-GCM", false, ["decrypt"]);
    const aad = (parts: unknown[]) => new TextEncoder().encode(JSON.stringify(parts));
    const open = async (key: CryptoKey, sealedBytes: Uint8Array, additionalData: Uint8Array) =>
      new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealedBytes.slice(0, IV_BYTES), additionalData }, key, sealedBytes.slice(IV_BYTES)));
    const dek = await open(kek, sealed.wrappedKey, aad(["edgekbs/dek/v1", "kA", CTX.workloadId, CTX.keyId, CTX.version]));
    expect(dek.length).toBe(32);
    const dataKey = await crypto.subtle.importKey("raw", dek, "AES-GCM", false, ["decrypt"]);
    expect(await open(dataKey, sealed.ciphertext, aad(["edgekbs/secret/v1", CTX.workloadId, CTX.keyId, CTX.version]))).toEqual(PLAINTEXT);
    // Each layer binds every part of the context on its own (defence in depth), and the outer one the kid.
    const wrongSecretAads = [
      ["edgekbs/secret/v1", CTX.workloadId, CTX.keyId, CTX.version + 1],
      ["edgekbs/secret/v1", "other", CTX.keyId, CTX.version],
      ["edgekbs/secret/v1", CTX.workloadId, "other", CTX.version],
      ["edgekbs/secret/v1", CTX.workloadId, CTX.keyId],
      ["edgekbs/dek/v1", CTX.workloadId, CTX.keyId, CTX.version],
    ];
    for (const parts of wrongSecretAads) await expect(open(dataKey, sealed.ciphertext, aad(parts))).rejects.toThrow();
    const wrongKeyAads = [
      ["edgekbs/dek/v1", "kB", CTX.workloadId, CTX.keyId, CTX.version],
      ["edgekbs/dek/v1", "kA", CTX.workloadId, CTX.keyId, CTX.version + 1],
      ["edgekbs/dek/v1", CTX.workloadId, CTX.keyId, CTX.version],
      ["edgekbs/secret/v1", "kA", CTX.workloadId, CTX.keyId, CTX.version],
    ];
    for (const parts of wrongKeyAads) await expect(open(kek, sealed.wrappedKey, aad(parts))).rejects.toThrow();
  });

  it("round-trips an empty value", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const sealed = await sealSecret(ring, CTX, new Uint8Array(0));
    expect(await openSecret(ring, CTX, sealed)).toEqual(new Uint8Array(0));
  });

  it("uses a fresh data key and fresh IVs each time: sealing the same value twice gives unrelated rows", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const a = await sealSecret(ring, CTX, PLAINTEXT);
    const b = await sealSecret(ring, CTX, PLAINTEXT);
    expect(toHex(a.wrappedKey)).not.toBe(toHex(b.wrappedKey));
    expect(toHex(a.ciphertext)).not.toBe(toHex(b.ciphertext));
    expect(toHex(a.wrappedKey.subarray(0, IV_BYTES))).not.toBe(toHex(b.wrappedKey.subarray(0, IV_BYTES)));
    expect(toHex(a.ciphertext.subarray(0, IV_BYTES))).not.toBe(toHex(b.ciphertext.subarray(0, IV_BYTES)));
  });

  it("generateMasterKey gives a kid:base64 entry of 32 random bytes that parseMasterKeys accepts", async () => {
    const a = generateMasterKey("ops-2025.q1");
    const b = generateMasterKey("ops-2025.q1");
    expect(a).toMatch(/^ops-2025\.q1:[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(generateMasterKey()).toMatch(/^k1:/);
    expect((await parseMasterKeys(a)).active).toBe("ops-2025.q1");
  });
});

describe("the stored fields never reveal the value", () => {
  it("neither raw bytes nor hex / base64 / base64url of the plaintext appear in kid, wrappedKey or ciphertext", async () => {
    const ring = await parseMasterKeys(generateMasterKey("k1"));
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    const fields = [sealed.wrappedKey, sealed.ciphertext];
    const haystacks = [sealed.kid, ...fields.flatMap((f) => [latin1(f), toHex(f), toHex(f).toUpperCase(), toBase64(f), toBase64Url(f)])];
    // Every 3-byte alignment of the plaintext inside a base64 stream, minus the edge characters.
    const b64Runs = [0, 1, 2].map((skip) => toBase64(PLAINTEXT.subarray(skip, skip + 48)).slice(1, -4));
    const needles = [
      latin1(PLAINTEXT),
      latin1(PLAINTEXT.subarray(0, 16)),
      toHex(PLAINTEXT),
      toHex(PLAINTEXT).toUpperCase(),
      toBase64(PLAINTEXT),
      toBase64Url(PLAINTEXT),
      ...b64Runs,
      ...b64Runs.map((r) => r.replace(/\+/g, "-").replace(/\//g, "_")),
    ];
    for (const needle of needles) expect(needle.length).toBeGreaterThanOrEqual(16);
    for (const hay of haystacks) for (const needle of needles) expect(hay.includes(needle)).toBe(false);
    // Nor any 16-byte window of the plaintext, anywhere in either field.
    for (const f of fields) {
      const hay = latin1(f);
      for (let i = 0; i + 16 <= PLAINTEXT.length; i++) expect(hay.includes(latin1(PLAINTEXT.subarray(i, i + 16)))).toBe(false);
    }
  });

  it("two seals of the same value have different ciphertext bodies (no reused key or keystream)", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const a = await sealSecret(ring, CTX, PLAINTEXT);
    const b = await sealSecret(ring, CTX, PLAINTEXT);
    const body = (s: SealedSecret) => s.ciphertext.subarray(IV_BYTES, IV_BYTES + PLAINTEXT.length);
    expect(toHex(body(a))).not.toBe(toHex(body(b)));
  });
});

describe("binding to the context and the master key", () => {
  it("another workloadId, keyId or version cannot open the row", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    const others: SecretContext[] = [
      { ...CTX, workloadId: "tenant-b.web" },
      { ...CTX, workloadId: "tenant-a.we" },
      { ...CTX, workloadId: "" },
      { ...CTX, keyId: "disk-passphrase2" },
      { ...CTX, keyId: "DISK-PASSPHRASE" },
      { ...CTX, version: 2 },
      { ...CTX, version: 4 },
      { ...CTX, version: 0 },
    ];
    for (const other of others) {
      const e = await rejection(openSecret(ring, other, sealed));
      expect(e).toBeInstanceOf(SealError);
      expect(e.message).not.toContain(latin1(PLAINTEXT));
    }
  });

  it("context parts cannot run into each other (workload 'a', key 'b/c' is not workload 'a/b', key 'c')", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const pairs: [SecretContext, SecretContext][] = [
      [{ workloadId: "a", keyId: "b/c", version: 1 }, { workloadId: "a/b", keyId: "c", version: 1 }],
      [{ workloadId: "a", keyId: "bc", version: 1 }, { workloadId: "ab", keyId: "c", version: 1 }],
      [{ workloadId: "a", keyId: "b", version: 12 }, { workloadId: "a", keyId: "b1", version: 2 }],
      [{ workloadId: 'a","b', keyId: "c", version: 1 }, { workloadId: "a", keyId: 'b","c', version: 1 }],
    ];
    for (const [x, y] of pairs) {
      const sealed = await sealSecret(ring, x, PLAINTEXT);
      expect(await openSecret(ring, x, sealed)).toEqual(PLAINTEXT);
      await expect(openSecret(ring, y, sealed)).rejects.toThrow(SealError);
    }
  });

  it("a row relabelled with another kid of the ring does not open", async () => {
    const [k1, k2] = [generateMasterKey("k1"), generateMasterKey("k2")];
    const ring = await parseMasterKeys(`${k1},${k2}`);
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    await expect(openSecret(ring, CTX, { ...sealed, kid: "k2" })).rejects.toThrow(SealError);
    // The kid is bound into the wrapped key itself: relabelling fails even when both kids hold the same key bytes.
    const sameKey = await parseMasterKeys(`k1:${keyText(k1)},k1-copy:${keyText(k1)}`);
    const row = await sealSecret(sameKey, CTX, PLAINTEXT);
    expect(await openSecret(sameKey, CTX, row)).toEqual(PLAINTEXT);
    await expect(openSecret(sameKey, CTX, { ...row, kid: "k1-copy" })).rejects.toThrow(SealError);
    // The same kid name with a different key behind it does not open it either.
    const impostor = await parseMasterKeys(generateMasterKey("k1"));
    await expect(openSecret(impostor, CTX, sealed)).rejects.toThrow(SealError);
  });

  it("an unknown kid is refused with a message naming the kid and containing no key material", async () => {
    const k1 = generateMasterKey("k1");
    const k2 = generateMasterKey("k2");
    const sealed = await sealSecret(await parseMasterKeys(k1), CTX, PLAINTEXT);
    const onlyK2 = await parseMasterKeys(k2);
    for (const row of [sealed, { ...sealed, kid: "retired-2019" }]) {
      const e = await rejection(openSecret(onlyK2, CTX, row));
      expect(e).toBeInstanceOf(SealError);
      expect(e.message).toContain(row.kid);
      for (const secret of [keyText(k1), keyText(k2), toHex(Uint8Array.from(atob(keyText(k1)), (c) => c.charCodeAt(0))), latin1(PLAINTEXT)]) {
        expect(e.message).not.toContain(secret);
      }
      const r = await rejection(rewrapSecret(onlyK2, CTX, row));
      expect(r).toBeInstanceOf(SealError);
      expect(r.message).toContain(row.kid);
    }
  });
});

describe("tampering", () => {
  it("any changed byte of either IV, body or tag, in wrappedKey or ciphertext, is refused with SealError", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    for (const field of ["wrappedKey", "ciphertext"] as const) {
      const len = sealed[field].length;
      const positions = { "first IV byte": 0, "last IV byte": IV_BYTES - 1, "first body byte": IV_BYTES, "middle byte": Math.floor(len / 2), "last tag byte": len - 1 };
      for (const [where, i] of Object.entries(positions)) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const e = await rejection(openSecret(ring, CTX, { ...sealed, [field]: flipped(sealed[field], i, mask) }));
          expect(e, `${field} ${where} ^ ${mask}`).toBeInstanceOf(SealError);
        }
      }
    }
    // The untouched row still opens (the copies above did not alias it).
    expect(await openSecret(ring, CTX, sealed)).toEqual(PLAINTEXT);
  });

  it("truncated, extended or empty fields are refused with SealError (never another error type)", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const sealed = await sealSecret(ring, CTX, PLAINTEXT);
    for (const field of ["wrappedKey", "ciphertext"] as const) {
      const f = sealed[field];
      const variants = [new Uint8Array(0), f.subarray(0, 5), f.subarray(0, IV_BYTES), f.subarray(0, IV_BYTES + TAG_BYTES - 1), f.subarray(0, f.length - 1), Uint8Array.of(...f, 0), f.subarray(1)];
      for (const v of variants) {
        const e = await rejection(openSecret(ring, CTX, { ...sealed, [field]: v }));
        expect(e, `${field} of ${v.length} bytes`).toBeInstanceOf(SealError);
      }
    }
  });

  it("swapping wrappedKey (or ciphertext) between two rows makes both fail", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    const other: SecretContext = { ...CTX, keyId: "tls-key" };
    const a = await sealSecret(ring, CTX, PLAINTEXT);
    const b = await sealSecret(ring, other, utf8("another secret value, also long"));
    await expect(openSecret(ring, CTX, { ...a, wrappedKey: b.wrappedKey })).rejects.toThrow(SealError);
    await expect(openSecret(ring, other, { ...b, wrappedKey: a.wrappedKey })).rejects.toThrow(SealError);
    await expect(openSecret(ring, CTX, { ...a, ciphertext: b.ciphertext })).rejects.toThrow(SealError);
    // Moving a whole row to the other slot fails too.
    await expect(openSecret(ring, other, a)).rejects.toThrow(SealError);
    // Two rows sealed for the same context (e.g. an overwritten version): their data keys differ.
    const a2 = await sealSecret(ring, CTX, utf8("a later value for the same slot"));
    await expect(openSecret(ring, CTX, { ...a, wrappedKey: a2.wrappedKey })).rejects.toThrow(SealError);
    await expect(openSecret(ring, CTX, { ...a2, wrappedKey: a.wrappedKey })).rejects.toThrow(SealError);
  });
});

describe("master-key rotation", () => {
  it("k2 active, k1 still opens; rewrap moves k1 rows to k2; k1 can then be dropped", async () => {
    const k1 = generateMasterKey("k1");
    const k2 = generateMasterKey("k2");
    const contexts: SecretContext[] = [CTX, { ...CTX, version: 4 }, { workloadId: "w2", keyId: "k", version: 1 }];
    const oldRing = await parseMasterKeys(k1);
    const oldRows = await Promise.all(contexts.map((c, i) => sealSecret(oldRing, c, utf8(`value #${i} ${latin1(PLAINTEXT)}`))));
    expect(oldRows.every((r) => r.kid === "k1")).toBe(true);

    const ring = await parseMasterKeys(`${k2},${k1}`);
    expect(ring.active).toBe("k2");
    expect([...ring.keys.keys()].sort()).toEqual(["k1", "k2"]);
    // New seals use k2.
    expect((await sealSecret(ring, CTX, PLAINTEXT)).kid).toBe("k2");

    const moved: SealedSecret[] = [];
    for (const [i, c] of contexts.entries()) {
      const old = oldRows[i]!;
      expect(await openSecret(ring, c, old)).toEqual(utf8(`value #${i} ${latin1(PLAINTEXT)}`));
      const m = await rewrapSecret(ring, c, old);
      expect(m).not.toBeNull();
      expect(m!.kid).toBe("k2");
      expect(toHex(m!.ciphertext)).toBe(toHex(old.ciphertext));
      expect(toHex(m!.wrappedKey)).not.toBe(toHex(old.wrappedKey));
      expect(m!.wrappedKey.length).toBe(old.wrappedKey.length);
      // The old row is left as it was.
      expect(old.kid).toBe("k1");
      // Already on k2: nothing to do.
      expect(await rewrapSecret(ring, c, m!)).toBeNull();
      moved.push(m!);
    }

    const onlyK2 = await parseMasterKeys(k2);
    for (const [i, c] of contexts.entries()) {
      expect(await openSecret(onlyK2, c, moved[i]!)).toEqual(utf8(`value #${i} ${latin1(PLAINTEXT)}`));
      await expect(openSecret(onlyK2, c, oldRows[i]!)).rejects.toThrow(SealError);
      // The re-wrapped key is still bound to its context and to k2.
      await expect(openSecret(onlyK2, { ...c, version: c.version + 1 }, moved[i]!)).rejects.toThrow(SealError);
      await expect(openSecret(ring, c, { ...moved[i]!, kid: "k1" })).rejects.toThrow(SealError);
    }
  });

  it("rewrap refuses a row that does not open for the given context, and a tampered row", async () => {
    const k1 = generateMasterKey("k1");
    const k2 = generateMasterKey("k2");
    const old = await sealSecret(await parseMasterKeys(k1), CTX, PLAINTEXT);
    const ring = await parseMasterKeys(`${k2},${k1}`);
    await expect(rewrapSecret(ring, { ...CTX, workloadId: "elsewhere" }, old)).rejects.toThrow(SealError);
    await expect(rewrapSecret(ring, CTX, { ...old, wrappedKey: flipped(old.wrappedKey, 20) })).rejects.toThrow(SealError);
  });

  it("the ring's order decides the active key: 'k1,k2' keeps k1 active and rewrap is a no-op for k1 rows", async () => {
    const k1 = generateMasterKey("k1");
    const k2 = generateMasterKey("k2");
    const ring = await parseMasterKeys(` ${k1} , ${k2} `);
    expect(ring.active).toBe("k1");
    const row = await sealSecret(ring, CTX, PLAINTEXT);
    expect(row.kid).toBe("k1");
    expect(await rewrapSecret(ring, CTX, row)).toBeNull();
    const k2Row = await sealSecret(await parseMasterKeys(k2), CTX, PLAINTEXT);
    expect((await rewrapSecret(ring, CTX, k2Row))!.kid).toBe("k1");
  });
});

describe("parseMasterKeys rejects unusable KBS_MASTER_KEY values without echoing key material", () => {
  const good = toBase64(Uint8Array.from({ length: 32 }, (_, i) => 0x41 + i));
  const short = toBase64(Uint8Array.from({ length: 31 }, (_, i) => 0x61 + i));
  const long = toBase64(Uint8Array.from({ length: 33 }, (_, i) => 0x21 + i));
  const goodUrl = toBase64Url(Uint8Array.from({ length: 32 }, (_, i) => 0xf0 - i));
  const cases: [string, string | undefined, string[]][] = [
    ["undefined", undefined, []],
    ["empty", "", []],
    ["blank", "   ", []],
    ["only commas", " , ,", []],
    ["no colon (bare key)", good, [good]],
    ["empty kid", `:${good}`, [good]],
    ["kid with a space", `bad kid:${good}`, [good]],
    ["kid with a slash", `a/b:${good}`, [good]],
    ["kid of 33 characters", `${"k".repeat(33)}:${good}`, [good]],
    ["key then kid (reversed)", `${good}:k1`, [good]],
    ["not base64", "k1:this is not base64 at all!!", ["this is not base64 at all!!"]],
    ["base64url alphabet", `k1:${goodUrl}`, [goodUrl]],
    ["unpadded base64", `k1:${good.replace(/=+$/, "")}`, [good.replace(/=+$/, "")]],
    ["base64 with inner whitespace", `k1:${good.slice(0, 20)} ${good.slice(20)}`, [good.slice(0, 20), good.slice(20)]],
    ["31 bytes", `k1:${short}`, [short]],
    ["33 bytes", `k1:${long}`, [long]],
    ["empty key", "k1:", []],
    ["duplicate kid", `k1:${good},k1:${short}`, [good, short]],
    ["a good entry followed by a bad one", `k1:${good},k2:${long}`, [good, long]],
  ];

  it.each(cases)("%s", async (_name, value, secrets) => {
    const e = await rejection(parseMasterKeys(value));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.name).toBe("ConfigError");
    expect(e.message.length).toBeGreaterThan(0);
    for (const s of secrets) {
      expect(e.message).not.toContain(s);
      // Nor a recognisable piece of it.
      if (s.length >= 12) expect(e.message).not.toContain(s.slice(0, 12));
    }
  });

  it("the length error states the byte count, and kid-related errors name the kid", async () => {
    expect((await rejection(parseMasterKeys(`k1:${short}`))).message).toMatch(/"k1".*32 bytes, not 31/);
    expect((await rejection(parseMasterKeys(`k1:${long}`))).message).toMatch(/not 33/);
    expect((await rejection(parseMasterKeys(`kx:${good},kx:${good}`))).message).toContain('"kx"');
    expect((await rejection(parseMasterKeys(`k1:${good},k2:***`))).message).toContain('"k2"');
  });

  it("accepts kids at the edges of the allowed alphabet and length", async () => {
    const kid = `A-z_0.${"9".repeat(26)}`;
    expect(kid.length).toBe(32);
    const ring = await parseMasterKeys(`${kid}:${good},k:${toBase64(new Uint8Array(32))}`);
    expect(ring.active).toBe(kid);
    expect(ring.keys.size).toBe(2);
    // The imported keys are usable but not extractable.
    for (const key of ring.keys.values()) {
      expect(key.extractable).toBe(false);
      expect(key.algorithm.name).toBe("AES-GCM");
    }
  });
});

describe("properties", () => {
  const context = fc.record({ workloadId: fc.string({ maxLength: 40 }), keyId: fc.string({ maxLength: 40 }), version: fc.nat() });

  it("any value of 0-512 bytes under any context round-trips, and one flipped bit anywhere in wrappedKey or ciphertext is refused", async () => {
    const ring = await parseMasterKeys(generateMasterKey("prop"));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 512 }), context, fc.constantFrom("wrappedKey" as const, "ciphertext" as const), fc.nat(), async (value, ctx, field, bit) => {
        const sealed = await sealSecret(ring, ctx, value);
        expect(await openSecret(ring, ctx, sealed)).toEqual(value);
        const bytes = sealed[field];
        const at = bit % (bytes.length * 8);
        const tampered = { ...sealed, [field]: flipped(bytes, at >> 3, 1 << (at & 7)) };
        await expect(openSecret(ring, ctx, tampered)).rejects.toThrow(SealError);
      }),
      { numRuns: 300 },
    );
  });

  it("a row never opens under a different context", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    await fc.assert(
      fc.asyncProperty(context, context, fc.uint8Array({ maxLength: 64 }), async (a, b, value) => {
        fc.pre(JSON.stringify([a.workloadId, a.keyId, a.version]) !== JSON.stringify([b.workloadId, b.keyId, b.version]));
        const sealed = await sealSecret(ring, a, value);
        await expect(openSecret(ring, b, sealed)).rejects.toThrow(SealError);
      }),
      { numRuns: 200 },
    );
  });
});
