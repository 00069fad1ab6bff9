// The pure security pieces under Node: sealing with master-key rotation, admin credential checks, and
// the audit hash chain, with fast-check properties where a hand-picked case would prove little.
import { ConfigError } from "../../src/errors";
import fc from "fast-check";
import { generateKeyPair, importJWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { appendAuditEntry, verifyAuditChain, type AuditEntry } from "../../src/audit/chain";
import { AdminAuthError, authenticateAdmin, canAccessWorkload, loadAdminAuth, scopeCovers } from "../../src/auth/admin";
import { toBase64, toHex, utf8 } from "../../src/crypto/bytes";
import { generateMasterKey, openSecret, parseMasterKeys, rewrapSecret, sealSecret, SealError } from "../../src/crypto/seal";
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
      expect(e).toBeInstanceOf(ConfigError);
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
    const nowS = Math.floor(Date.now() / 1000);
    const claims = { sub: "x", iat: nowS, exp: nowS + 60 };
    const b64u = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const none = `${b64u({ alg: "none", kid: ed!.kid })}.${b64u(claims)}.`;
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: ed!.kid }).sign(new Uint8Array(32));
    const rsa = await generateKeyPair("RS256");
    const rs = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: ed!.kid }).sign(rsa.privateKey);
    for (const token of [none, hs, rs]) await expect(authenticateAdmin(auth, `Bearer ${token}`)).rejects.toThrow(AdminAuthError);
    expect((await authenticateAdmin(auth, `Bearer ${await adminJwt(ed!, { sub: "ops" })}`)).subject).toBe("jwt:/ops");
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

  it("refuses a JWT that lives longer than ADMIN_JWT_MAX_TTL_SECONDS (default 7200 s)", async () => {
    const [ed] = await testJwtSigners();
    const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.publicJwk] }) });
    expect(auth.maxTtlSeconds).toBe(7200);
    const key = await importJWK(ed!.privateJwk, "EdDSA");
    const t0 = 1_900_000_000;
    const jwt = (iat: number, exp: number) => new SignJWT({ sub: "ops", iat, exp }).setProtectedHeader({ alg: "EdDSA", kid: ed!.kid }).sign(key);
    const now = new Date(t0 * 1000);
    await expect(authenticateAdmin(auth, `Bearer ${await jwt(t0, t0 + 7201)}`, now)).rejects.toThrow(AdminAuthError);
    expect((await authenticateAdmin(auth, `Bearer ${await jwt(t0, t0 + 7200)}`, now)).kind).toBe("jwt");
    // A future iat does not stretch the lifetime: it counts from now.
    await expect(authenticateAdmin(auth, `Bearer ${await jwt(t0 + 600, t0 + 7800)}`, now)).rejects.toThrow(AdminAuthError);
    // iat is required: without it even a one-minute token is refused.
    const noIat = await new SignJWT({ sub: "ops", exp: t0 + 60 }).setProtectedHeader({ alg: "EdDSA", kid: ed!.kid }).sign(key);
    await expect(authenticateAdmin(auth, `Bearer ${noIat}`, now)).rejects.toThrow("claim iat is invalid");
  });

  it("property: a scope entry ending in a separator is a prefix, any other entry one exact id", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), fc.constantFrom(..."._~:@+-"), (entry, rest, sep) => {
        const last = entry.at(-1)!;
        if ("._~:@+-".includes(last)) expect(scopeCovers(entry, entry + rest)).toBe(true);
        else expect(scopeCovers(entry, entry + rest)).toBe(rest === "");
        expect(scopeCovers(entry + sep, entry + sep + rest)).toBe(true);
        expect(scopeCovers(entry + sep, entry)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe("admin credentials: edge cases", () => {
  it("refuses a signed JWT whose sub is empty or not a string, and still accepts a JWT-shaped static token", async () => {
    const [ed] = await testJwtSigners();
    const auth = await loadAdminAuth({ ADMIN_TOKEN: "aaa.bbb.ccc", ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.publicJwk] }) });
    const key = await (await import("jose")).importJWK(ed!.privateJwk, "EdDSA");
    for (const sub of ["", 123, { a: 1 }]) {
      const jwt = await new SignJWT({ sub } as unknown as Record<string, unknown>).setProtectedHeader({ alg: "EdDSA", kid: ed!.kid }).setIssuedAt().setExpirationTime("5m").sign(key);
      await expect(authenticateAdmin(auth, `Bearer ${jwt}`)).rejects.toThrow("claim sub is invalid");
    }
    expect((await authenticateAdmin(auth, "Bearer aaa.bbb.ccc")).kind).toBe("token");
  });

  it("refuses a non-string iss, and escapes sub so that (iss, sub) pairs never share a subject", async () => {
    const [ed] = await testJwtSigners();
    const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed!.publicJwk] }) });
    const key = await importJWK(ed!.privateJwk, "EdDSA");
    const jwt = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: ed!.kid }).setIssuedAt().setExpirationTime("5m").sign(key);
    for (const iss of [42, { a: 1 }]) await expect(authenticateAdmin(auth, `Bearer ${await jwt({ sub: "ops", iss })}`)).rejects.toThrow("claim iss is invalid");
    const a = await authenticateAdmin(auth, `Bearer ${await jwt({ sub: "x", iss: "https://idp.example/t" })}`);
    const b = await authenticateAdmin(auth, `Bearer ${await jwt({ sub: "t/x", iss: "https://idp.example" })}`);
    expect([a.subject, b.subject]).toEqual(["jwt:https://idp.example/t/x", "jwt:https://idp.example/t%2Fx"]);
    expect((await authenticateAdmin(auth, `Bearer ${await jwt({ sub: "a\nb" })}`)).subject).toBe("jwt:/a%0Ab");
  });
});

describe("audit hash chain", () => {
  it("hashes what storage gives back: undefined fields as null, details through JSON", async () => {
    const entry = appendAuditEntry(null, { shard: "admin", at: 1, actor: "a", event: "e", workload: undefined as unknown as null, keyId: null, version: null, session: null, ok: true, reason: null, details: { when: new Date(0), list: [undefined, 1] } });
    const readBack = JSON.parse(JSON.stringify(entry)) as AuditEntry;
    expect(readBack.workload).toBeNull();
    expect(readBack.shard).toBe("admin");
    expect(verifyAuditChain([readBack])).toMatchObject({ ok: true });
  });

  function chain(n: number, shard = "admin"): AuditEntry[] {
    const rows: AuditEntry[] = [];
    for (let i = 0; i < n; i++) {
      const prev = rows.at(-1) ?? null;
      rows.push(appendAuditEntry(prev, { shard, at: 1_700_000_000_000 + i, actor: "guest", event: "attest", workload: `w${i % 3}`, keyId: null, version: null, session: null, ok: i % 2 === 0, reason: null, details: { n: i, nested: { tcb: "00" } } }));
    }
    return rows;
  }

  it("verifies page by page the same as whole, and catches a truncated tail only up to the witness", () => {
    const rows = chain(30);
    const witness = { seq: 30, hash: rows[29]!.hash };
    expect(verifyAuditChain(rows, { witness })).toMatchObject({ ok: true, count: 30 });
    const first = verifyAuditChain(rows.slice(0, 10), { witness, final: false });
    expect(first).toMatchObject({ ok: true, count: 10 });
    expect(verifyAuditChain(rows.slice(10), { from: first.ok ? first.head! : undefined, witness })).toMatchObject({ ok: true });
    expect(verifyAuditChain(rows.slice(0, 27)).ok).toBe(true);
    expect(verifyAuditChain(rows.slice(0, 27), { witness })).toMatchObject({ ok: false, seq: 28 });
    // Not a non-final page: then the end is not checked yet.
    expect(verifyAuditChain(rows.slice(0, 27), { witness, final: false })).toMatchObject({ ok: true, count: 27 });
    // The witness may lag: a tail cut after the witnessed row passes, a cut before it does not.
    expect(verifyAuditChain(rows.slice(0, 27), { witness: { seq: 25, hash: rows[24]!.hash } })).toMatchObject({ ok: true, count: 27 });
    expect(verifyAuditChain(rows.slice(0, 24), { witness: { seq: 25, hash: rows[24]!.hash } })).toMatchObject({ ok: false, seq: 25 });
    // The witnessed row rewritten is refused.
    expect(verifyAuditChain(rows, { witness: { seq: 25, hash: rows[23]!.hash } })).toMatchObject({ ok: false, seq: 25 });
  });

  it("a shard's rows do not verify as another shard's, nor mixed with them", () => {
    const admin = chain(10);
    const session = chain(10, "session/abc");
    expect(verifyAuditChain(session)).toMatchObject({ ok: true, count: 10 });
    expect(session.map((r) => r.hash)).not.toContain(admin[0]!.hash);
    expect(verifyAuditChain([{ ...admin[0]!, shard: "session/abc" }])).toEqual({ ok: false, seq: 1, reason: "row 1 was altered" });
    expect(verifyAuditChain([...admin.slice(0, 4), ...session.slice(4)])).toEqual({ ok: false, seq: 5, reason: "row 5 belongs to another shard" });
  });

  it("property: mutating any field of any row, deleting it, or swapping two rows fails at that row", () => {
    const rows = chain(20);
    const fields = ["shard", "at", "actor", "event", "workload", "ok", "reason", "details"] as const;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 19 }), fc.constantFrom(...fields), (k, field) => {
        const mutated = rows.map((r) => ({ ...r }));
        const row = mutated[k]! as unknown as Record<string, unknown>;
        row[field] = field === "at" ? (row.at as number) + 1 : field === "ok" ? !row.ok : field === "details" ? { ...(row.details as object), n: -1 } : `${String(row[field])}!`;
        expect(verifyAuditChain(mutated)).toMatchObject({ ok: false, seq: k + 1 });
        expect(verifyAuditChain(rows.filter((_, i) => i !== k), { witness: { seq: 20, hash: rows[19]!.hash } })).toMatchObject({ ok: false, seq: k + 1 });
      }),
      { numRuns: 100 },
    );
    const swapped = [...rows];
    [swapped[4], swapped[5]] = [swapped[5]!, swapped[4]!];
    expect(verifyAuditChain(swapped)).toMatchObject({ ok: false, seq: 5 });
  });
});
