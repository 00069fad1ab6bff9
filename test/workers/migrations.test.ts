// D1 migrations: a database at the first release (0001), holding workloads, a sealed secret and audit rows,
// is upgraded by the later migrations and keeps its data; the Worker then serves it.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { toHex, utf8 } from "../../src/crypto/bytes";
import { parseMasterKeys, sealSecret } from "../../src/crypto/seal";
import { guestKey } from "../helpers/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { importChip } from "../helpers/synthetic-amd";
import { attestAs, releasedSecret } from "./flows";
import { ADMIN, call, register } from "./kbs";

afterEach(() => vi.restoreAllMocks());

async function dropEverything(): Promise<void> {
  const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{ name: string }>();
  for (const { name } of results) await env.DB.prepare(`DROP TABLE "${name}"`).run();
}

it("upgrades a database from the first release and keeps its workloads, secrets and audit rows", async () => {
  const [first] = env.TEST_MIGRATIONS;
  expect(env.TEST_MIGRATIONS.length).toBeGreaterThan(1);
  await dropEverything();
  await applyD1Migrations(env.DB, [first!]);

  // What a database of the first release holds: an SNP and a SEV workload, a sealed passphrase, one audit row.
  const snp = { workloadId: "old-snp", measurement: new Uint8Array(await crypto.subtle.digest("SHA-384", utf8("old-snp"))), passphrase: "old-passphrase" };
  const sevDigest = "ab".repeat(32);
  const now = Date.now();
  const sealed = await sealSecret(await parseMasterKeys(env.KBS_MASTER_KEY), { workloadId: snp.workloadId, keyId: snp.workloadId, version: 1 }, utf8(snp.passphrase));
  await env.DB.batch([
    env.DB.prepare("INSERT INTO measurements VALUES (?1, ?2), (?3, ?4)").bind(snp.workloadId, toHex(snp.measurement), "old-sev", sevDigest),
    env.DB.prepare("INSERT INTO configs VALUES (?1, ''), ('old-sev', '{\"no_debug\":true}')").bind(snp.workloadId),
    env.DB.prepare("INSERT INTO workloads (workload_id, created_at, updated_at) VALUES (?1, ?2, ?2), ('old-sev', ?2, ?2)").bind(snp.workloadId, now),
    env.DB.prepare("INSERT INTO secrets (workload_id, key_id, version, kid, wrapped_key, ciphertext, created_at, created_by) VALUES (?1, ?1, 1, ?2, ?3, ?4, ?5, 'admin-token')").bind(
      snp.workloadId,
      sealed.kid,
      sealed.wrappedKey,
      sealed.ciphertext,
      now,
    ),
    env.DB.prepare("INSERT INTO audit_log VALUES (1, ?1, 'admin-token', 'workload.register', ?2, ?2, 1, NULL, 1, NULL, '{}', ?3, ?4)").bind(now, snp.workloadId, "0".repeat(64), "f".repeat(64)),
  ]);

  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

  const workload = async (id: string) => (await (await call(`/admin/workloads/${id}`, { headers: ADMIN })).json()) as { tee: string; generation: number; secrets: { version: number }[] };
  expect(await workload("old-sev")).toMatchObject({ tee: "sev", generation: 1 });
  expect(await workload(snp.workloadId)).toMatchObject({ tee: "snp", generation: 1, secrets: [{ version: 1 }] });
  // The old single chain is kept as it was, beside the sharded log.
  expect((await env.DB.prepare("SELECT count(*) AS n FROM audit_log_v1").first<{ n: number }>())!.n).toBe(1);

  // The upgraded workload still releases its old secret to its genuine guest, and registration works.
  const milan = await importChip(env.TEST_CHIPS[0]!);
  vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);
  const key = await guestKey();
  expect(await releasedSecret(key, await attestAs(milan, key, snp), snp.workloadId)).toBe(snp.passphrase);
  expect((await register({ workload_id: "new-after-upgrade", launch_measurement: "cd".repeat(48), tee_config: "", passphrase: "p" })).status).toBe(200);
});
