// The security properties, end to end through the Worker with real D1, Durable Objects and limits:
// secrets sealed at rest, workloads isolated from each other, many concurrent sessions, scoped admin,
// the audit chain, key ids (one segment, or a Trustee resource path), Trustee's admin resource API, the AMD
// certificate import (attestation without KDS), and nothing secret in logs.
import { env } from "cloudflare:workers";
import { calculateJwkThumbprint } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { verifyAuditLog } from "../../src/audit/client";
import { toBase64, toBase64Url, toHex, utf8 } from "../../src/crypto/bytes";
import { KeyId } from "../../src/http/body";
import { adminJwt, kbsClientToken } from "../helpers/admin-jwt";
import { guestKey, type GuestKey } from "../../lab/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { createCrl, importChip, reissue, type SyntheticChip } from "../../lab/synthetic-amd";
import { attestAs, registerWorkload as registerShared, releasedSecret, type Registered } from "./flows";
import { ADMIN, attest, auth, call, expectProblem, expectTrusteeProblem, exportAudit, getKey, register, type Session } from "./kbs";
import { bindingOf } from "../../lab/guest";

let milan: SyntheticChip;
let key: GuestKey;

beforeAll(async () => {
  milan = await importChip(env.TEST_CHIPS[0]!);
  key = await guestKey();
});

afterEach(() => vi.restoreAllMocks());

const mockKds = () => vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);

const registerWorkload = (prefix = "sec") => registerShared(prefix);
const attested = (w: Registered) => attestAs(milan, key, w);
const secretFor = (session: Session, keyId: string) => releasedSecret(key, session, keyId);

const adminCall = (path: string, init: RequestInit = {}, headers: Record<string, string> = ADMIN) =>
  call(`/admin${path}`, { ...init, headers: { "content-type": "application/json", ...headers, ...(init.headers as Record<string, string>) } });

/** Every row of every D1 table, as text (blobs as hex and latin-1), for at-rest checks. */
async function dumpDatabase(): Promise<string> {
  const { results: tables } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'").all<{ name: string }>();
  const parts: string[] = [];
  for (const { name } of tables) {
    const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
    for (const row of results) {
      for (const v of Object.values(row)) {
        if (v instanceof ArrayBuffer || Array.isArray(v)) {
          const bytes = new Uint8Array(v as ArrayBuffer);
          parts.push(toHex(bytes), String.fromCharCode(...bytes));
        } else parts.push(String(v));
      }
    }
  }
  return parts.join("\n");
}

describe("secrets at rest", () => {
  it("keeps no secret in D1: not its bytes, hex, base64 or base64url", async () => {
    mockKds();
    const w = await registerWorkload();
    const extra = `second-secret-${toHex(crypto.getRandomValues(new Uint8Array(8)))}`;
    expect((await adminCall(`/workloads/${w.workloadId}/secrets/tls`, { method: "PUT", body: JSON.stringify({ value: extra }) })).status).toBe(201);
    // The guest still gets both back, so the rows really hold them.
    const session = await attested(w);
    expect(await secretFor(session, w.workloadId)).toBe(w.passphrase);
    expect(await secretFor(session, "tls")).toBe(extra);

    const dump = await dumpDatabase();
    for (const secret of [w.passphrase, extra]) {
      const bytes = utf8(secret);
      for (const form of [secret, toHex(bytes), toBase64(bytes), toBase64Url(bytes)]) expect(dump).not.toContain(form);
    }
  });

  it("does not open a row moved to another workload (AAD binds workload, key and version)", async () => {
    mockKds();
    const a = await registerWorkload();
    const b = await registerWorkload();
    // Overwrite b's sealed passphrase with a's: same master key, wrong context.
    await env.DB.prepare(
      "UPDATE secrets SET wrapped_key = (SELECT wrapped_key FROM secrets WHERE workload_id = ?1), ciphertext = (SELECT ciphertext FROM secrets WHERE workload_id = ?1) WHERE workload_id = ?2",
    )
      .bind(a.workloadId, b.workloadId)
      .run();
    const session = await attested(b);
    const res = await getKey(session, b.workloadId);
    await expectProblem(res, 503, "secret-unavailable");
  });
});

describe("workload isolation", () => {
  it("a session attested for A reads none of B's secrets, by any key id", async () => {
    mockKds();
    const a = await registerWorkload();
    const b = await registerWorkload();
    expect((await adminCall(`/workloads/${b.workloadId}/secrets/shared`, { method: "PUT", body: JSON.stringify({ value: "b-only-value" }) })).status).toBe(201);
    const session = await attested(a);
    for (const keyId of [b.workloadId, "shared", `${b.workloadId}/..`, encodeURIComponent(`../${b.workloadId}`)]) {
      const res = await getKey(session, keyId);
      // 400: not a key id at all; 401: no such key for this session; 404: the path is not /key/<id>.
      expect([400, 401, 404]).toContain(res.status);
      const text = await res.text();
      expect(text).not.toContain(b.passphrase);
      expect(text).not.toContain("b-only-value");
    }
    // A's own key is still there: the refusals above were about B, not a broken session.
    expect(await secretFor(session, a.workloadId)).toBe(a.passphrase);
  });

  // 40 sessions in flight at once, 4 per workload, still interleave attestations and releases across and within
  // workloads. It was 200 over 20 (~50-70 s): each request through the Worker costs more the more came before it
  // in this file (see RUNS_PER_GROUP in fuzz.test.ts), and their audit rows slowed the audit-chain tests below.
  it("40 parallel sessions over 10 workloads: each gets exactly its own secret", async () => {
    mockKds();
    const workloads = await Promise.all(Array.from({ length: 10 }, () => registerWorkload("par")));
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const w = workloads[i % 10]!;
        const session = await attested(w);
        return { w, got: await secretFor(session, w.workloadId) };
      }),
    );
    for (const { w, got } of results) expect(got).toBe(w.passphrase);
    expect(new Set(results.map((r) => r.got)).size).toBe(10);
  }, 120_000);
});

describe("scoped admin", () => {
  const [ed, es] = env.TEST_JWT_SIGNERS;
  const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });

  it("accepts EdDSA and ES256 JWTs with exp, refuses expired or exp-less ones, and audits the subject", async () => {
    for (const signer of [ed!, es!]) {
      const jwt = await adminJwt(signer, { sub: `ops-${signer.alg}` });
      expect((await register({ workload_id: `jwt-${signer.alg}`, launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }, bearer(jwt))).status).toBe(200);
    }
    await expectProblem(await register({ workload_id: "jwt-x", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }, bearer(await adminJwt(ed!, { exp: -120 }))), 401, "admin-unauthorized");
    await expectProblem(await register({ workload_id: "jwt-x", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }, bearer(await adminJwt(ed!, { exp: null }))), 401, "admin-unauthorized");
    const row = await env.DB.prepare("SELECT actor FROM audit_log WHERE event = 'workload.register' AND workload = 'jwt-ES256'").first<{ actor: string }>();
    // JWT subjects are namespaced, so no JWT can be recorded as the static token ("token").
    expect(row?.actor).toBe("jwt:/ops-ES256");
  });

  it("limits a scoped token to its workload prefixes, and keeps global operations for unscoped ones", async () => {
    const tenant = bearer(await adminJwt(ed!, { sub: "tenant-a-ops", scope: "tenant-a. shared-" }));
    const body = (id: string) => ({ workload_id: id, launch_measurement: "cd".repeat(48), tee_config: "", passphrase: "p" });
    expect((await register(body("tenant-a.web"), tenant)).status).toBe(200);
    await expectProblem(await register(body("tenant-b.web"), tenant), 403, "admin-forbidden");
    expect((await register(body("tenant-b.web"))).status).toBe(200);

    const list = (await (await adminCall("/workloads?limit=500", {}, tenant)).json()) as { workloads: { workload_id: string }[] };
    expect(list.workloads.length).toBeGreaterThan(0);
    expect(list.workloads.every((w) => w.workload_id.startsWith("tenant-a.") || w.workload_id.startsWith("shared-"))).toBe(true);
    await expectProblem(await adminCall(`/workloads/${"tenant-b.web"}`, {}, tenant), 403, "admin-forbidden");
    await expectProblem(await adminCall("/audit", {}, tenant), 403, "admin-forbidden");
    await expectProblem(await adminCall("/rewrap", { method: "POST" }, tenant), 403, "admin-forbidden");
  });

  it("reads workloads without secret values, versions secrets, soft-deletes and destroys", async () => {
    mockKds();
    const w = await registerWorkload();
    const put = await adminCall(`/workloads/${w.workloadId}/secrets/${w.workloadId}`, { method: "PUT", body: JSON.stringify({ value: "rotated-passphrase" }) });
    expect(await put.json()).toMatchObject({ version: 2 });
    const detail = await (await adminCall(`/workloads/${w.workloadId}`)).text();
    expect(detail).not.toContain(w.passphrase);
    expect(detail).not.toContain("rotated-passphrase");
    expect((JSON.parse(detail) as { secrets: { version: number }[] }).secrets.map((s) => s.version)).toEqual([1, 2]);

    const session = await attested(w);
    expect(await secretFor(session, w.workloadId)).toBe("rotated-passphrase");
    // Deleting version 2 falls back to version 1; deleting all releases nothing.
    expect((await adminCall(`/workloads/${w.workloadId}/secrets/${w.workloadId}?version=2`, { method: "DELETE" })).status).toBe(204);
    expect(await secretFor(session, w.workloadId)).toBe(w.passphrase);
    await expectProblem(await adminCall(`/workloads/${w.workloadId}/destroy`, { method: "POST" }), 409, "not-deleted");
    expect((await adminCall(`/workloads/${w.workloadId}`, { method: "DELETE" })).status).toBe(204);
    await expectProblem(await call("/auth", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: w.workloadId }) }) }), 400, "workload-unknown");
    expect((await adminCall(`/workloads/${w.workloadId}/destroy`, { method: "POST" })).status).toBe(204);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM secrets WHERE workload_id = ?1").bind(w.workloadId).first("n")).toBe(0);

    const rewrap = (await (await adminCall("/rewrap", { method: "POST" })).json()) as { rewrapped: number; total: number };
    expect(rewrap.rewrapped).toBe(0);
    expect(rewrap.total).toBeGreaterThan(0);
  });
});

describe("key ids", () => {
  it.each([
    ["one segment", "tls", true],
    ["a Trustee resource path", "default/luks/root", true],
    ["two segments", "a/b", true],
    ["every allowed character", "A-z_0.9~:@+/x/y", true],
    ["128 characters", "x".repeat(128), true],
    ["three segments, 128 in all", `${"a".repeat(42)}/${"b".repeat(42)}/${"c".repeat(42)}`, true],
    ["129 characters", "x".repeat(129), false],
    ["three segments, 129 in all", `${"a".repeat(43)}/${"b".repeat(42)}/${"c".repeat(42)}`, false],
    ["four segments", "a/b/c/d", false],
    ["an empty id", "", false],
    ["an empty segment", "a//b", false],
    ["a leading slash", "/a/b", false],
    ["a trailing slash", "a/b/", false],
    ["a . segment", "a/./b", false],
    ["a .. segment", "a/../b", false],
    ["just ..", "..", false],
    ["a space", "a b", false],
    ["a percent sign", "a%2Fb", false],
    ["a backslash", "a\\b", false],
    ["non-ASCII", "clé", false],
  ])("%s: %s", (_name, id, ok) => {
    expect(KeyId.safeParse(id).success).toBe(ok);
  });

  it("the admin API addresses a slashed key id literally or with %2F; refused ones are 400s", async () => {
    const w = await registerWorkload("kid");
    const put = (path: string, value: string) => adminCall(`/workloads/${w.workloadId}/secrets/${path}`, { method: "PUT", body: JSON.stringify({ value }) });
    expect(await (await put("app/tls/key", "one")).json()).toMatchObject({ key_id: "app/tls/key", version: 1 });
    expect(await (await put("app%2Ftls%2Fkey", "two")).json()).toMatchObject({ key_id: "app/tls/key", version: 2 });
    for (const path of ["a/b/c/d", "a//b", "a%2F..%2Fb", "a%2F.%2Fb", "x".repeat(129)]) await expectProblem(await put(path, "v"), 400, "body-invalid");
    expect((await adminCall(`/workloads/${w.workloadId}/secrets/app/tls/key?version=1`, { method: "DELETE" })).status).toBe(204);
    expect((await adminCall(`/workloads/${w.workloadId}/secrets/app%2Ftls%2Fkey/destroy`, { method: "POST" })).status).toBe(204);
    const detail = (await (await adminCall(`/workloads/${w.workloadId}`)).json()) as { secrets: { key_id: string; version: number; deleted_at: number | null }[] };
    expect(detail.secrets.filter((s) => s.key_id === "app/tls/key").map((s) => [s.version, s.deleted_at])).toEqual([[2, null]]);
  });
});

describe("Trustee resources (admin POST and DELETE /kbs/v0/resource/…)", () => {
  const [ed] = env.TEST_JWT_SIGNERS;
  const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
  const resource = (path: string, method: "POST" | "DELETE", body?: Uint8Array, headers: Record<string, string> = ADMIN) =>
    call(`/resource/${path}`, { method, headers: { "content-type": "application/octet-stream", ...headers }, ...(body && { body }) });
  const versions = async (workloadId: string, keyId: string) =>
    ((await (await adminCall(`/workloads/${workloadId}`)).json()) as { secrets: { key_id: string; version: number; created_by: string; deleted_at: number | null }[] }).secrets.filter((s) => s.key_id === keyId);

  /** A refusal in Trustee's shape: {type: …/errors/<Variant>, detail}, and nothing else, as problem+json; its detail. */
  async function expectTrustee(res: Response, status: number, variant: string): Promise<string> {
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    return (await expectTrusteeProblem(res, status, variant)).detail;
  }

  // Binary, with NUL and bytes that are not UTF-8: a resource is bytes, not text.
  const luksKey = () => crypto.getRandomValues(new Uint8Array(64)).map((b, i) => (i === 0 ? 0 : i === 1 ? 0xff : b));

  it("needs the admin credential", async () => {
    const w = await registerWorkload("res");
    for (const headers of [{}, { authorization: "Bearer not-the-admin-token" }, bearer(await adminJwt(ed!, { exp: -120 }))]) {
      expect(await expectTrustee(await resource(`${w.workloadId}/luks/root`, "POST", luksKey(), headers), 401, "AdminAuthAccess")).not.toContain("not-the-admin-token");
      await expectTrustee(await resource(`${w.workloadId}/luks/root`, "DELETE", undefined, headers), 401, "AdminAuthAccess");
    }
    expect(await versions(w.workloadId, `${w.workloadId}/luks/root`)).toEqual([]);
  });

  it("binds to the workload the repository names, stores versions like any secret, and DELETE soft-deletes them", async () => {
    const w = await registerWorkload("res");
    const keyId = `${w.workloadId}/luks/root`;
    for (const _ of [1, 2]) {
      const res = await resource(keyId, "POST", luksKey());
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("");
    }
    expect((await versions(w.workloadId, keyId)).map((v) => [v.version, v.created_by, v.deleted_at])).toEqual([
      [1, "token", null],
      [2, "token", null],
    ]);
    const del = await resource(keyId, "DELETE");
    expect([del.status, await del.text()]).toEqual([200, ""]);
    expect((await versions(w.workloadId, keyId)).every((v) => v.deleted_at !== null)).toBe(true);
    // Nothing live is left to delete; the admin API destroys the deleted versions as for any secret.
    expect(await expectTrustee(await resource(keyId, "DELETE"), 401, "PluginInternalError")).toMatch(/no live version/);
    expect((await adminCall(`/workloads/${w.workloadId}/secrets/${keyId}/destroy`, { method: "POST" })).status).toBe(204);
    expect(await versions(w.workloadId, keyId)).toEqual([]);

    const audit = (await env.DB.prepare("SELECT event, key_id, version, actor FROM audit_log WHERE shard = ?1 AND event LIKE 'secret.%' ORDER BY seq").bind(`admin/${w.workloadId}`).all()).results;
    expect(audit.map((r) => [r.event, r.key_id, r.version, r.actor])).toEqual([
      ["secret.update", keyId, 1, "token"],
      ["secret.update", keyId, 2, "token"],
      ["secret.delete", keyId, null, "token"],
      ["secret.destroy", keyId, null, "token"],
    ]);
  });

  it("binds to ?workload_id= when given, whatever the repository", async () => {
    const w = await registerWorkload("res");
    expect((await resource(`default/luks/root?workload_id=${w.workloadId}`, "POST", luksKey())).status).toBe(200);
    expect((await versions(w.workloadId, "default/luks/root")).map((v) => v.version)).toEqual([1]);
    expect((await resource(`default/luks/root?workload_id=${w.workloadId}`, "DELETE")).status).toBe(200);
    expect((await versions(w.workloadId, "default/luks/root"))[0]!.deleted_at).not.toBeNull();
  });

  it("refuses an unknown, deleted or SEV workload, a bad path or binding, and an empty or oversized body, in Trustee's shape", async () => {
    expect(await expectTrustee(await resource("no-such-workload/luks/root", "POST", luksKey()), 401, "PluginInternalError")).toMatch(/no live workload "no-such-workload"/);
    expect(await expectTrustee(await resource("default/luks/root?workload_id=no-such-workload", "POST", luksKey()), 401, "PluginInternalError")).toMatch(/no-such-workload/);
    const gone = await registerWorkload("res");
    expect((await adminCall(`/workloads/${gone.workloadId}`, { method: "DELETE" })).status).toBe(204);
    await expectTrustee(await resource(`${gone.workloadId}/luks/root`, "POST", luksKey()), 401, "PluginInternalError");
    expect((await register({ workload_id: "res-sev", launch_measurement: "ab".repeat(32), tee_config: "", passphrase: "p" })).status).toBe(200);
    expect(await expectTrustee(await resource("res-sev/luks/root", "POST", luksKey()), 401, "PluginInternalError")).toMatch(/SNP/);

    const w = await registerWorkload("res");
    await expectTrustee(await resource(`${w.workloadId}/a%2Fb/c`, "POST", luksKey()), 401, "SerdeError");
    await expectTrustee(await resource(`default/luks/root?workload_id=`, "POST", luksKey()), 401, "SerdeError");
    await expectTrustee(await resource(`${w.workloadId}/luks/root`, "POST", new Uint8Array(0)), 401, "SerdeError");
    expect(await expectTrustee(await resource(`${w.workloadId}/luks/root`, "POST", new Uint8Array(64 * 1024 + 1)), 413, "PluginInternalError")).toMatch(/65536 bytes/);
    // 64 KiB exactly is a resource; nothing else above was stored.
    expect((await resource(`${w.workloadId}/luks/root`, "POST", new Uint8Array(64 * 1024).fill(7))).status).toBe(200);
    expect((await versions(w.workloadId, `${w.workloadId}/luks/root`)).map((v) => v.version)).toEqual([1]);
    // Two segments are not a resource path.
    await expectTrustee(await resource(`${w.workloadId}/luks`, "POST", luksKey()), 404, "InvalidRequestPath");
  });

  it("honours a JWT's scope: the bound workload, not the repository, must be covered", async () => {
    const mine = await registerWorkload("tenant-r.res");
    const other = await registerWorkload("res");
    const tenant = bearer(await adminJwt(ed!, { sub: "tenant-r-ops", scope: "tenant-r." }));
    expect((await resource(`${mine.workloadId}/key/1`, "POST", luksKey(), tenant)).status).toBe(200);
    expect(await expectTrustee(await resource(`${other.workloadId}/key/1`, "POST", luksKey(), tenant), 401, "AdminAuthAccess")).toMatch(/scope/);
    await expectTrustee(await resource(`${mine.workloadId}/key/1?workload_id=${other.workloadId}`, "POST", luksKey(), tenant), 401, "AdminAuthAccess");
    await expectTrustee(await resource(`${other.workloadId}/key/1`, "DELETE", undefined, tenant), 401, "AdminAuthAccess");
    expect(await versions(other.workloadId, `${other.workloadId}/key/1`)).toEqual([]);
    expect((await versions(mine.workloadId, `${mine.workloadId}/key/1`))[0]!.created_by).toBe("jwt:/tenant-r-ops");
  });

  it("accepts Trustee kbs-client's own admin token (no sub, no kid, 2 h) and audits its key's thumbprint", async () => {
    const w = await registerWorkload("res");
    // As jwt_simple signs it: header {alg, typ}, claims iat, exp = iat + 7200, nbf = iat, nothing else.
    const iat = Math.floor(Date.now() / 1000);
    const jwt = await kbsClientToken(ed!, iat);
    expect((await resource(`${w.workloadId}/key/1`, "POST", luksKey(), bearer(jwt))).status).toBe(200);
    expect((await resource(`${w.workloadId}/key/1`, "DELETE", undefined, bearer(jwt))).status).toBe(200);
    const actor = `jwt-key:${await calculateJwkThumbprint(ed!.publicJwk)}`;
    const rows = (await env.DB.prepare("SELECT event, actor FROM audit_log WHERE shard = ?1 AND event LIKE 'secret.%' ORDER BY seq").bind(`admin/${w.workloadId}`).all()).results;
    expect(rows).toEqual([
      { event: "secret.update", actor },
      { event: "secret.delete", actor },
    ]);
    expect((await versions(w.workloadId, `${w.workloadId}/key/1`))[0]!.created_by).toBe(actor);
  });
});

describe("audit chain", () => {
  const verify = () => verifyAuditLog((input, init) => call(String(input).replace("http://kbs.test/kbs/v0", ""), init), "http://kbs.test", env.ADMIN_TOKEN!, 50);

  it("records registrations, sessions, verdicts and releases, and the chain verifies page by page", async () => {
    mockKds();
    const w = await registerWorkload();
    const session = await attested(w);
    await secretFor(session, w.workloadId);
    const shard = await exportAudit(session);
    const rowsOf = async (name: string) =>
      (await env.DB.prepare("SELECT shard, seq, event, ok, reason, version, details FROM audit_log WHERE shard = ?1 ORDER BY seq").bind(name).all<{ event: string; seq: number; version: number | null; details: string }>()).results;
    expect((await rowsOf(`admin/${w.workloadId}`)).map((r) => r.event)).toEqual(["workload.register"]);
    const guest = await rowsOf(shard);
    expect(guest.map((r) => [r.seq, r.event])).toEqual([
      [1, "auth"],
      [2, "attest"],
      [3, "secret.release"],
    ]);
    const release = JSON.parse(guest[2]!.details) as Record<string, string>;
    expect(release.measurement).toBe(toHex(w.measurement));
    expect(release.chip_id_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(guest[2]!.version).toBe(1);
    const verdict = await verify();
    expect(verdict).toMatchObject({ ok: true });
    expect(verdict.ok && verdict.shards).toBeGreaterThanOrEqual(2);
  });

  it("detects rows removed from the end of a shard (the witness keeps its head)", async () => {
    const w = await registerWorkload();
    const shard = `admin/${w.workloadId}`;
    expect((await verify()).ok).toBe(true);
    const row = await env.DB.prepare("SELECT * FROM audit_log WHERE shard = ?1 AND seq = 1").bind(shard).first<Record<string, unknown>>();
    await env.DB.prepare("DELETE FROM audit_log WHERE shard = ?1 AND seq = 1").bind(shard).run();
    expect(await verify()).toMatchObject({ ok: false, shard, seq: 1 });
    // Put it back: the chain is whole again, so the next test starts from an intact log.
    const cols = Object.keys(row!);
    await env.DB.prepare(`INSERT INTO audit_log (${cols.join(", ")}) VALUES (${cols.map((_, i) => `?${i + 1}`).join(", ")})`).bind(...cols.map((k) => row![k])).run();
    expect((await verify()).ok).toBe(true);
  });

  it("detects a guest shard removed whole, and rows moved between shards", async () => {
    mockKds();
    const w = await registerWorkload();
    const session = await attested(w);
    const shard = await exportAudit(session);
    expect((await verify()).ok).toBe(true);
    const rows = (await env.DB.prepare("SELECT * FROM audit_log WHERE shard = ?1").bind(shard).all<Record<string, unknown>>()).results;
    await env.DB.prepare("UPDATE audit_log SET shard = 'session/elsewhere' WHERE shard = ?1").bind(shard).run();
    expect(await verify()).toMatchObject({ ok: false });
    await env.DB.prepare("DELETE FROM audit_log WHERE shard = 'session/elsewhere'").run();
    expect(await verify()).toMatchObject({ ok: false, shard });
    for (const row of rows) {
      const cols = Object.keys(row);
      await env.DB.prepare(`INSERT INTO audit_log (${cols.join(", ")}) VALUES (${cols.map((_, i) => `?${i + 1}`).join(", ")})`).bind(...cols.map((k) => row[k])).run();
    }
    expect((await verify()).ok).toBe(true);
  });

  it("fails verification at an altered row and at a deleted row", async () => {
    const w = await registerWorkload();
    // A second registration of the same id: its shard has two rows.
    expect((await register({ workload_id: w.workloadId, launch_measurement: toHex(w.measurement), tee_config: "", passphrase: "again" })).status).toBe(200);
    const shard = `admin/${w.workloadId}`;
    expect((await verify()).ok).toBe(true);
    await env.DB.prepare("UPDATE audit_log SET actor = 'someone-else' WHERE shard = ?1 AND seq = 1").bind(shard).run();
    expect(await verify()).toMatchObject({ ok: false, shard, seq: 1 });
    await env.DB.prepare("DELETE FROM audit_log WHERE shard = ?1 AND seq = 1").bind(shard).run();
    expect(await verify()).toMatchObject({ ok: false, shard, seq: 1 });
  });
});

describe("AMD certificate import (admin POST /kbs/v0/admin/amd/certificates)", () => {
  const importAmd = (body: unknown, headers: Record<string, string> = ADMIN) => adminCall("/amd/certificates", { method: "POST", body: JSON.stringify(body) }, headers);
  const cacheKeys = async () => (await env.DB.prepare("SELECT cache_key FROM amd_certs ORDER BY cache_key").all<{ cache_key: string }>()).results.map((r) => r.cache_key);

  it("caches a lab chip's ARK, ASK and VCEK, and its guest then attests while KDS is unreachable", async () => {
    const turin = await importChip(env.TEST_CHIPS[1]!);
    const kds = kdsResponder([turin], { fail: "outage" });
    vi.spyOn(globalThis, "fetch").mockImplementation(kds.fetch);
    const w = await registerWorkload("amd");
    const report = async (session: Session) => turin.report({ measurement: w.measurement, reportData: await bindingOf(session.nonce, key) });
    // Nothing cached and KDS down: the VCEK cannot be had.
    const first = await auth(w.workloadId);
    await expectProblem(await attest(first, key, await report(first)), 503, "certs-unavailable");

    const res = await importAmd({ certificates: [turin.vekDer, turin.askDer, turin.arkDer].map(toBase64) });
    expect(await res.json()).toEqual({ imported: 3, refused: [] });
    // The lab root's chain is kept under its fingerprint, never in the slots of AMD's own Turin chain.
    const keys = await cacheKeys();
    expect(keys.filter((k) => k.startsWith("ark/Turin") || k.startsWith("ask/Turin"))).toEqual([expect.stringMatching(/^ark\/Turin\/[0-9a-f]{64}$/), expect.stringMatching(/^ask\/Turin\/[0-9a-f]{64}$/)]);
    expect(keys).toContain(`vcek/Turin/${toHex(turin.chipId.subarray(0, 8))}/${turin.reportedTcb.raw}`);

    const calls = kds.calls.length;
    const session = await attestAs(turin, key, w);
    expect(await secretFor(session, w.workloadId)).toBe(w.passphrase);
    // KDS was still asked (for the ASK and the CRL) and failed: the import alone made the chain.
    expect(kds.calls.length).toBeGreaterThan(calls);
    expect(kds.fail).toBe("outage");
    const row = await env.DB.prepare("SELECT actor, details FROM audit_log WHERE event = 'amd.import' ORDER BY seq DESC").first<{ actor: string; details: string }>();
    expect(row?.actor).toBe("token");
    expect((JSON.parse(row!.details) as { certificates: string[] }).certificates).toHaveLength(3);
  });

  it("refuses what does not chain to a pinned or listed ARK, and CRLs of a listed root, naming each item and its reason", async () => {
    const [chip, genoa] = await Promise.all([importChip(env.TEST_CHIPS[0]!), importChip(env.TEST_CHIPS[2]!)]);
    const before = await cacheKeys();
    // The listed Milan ARK's name and key, signed by another key: not the certificate the operator listed.
    const unlisted = await reissue(chip.arkDer, chip.askPrivateKey);
    const res = await importAmd({ certificates: [unlisted, chip.askDer, genoa.vekDer, new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])].map(toBase64).concat("not base64!"), crls: [toBase64(await createCrl(chip))] });
    const answer = (await res.json()) as { imported: number; refused: { field: string; index: number; reason: string }[] };
    expect(answer.imported).toBe(0);
    expect(answer.refused.map((r) => [r.field, r.index])).toEqual([["certificates", 0], ["certificates", 1], ["certificates", 2], ["certificates", 3], ["certificates", 4], ["crls", 0]]);
    const [ark, ask, vlek, garbage, text, crl] = answer.refused.map((r) => r.reason);
    expect(ark).toMatch(/neither AMD's pinned Milan root nor listed in EXTRA_TRUSTED_ARKS/);
    expect(ask).toMatch(/no trusted ARK-Milan .* signed this ASK/);
    expect(vlek).toMatch(/VLEKs are not cached/);
    expect(garbage).toMatch(/certificate/);
    expect(text).toBe("not standard padded base64");
    expect(crl).toMatch(/no trusted ARK .* signed this CRL/);
    expect(await cacheKeys()).toEqual(before);

    // With its genuine ARK the same CRL is recognised, and refused: the CRL cache holds AMD's own lists only.
    const listed = (await (await importAmd({ certificates: [toBase64(chip.arkDer)], crls: [toBase64(await createCrl(chip))] })).json()) as typeof answer;
    expect(listed.imported).toBe(1);
    expect(listed.refused).toEqual([{ field: "crls", index: 0, reason: "the CRL is an operator-listed root's: only AMD's own CRLs are cached" }]);
  });

  it("needs an unscoped admin credential and a well-formed body", async () => {
    await expectProblem(await importAmd({ certificates: [] }, {}), 401, "admin-unauthorized");
    const scoped = { authorization: `Bearer ${await adminJwt(env.TEST_JWT_SIGNERS[0]!, { sub: "tenant", scope: "tenant-a." })}` };
    await expectProblem(await importAmd({ certificates: ["AA=="] }, scoped), 403, "admin-forbidden");
    for (const body of [{}, { certificates: [] }, { certificates: ["AA=="], extra: [] }, { certificates: Array(101).fill("AA==") }, { crls: ["A".repeat(65_537)] }]) {
      await expectProblem(await importAmd(body), 400, "body-invalid");
    }
  });
});
