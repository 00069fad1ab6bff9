// The pure security pieces under Node: sealing with master-key rotation, admin credential checks, and
// the audit hash chain, with fast-check properties where a hand-picked case would prove little.
import fc from "fast-check";
import { generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { appendAuditEntry, verifyAuditChain, type AuditEntry } from "../../src/audit/chain";
import { AdminAuthError, authenticateAdmin, canAccessWorkload, loadAdminAuth } from "../../src/auth/admin";
import { toBase64, toHex, utf8 } from "../../src/crypto/bytes";
import { generateMasterKey, openSecret, parseMasterKeys, rewrapSecret, SealConfigError, sealSecret, SealError } from "../../src/crypto/seal";
import { adminJwt, testJwtSigners } from "../helpers/admin-jwt";

const ctx = { workloadId: "w1", keyId: "disk", version: 1 };

describe("sealed secrets", () => {
  it("round-trips, hides the value, and binds workload, key id and version", async () => {
    const ring = await parseMasterKeys(generateMasterKey("k1"));
    const value = utf8("a-very-recognisable-passphrase");
    const sealed = await sealSecret(ring, ctx, value);
    expect(await openSecret(ring, ctx, sealed)).toEqual(value);
    const stored = toHex(sealed.wrappedKey) + toHex(sealed.ciphertext);
    expect(stored).not.toContain(toHex(value));
    for (const other of [{ ...ctx, workloadId: "w2" }, { ...ctx, keyId: "tls" }, { ...ctx, version: 2 }]) {
      await expect(openSecret(ring, other, sealed)).rejects.toThrow(SealError);
    }
  });

  it("rotates: a new active key opens nothing new until rewrap, old rows keep opening, rewrap needs no plaintext", async () => {
    const k1 = generateMasterKey("k1");
    const k2 = generateMasterKey("k2");
    const old = await sealSecret(await parseMasterKeys(k1), ctx, utf8("s"));
    const both = await parseMasterKeys(`${k2},${k1}`);
    expect(await openSecret(both, ctx, old)).toEqual(utf8("s"));
    const moved = (await rewrapSecret(both, ctx, old))!;
    expect([moved.kid, toHex(moved.ciphertext)]).toEqual(["k2", toHex(old.ciphertext)]);
    expect(await rewrapSecret(both, ctx, moved)).toBeNull();
    const onlyK2 = await parseMasterKeys(k2);
    expect(await openSecret(onlyK2, ctx, moved)).toEqual(utf8("s"));
    await expect(openSecret(onlyK2, ctx, old)).rejects.toThrow("unknown master key id k1");
  });

  it("refuses bad KBS_MASTER_KEY values without echoing key material", async () => {
    const b64 = toBase64(new Uint8Array(31).fill(7));
    for (const bad of [undefined, "", "nocolon", `bad kid:${toBase64(new Uint8Array(32))}`, "k1:***", `k1:${b64}`, `k1:${toBase64(new Uint8Array(32))},k1:${toBase64(new Uint8Array(32))}`]) {
      const e = await parseMasterKeys(bad).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SealConfigError);
      expect((e as Error).message).not.toContain(b64);
    }
  });

  it("property: any value and context round-trips, and any flipped bit is refused", async () => {
    const ring = await parseMasterKeys(generateMasterKey());
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), fc.string({ minLength: 1, maxLength: 20 }), fc.nat(), fc.boolean(), async (value, keyId, bit, inKey) => {
        const c = { workloadId: "w", keyId, version: 3 };
        const sealed = await sealSecret(ring, c, value);
        expect(await openSecret(ring, c, sealed)).toEqual(value);
        const field = inKey ? Uint8Array.from(sealed.wrappedKey) : Uint8Array.from(sealed.ciphertext);
        field[Math.floor((bit % (field.length * 8)) / 8)]! ^= 1 << (bit % 8);
        await expect(openSecret(ring, c, inKey ? { ...sealed, wrappedKey: field } : { ...sealed, ciphertext: field })).rejects.toThrow(SealError);
      }),
      { numRuns: 200 },
    );
  });
});

describe("admin credentials", () => {
  it("refuses unsigned, HMAC and RSA tokens even when their claims look right", async () => {
    const [ed] = await testJwtSigners();
    const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.publicJwk] }) });
    const claims = { sub: "x", exp: Math.floor(Date.now() / 1000) + 60 };
    const b64u = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const none = `${b64u({ alg: "none", kid: ed!.kid })}.${b64u(claims)}.`;
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: ed!.kid }).sign(new Uint8Array(32));
    const rsa = await generateKeyPair("RS256");
    const rs = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: ed!.kid }).sign(rsa.privateKey);
    for (const token of [none, hs, rs]) await expect(authenticateAdmin(auth, `Bearer ${token}`)).rejects.toThrow(AdminAuthError);
    expect((await authenticateAdmin(auth, `Bearer ${await adminJwt(ed!, { sub: "ops" })}`)).subject).toBe("ops");
  });

  it("honours the clock tolerance, scope prefixes, and refuses a JWKS holding a private key", async () => {
    const [ed] = await testJwtSigners();
    const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.publicJwk] }) });
    const jwt = await adminJwt(ed!, { exp: 60, scope: ["tenant-a.", "shared-"] });
    const later = (s: number) => new Date(Date.now() + s * 1000);
    const who = await authenticateAdmin(auth, `Bearer ${jwt}`, later(80));
    expect([canAccessWorkload(who, "tenant-a.web"), canAccessWorkload(who, "shared-x"), canAccessWorkload(who, "tenant-b.web")]).toEqual([true, true, false]);
    await expect(authenticateAdmin(auth, `Bearer ${jwt}`, later(100))).rejects.toThrow("expired");
    await expect(loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.privateJwk] }) })).rejects.toThrow("private key");
  });
});

describe("admin credentials: edge cases", () => {
  it("refuses a signed JWT whose sub is empty or not a string, and still accepts a JWT-shaped static token", async () => {
    const [ed] = await testJwtSigners();
    const auth = await loadAdminAuth({ ADMIN_TOKEN: "aaa.bbb.ccc", ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.publicJwk] }) });
    const key = await (await import("jose")).importJWK(ed!.privateJwk, "EdDSA");
    for (const sub of ["", 123, { a: 1 }]) {
      const jwt = await new SignJWT({ sub } as unknown as Record<string, unknown>).setProtectedHeader({ alg: "EdDSA", kid: ed!.kid }).setExpirationTime("5m").sign(key);
      await expect(authenticateAdmin(auth, `Bearer ${jwt}`)).rejects.toThrow(AdminAuthError);
    }
    expect((await authenticateAdmin(auth, "Bearer aaa.bbb.ccc")).kind).toBe("token");
  });
});

describe("audit hash chain", () => {
  it("hashes what storage gives back: undefined fields as null, details through JSON", async () => {
    const entry = await appendAuditEntry(null, { at: 1, actor: "a", event: "e", workload: undefined as unknown as null, keyId: null, version: null, session: null, ok: true, reason: null, details: { when: new Date(0), list: [undefined, 1] } });
    const readBack = JSON.parse(JSON.stringify(entry)) as AuditEntry;
    expect(readBack.workload).toBeNull();
    expect(await verifyAuditChain([readBack])).toMatchObject({ ok: true });
  });

  async function chain(n: number): Promise<AuditEntry[]> {
    const rows: AuditEntry[] = [];
    for (let i = 0; i < n; i++) {
      const prev = rows.at(-1) ?? null;
      rows.push(await appendAuditEntry(prev, { at: 1_700_000_000_000 + i, actor: "guest", event: "attest", workload: `w${i % 3}`, keyId: null, version: null, session: null, ok: i % 2 === 0, reason: null, details: { n: i, nested: { tcb: "00" } } }));
    }
    return rows;
  }

  it("verifies page by page the same as whole, and catches a truncated tail only with the head", async () => {
    const rows = await chain(30);
    const head = { seq: 30, hash: rows[29]!.hash };
    expect(await verifyAuditChain(rows, { head })).toMatchObject({ ok: true, count: 30 });
    const first = await verifyAuditChain(rows.slice(0, 10));
    expect(await verifyAuditChain(rows.slice(10), { from: first.ok ? first.head! : undefined, head })).toMatchObject({ ok: true });
    expect((await verifyAuditChain(rows.slice(0, 27))).ok).toBe(true);
    expect(await verifyAuditChain(rows.slice(0, 27), { head })).toMatchObject({ ok: false, seq: 28 });
  });

  it("property: mutating any field of any row, deleting it, or swapping two rows fails at that row", async () => {
    const rows = await chain(20);
    const fields = ["at", "actor", "event", "workload", "ok", "reason", "details"] as const;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 19 }), fc.constantFrom(...fields), async (k, field) => {
        const mutated = rows.map((r) => ({ ...r }));
        const row = mutated[k]! as unknown as Record<string, unknown>;
        row[field] = field === "at" ? (row.at as number) + 1 : field === "ok" ? !row.ok : field === "details" ? { ...(row.details as object), n: -1 } : `${String(row[field])}!`;
        expect(await verifyAuditChain(mutated)).toMatchObject({ ok: false, seq: k + 1 });
        expect(await verifyAuditChain(rows.filter((_, i) => i !== k), { head: { seq: 20, hash: rows[19]!.hash } })).toMatchObject({ ok: false, seq: k + 1 });
      }),
      { numRuns: 100 },
    );
    const swapped = [...rows];
    [swapped[4], swapped[5]] = [swapped[5]!, swapped[4]!];
    expect(await verifyAuditChain(swapped)).toMatchObject({ ok: false, seq: 5 });
  });
});
