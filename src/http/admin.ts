import { Hono } from "hono";
import { z } from "zod";
import { audit, type AuditFields } from "../audit/log";
import type { AuditEntry } from "../audit/chain";
import type { Env } from "../env";
import { destroySecret, listSecretVersions, newVersionStatement, rewrapAll, runVersioned, softDeleteSecret, VersionConflict } from "../store/secrets";
import { destroyWorkload, getWorkloadRecord, listWorkloads, softDeleteWorkload, updateWorkload, type WorkloadRecord } from "../store/workloads";
import { requireAdmin, requireUnrestricted, requireWorkload, type AdminEnv } from "./admin-auth";
import { jsonBody, SecretValue, validate, WorkloadId } from "./body";
import { keyring } from "./keyring";
import { checkTeeConfig } from "./tee-config";
import { fail } from "./problem";

/**
 * Administration under /kbs/v0/admin: workloads and their named, versioned secrets (values are write-only),
 * master-key rotation and the audit log. Every call is authenticated, scoped and audited.
 */
export const admin = new Hono<AdminEnv>({ strict: false });
admin.use(requireAdmin);

const KeyId = WorkloadId;
const Page = z.object({ after: z.string().max(128).default(""), limit: z.coerce.number().int().min(1).max(500).default(100) });
const AuditPage = z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(500) });
const WorkloadChange = z
  .strictObject({
    launch_measurement: z.string().regex(/^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{96})$/, "hex of 32 bytes (SEV) or 48 bytes (SNP)").optional(),
    tee_config: z.string().max(16_384).optional(),
  })
  .refine((b) => b.launch_measurement !== undefined || b.tee_config !== undefined, "give launch_measurement and/or tee_config");
const SecretBody = z.strictObject({ value: SecretValue });

const workloadJson = (w: WorkloadRecord) => ({
  workload_id: w.workloadId,
  launch_measurement: w.launchMeasurement,
  tee: w.launchMeasurement.length === 64 ? "sev" : "snp",
  tee_config: w.teeConfig,
  created_at: w.createdAt,
  updated_at: w.updatedAt,
  deleted_at: w.deletedAt,
});

/** The route's workload id, validated and within the caller's scope. */
function workloadParam(c: Parameters<typeof requireWorkload>[0], name = "id"): string {
  const id = validate(WorkloadId, c.req.param(name), "workload id");
  requireWorkload(c, id);
  return id;
}

function record(env: Env, actor: string, event: string, fields: Partial<AuditFields> = {}) {
  return audit(env, { actor, event, ok: true, ...fields });
}

admin.get("/workloads", async (c) => {
  const page = validate(Page, c.req.query(), "query");
  const who = c.get("admin");
  const rows = await listWorkloads(c.env.DB, { ...page, prefixes: who.scope });
  await record(c.env, who.subject, "admin.read", { details: { what: "workloads", count: rows.length } });
  return c.json({ workloads: rows.map(workloadJson), next: rows.length === page.limit ? rows.at(-1)!.workloadId : null });
});

admin.get("/workloads/:id", async (c) => {
  const id = workloadParam(c);
  const w = await getWorkloadRecord(c.env.DB, id);
  if (!w) fail(404, "workload-unknown", `no workload "${id}"`);
  const secrets = await listSecretVersions(c.env.DB, id);
  await record(c.env, c.get("admin").subject, "admin.read", { workload: id });
  return c.json({
    ...workloadJson(w),
    secrets: secrets.map((s) => ({ key_id: s.keyId, version: s.version, master_key: s.kid, created_at: s.createdAt, created_by: s.createdBy, deleted_at: s.deletedAt })),
  });
});

admin.patch("/workloads/:id", async (c) => {
  const id = workloadParam(c);
  const change = await jsonBody(c, WorkloadChange);
  const current = await getWorkloadRecord(c.env.DB, id);
  if (!current || current.deletedAt !== null) fail(404, "workload-unknown", `no live workload "${id}"`);
  const launchMeasurement = change.launch_measurement?.toLowerCase() ?? current.launchMeasurement;
  const teeConfig = change.tee_config ?? current.teeConfig;
  checkTeeConfig(launchMeasurement, teeConfig);
  await updateWorkload(c.env.DB, id, { launchMeasurement, teeConfig }, Date.now());
  await record(c.env, c.get("admin").subject, "workload.update", { workload: id, details: { launch_measurement: launchMeasurement, tee_config_changed: change.tee_config !== undefined } });
  return c.json(workloadJson((await getWorkloadRecord(c.env.DB, id))!));
});

admin.delete("/workloads/:id", async (c) => {
  const id = workloadParam(c);
  if (!(await softDeleteWorkload(c.env.DB, id, Date.now()))) fail(404, "workload-unknown", `no live workload "${id}"`);
  await record(c.env, c.get("admin").subject, "workload.delete", { workload: id });
  return c.body(null, 204);
});

admin.post("/workloads/:id/destroy", async (c) => {
  const id = workloadParam(c);
  if (!(await destroyWorkload(c.env.DB, id))) fail(409, "not-deleted", `workload "${id}" must be deleted (DELETE) before it can be destroyed`);
  await record(c.env, c.get("admin").subject, "workload.destroy", { workload: id });
  return c.body(null, 204);
});

admin.put("/workloads/:id/secrets/:key_id", async (c) => {
  const id = workloadParam(c);
  const keyId = validate(KeyId, c.req.param("key_id"), "key id");
  const { value } = await jsonBody(c, SecretBody);
  const w = await getWorkloadRecord(c.env.DB, id);
  if (!w || w.deletedAt !== null) fail(404, "workload-unknown", `no live workload "${id}"`);
  const actor = c.get("admin").subject;
  const { version, statement } = await newVersionStatement(c.env.DB, await keyring(c.env), { workloadId: id, keyId, value: new TextEncoder().encode(value), actor, now: Date.now() });
  try {
    await runVersioned(c.env.DB, [statement]);
  } catch (e) {
    if (e instanceof VersionConflict) fail(409, "version-conflict", "another update of this secret happened at the same time; retry");
    throw e;
  }
  await record(c.env, actor, "secret.update", { workload: id, keyId, version });
  return c.json({ workload_id: id, key_id: keyId, version }, 201);
});

admin.delete("/workloads/:id/secrets/:key_id", async (c) => {
  const id = workloadParam(c);
  const keyId = validate(KeyId, c.req.param("key_id"), "key id");
  const version = c.req.query("version") === undefined ? undefined : validate(z.coerce.number().int().min(1), c.req.query("version"), "version");
  const n = await softDeleteSecret(c.env.DB, id, keyId, Date.now(), version);
  if (n === 0) fail(404, "secret-unknown", `no live version of secret "${keyId}" of workload "${id}"`);
  await record(c.env, c.get("admin").subject, "secret.delete", { workload: id, keyId, version: version ?? null, details: { versions: n } });
  return c.body(null, 204);
});

admin.post("/workloads/:id/secrets/:key_id/destroy", async (c) => {
  const id = workloadParam(c);
  const keyId = validate(KeyId, c.req.param("key_id"), "key id");
  const n = await destroySecret(c.env.DB, id, keyId);
  if (n === 0) fail(409, "not-deleted", `secret "${keyId}" has no deleted versions to destroy`);
  await record(c.env, c.get("admin").subject, "secret.destroy", { workload: id, keyId, details: { versions: n } });
  return c.body(null, 204);
});

admin.post("/rewrap", async (c) => {
  const who = requireUnrestricted(c);
  const result = await rewrapAll(c.env.DB, await keyring(c.env));
  await record(c.env, who.subject, "keys.rewrap", { details: result });
  return c.json(result);
});

admin.get("/audit", async (c) => {
  const who = requireUnrestricted(c);
  const page = validate(AuditPage, c.req.query(), "query");
  // The head first, then rows up to it: rows appended meanwhile cannot make the page look truncated.
  const head = await c.env.AUDIT.get(c.env.AUDIT.idFromName("audit")).head();
  const { results } = await c.env.DB.prepare("SELECT * FROM audit_log WHERE seq > ?1 AND seq <= ?3 ORDER BY seq LIMIT ?2").bind(page.after, page.limit, head?.seq ?? 0).all<AuditRow>();
  // One row per read of the log (its first page), not per page: a reader must be able to reach the end.
  if (page.after === 0) await record(c.env, who.subject, "admin.read", { details: { what: "audit" } });
  const entries = results.map(entryOf);
  return c.json({ entries, head, next: entries.length === page.limit ? entries.at(-1)!.seq : null });
});

interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  event: string;
  workload: string | null;
  key_id: string | null;
  version: number | null;
  session: string | null;
  ok: number;
  reason: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

const entryOf = (r: AuditRow): AuditEntry => ({
  seq: r.seq,
  at: r.at,
  actor: r.actor,
  event: r.event,
  workload: r.workload,
  keyId: r.key_id,
  version: r.version,
  session: r.session,
  ok: r.ok === 1,
  reason: r.reason,
  details: JSON.parse(r.details) as Record<string, unknown>,
  prevHash: r.prev_hash,
  hash: r.hash,
});
