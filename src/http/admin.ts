import { Hono, type Context } from "hono";
import * as z from "zod/mini";
import { commitAudited } from "../audit/admin-log";
import { auditWitness } from "../audit/witness";
import { canAccessWorkload } from "../auth/admin";
import { auditPage } from "../store/audit";
import {
  countDeletedVersions,
  countLiveVersions,
  destroySecretStatement,
  listSecretVersions,
  newVersionStatement,
  rewrapStatements,
  softDeleteSecretStatement,
} from "../store/secrets";
import { destroyStatements, getWorkloadRecord, listWorkloads, softDeleteStatement, updateStatements, type WorkloadRecord } from "../store/workloads";
import { config } from "../config";
import { requireAdmin, requireUnrestricted, requireWorkload, type AdminEnv } from "./admin-auth";
import { jsonBody, KeyId, LaunchMeasurement, SecretValue, teeOfMeasurement, validate, WorkloadId } from "./body";
import { amdAdmin } from "./admin-amd";
import { checkTeeConfig } from "./tee-config";
import { fail } from "./problem";

/**
 * Administration under /kbs/v0/admin: workloads and their named, versioned secrets (values are write-only),
 * master-key rotation and the audit log. Every call is authenticated, scoped and audited.
 */
export const admin = new Hono<AdminEnv>({ strict: false });
admin.use(requireAdmin);
admin.route("/amd", amdAdmin);

export const Page = z.object({
  after: z._default(z.string().check(z.maxLength(128)), ""),
  limit: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(500)), 100),
});
export const AuditPage = z.object({
  after_shard: z._default(z.string().check(z.maxLength(200)), ""),
  after_seq: z._default(z.coerce.number().check(z.int(), z.minimum(0)), 0),
  limit: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(1000)), 500),
});
export const HeadsPage = z.object({
  after: z._default(z.string().check(z.maxLength(200)), ""),
  limit: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(1000)), 1000),
});
export const WorkloadChange = z
  .strictObject({
    launch_measurement: z.optional(LaunchMeasurement),
    tee_config: z.optional(z.string().check(z.maxLength(16_384))),
  })
  .check(z.refine((b) => b.launch_measurement !== undefined || b.tee_config !== undefined, "give launch_measurement and/or tee_config"));
export const SecretBody = z.strictObject({ value: SecretValue });
/** DELETE …/secrets/<key_id>?version=N: one version only. */
export const SecretVersion = z.coerce.number().check(z.int(), z.minimum(1));

// The answers' shapes (the OpenAPI document shows them; the handlers are typed against them).
export const WorkloadAnswer = z.object({
  workload_id: z.string(),
  launch_measurement: z.string(),
  tee: z.enum(["snp", "sev"]),
  tee_config: z.string(),
  generation: z.number(),
  created_at: z.number(),
  updated_at: z.number(),
  deleted_at: z.nullable(z.number()),
});
export const WorkloadList = z.object({ workloads: z.array(WorkloadAnswer), next: z.nullable(z.string()) });
export const WorkloadDetail = z.extend(WorkloadAnswer, {
  secrets: z.array(z.object({ key_id: z.string(), version: z.number(), master_key: z.string(), created_at: z.number(), created_by: z.string(), deleted_at: z.nullable(z.number()) })),
});
export const SecretStored = z.object({ workload_id: z.string(), key_id: z.string(), version: z.number() });
export const Rewrapped = z.object({ rewrapped: z.number(), total: z.number() });
export const AuditHeads = z.object({ heads: z.array(z.object({ shard: z.string(), seq: z.number(), hash: z.string() })), next: z.nullable(z.string()) });
const AuditRow = z.object({
  shard: z.string(),
  seq: z.number(),
  at: z.number(),
  actor: z.string(),
  event: z.string(),
  workload: z.nullable(z.string()),
  keyId: z.nullable(z.string()),
  version: z.nullable(z.number()),
  session: z.nullable(z.string()),
  ok: z.boolean(),
  reason: z.nullable(z.string()),
  details: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
export const AuditRows = z.object({ entries: z.array(AuditRow), next: z.nullable(z.object({ after_shard: z.string(), after_seq: z.number() })) });

const workloadJson = (w: WorkloadRecord): z.output<typeof WorkloadAnswer> => ({
  workload_id: w.workloadId,
  launch_measurement: w.launchMeasurement,
  tee: w.tee,
  tee_config: w.teeConfig,
  generation: w.generation,
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

/** An audited read: nothing to write but its audit row. */
function recordRead(c: Context<AdminEnv>, workload: string | null, details: Record<string, unknown> = {}): Promise<void> {
  return commitAudited(c.env, workload, async () => ({ statements: [], audit: { actor: c.get("admin").subject, event: "admin.read", details }, result: undefined }));
}

const liveWorkload = async (c: Context<AdminEnv>, id: string): Promise<WorkloadRecord> => {
  const w = await getWorkloadRecord(c.env.DB, id);
  if (!w || w.deletedAt !== null) fail(404, "workload-unknown", `no live workload "${id}"`);
  return w;
};

/**
 * Stores a new version of a live workload's secret with its audit row. The admin PUT and Trustee's resource POST
 * (trustee-admin.ts) both store through here; `admit` may refuse the workload first (resources: SNP only).
 */
export async function addSecretVersion(c: Context<AdminEnv>, id: string, keyId: string, value: Uint8Array, admit: (w: WorkloadRecord) => void = () => undefined): Promise<number> {
  const actor = c.get("admin").subject;
  const ring = await config(c.env).masterKeys();
  return commitAudited(c.env, id, async () => {
    admit(await liveWorkload(c, id));
    const { version, statement } = await newVersionStatement(c.env.DB, ring, { workloadId: id, keyId, value, actor, now: Date.now() });
    return { statements: [statement], audit: { actor, event: "secret.update", keyId, version }, result: version };
  });
}

/** Soft-deletes every live version of a secret (or one), with its audit row: the admin DELETE and Trustee's resource DELETE. */
export async function softDeleteSecret(c: Context<AdminEnv>, id: string, keyId: string, version?: number): Promise<void> {
  const actor = c.get("admin").subject;
  await commitAudited(c.env, id, async () => {
    const n = await countLiveVersions(c.env.DB, id, keyId, version);
    if (n === 0) fail(404, "secret-unknown", `no live version of secret "${keyId}" of workload "${id}"`);
    return {
      statements: [softDeleteSecretStatement(c.env.DB, id, keyId, Date.now(), version)],
      audit: { actor, event: "secret.delete", keyId, version: version ?? null, details: { versions: n } },
      result: undefined,
    };
  });
}

admin.get("/workloads", async (c) => {
  const page = validate(Page, c.req.query(), "query");
  const who = c.get("admin");
  const rows = await listWorkloads(c.env.DB, { ...page, covers: who.scope && ((id) => canAccessWorkload(who, id)) });
  await recordRead(c, null, { what: "workloads", count: rows.length });
  return c.json({ workloads: rows.map(workloadJson), next: rows.length === page.limit ? rows.at(-1)!.workloadId : null } satisfies z.output<typeof WorkloadList>);
});

admin.get("/workloads/:id", async (c) => {
  const id = workloadParam(c);
  const w = await getWorkloadRecord(c.env.DB, id);
  if (!w) fail(404, "workload-unknown", `no workload "${id}"`);
  const secrets = await listSecretVersions(c.env.DB, id);
  await recordRead(c, id);
  return c.json({
    ...workloadJson(w),
    secrets: secrets.map((s) => ({ key_id: s.keyId, version: s.version, master_key: s.kid, created_at: s.createdAt, created_by: s.createdBy, deleted_at: s.deletedAt })),
  } satisfies z.output<typeof WorkloadDetail>);
});

admin.patch("/workloads/:id", async (c) => {
  const id = workloadParam(c);
  const change = await jsonBody(c, WorkloadChange);
  const actor = c.get("admin").subject;
  await commitAudited(c.env, id, async () => {
    const current = await liveWorkload(c, id);
    const launchMeasurement = change.launch_measurement?.toLowerCase() ?? current.launchMeasurement;
    // A workload keeps its TEE: a measurement of the other kind is a new workload, not a change.
    if (teeOfMeasurement(launchMeasurement) !== current.tee) fail(400, "workload-tee-mismatch", `workload "${id}" is registered for ${current.tee}; its launch_measurement must be of that kind`);
    const teeConfig = change.tee_config ?? current.teeConfig;
    checkTeeConfig(current.tee, teeConfig);
    return {
      statements: updateStatements(c.env.DB, { workloadId: id, tee: current.tee, launchMeasurement, teeConfig }, Date.now()),
      audit: { actor, event: "workload.update", details: { launch_measurement: launchMeasurement, tee_config_changed: change.tee_config !== undefined } },
      result: undefined,
    };
  });
  return c.json(workloadJson((await getWorkloadRecord(c.env.DB, id))!));
});

admin.delete("/workloads/:id", async (c) => {
  const id = workloadParam(c);
  const actor = c.get("admin").subject;
  await commitAudited(c.env, id, async () => {
    await liveWorkload(c, id);
    return { statements: [softDeleteStatement(c.env.DB, id, Date.now())], audit: { actor, event: "workload.delete" }, result: undefined };
  });
  return c.body(null, 204);
});

admin.post("/workloads/:id/destroy", async (c) => {
  const id = workloadParam(c);
  const actor = c.get("admin").subject;
  await commitAudited(c.env, id, async () => {
    const w = await getWorkloadRecord(c.env.DB, id);
    if (!w || w.deletedAt === null) fail(409, "not-deleted", `workload "${id}" must be deleted (DELETE) before it can be destroyed`);
    return { statements: destroyStatements(c.env.DB, id), audit: { actor, event: "workload.destroy" }, result: undefined };
  });
  return c.body(null, 204);
});

// A key id may hold "/" (a Trustee resource path): {.+} takes the rest of the path, sent as is or with %2F.
admin.put("/workloads/:id/secrets/:key_id{.+}", async (c) => {
  const id = workloadParam(c);
  const keyId = validate(KeyId, c.req.param("key_id"), "key id");
  const { value } = await jsonBody(c, SecretBody);
  const version = await addSecretVersion(c, id, keyId, new TextEncoder().encode(value));
  return c.json({ workload_id: id, key_id: keyId, version } satisfies z.output<typeof SecretStored>, 201);
});

admin.delete("/workloads/:id/secrets/:key_id{.+}", async (c) => {
  const id = workloadParam(c);
  const keyId = validate(KeyId, c.req.param("key_id"), "key id");
  const version = c.req.query("version") === undefined ? undefined : validate(SecretVersion, c.req.query("version"), "version");
  await softDeleteSecret(c, id, keyId, version);
  return c.body(null, 204);
});

admin.post("/workloads/:id/secrets/:key_id{.+}/destroy", async (c) => {
  const id = workloadParam(c);
  const keyId = validate(KeyId, c.req.param("key_id"), "key id");
  const actor = c.get("admin").subject;
  await commitAudited(c.env, id, async () => {
    const n = await countDeletedVersions(c.env.DB, id, keyId);
    if (n === 0) fail(409, "not-deleted", `secret "${keyId}" has no deleted versions to destroy`);
    return { statements: [destroySecretStatement(c.env.DB, id, keyId)], audit: { actor, event: "secret.destroy", keyId, details: { versions: n } }, result: undefined };
  });
  return c.body(null, 204);
});

admin.post("/rewrap", async (c) => {
  const who = requireUnrestricted(c);
  const ring = await config(c.env).masterKeys();
  const result = await commitAudited(c.env, null, async () => {
    const { statements, rewrapped, total } = await rewrapStatements(c.env.DB, ring);
    return { statements, audit: { actor: who.subject, event: "keys.rewrap", details: { rewrapped, total } }, result: { rewrapped, total } };
  });
  return c.json(result satisfies z.output<typeof Rewrapped>);
});

/** Every shard's head as the witness holds it (outside D1), in shard order; `kbs audit verify` reads these first. */
admin.get("/audit/heads", async (c) => {
  requireUnrestricted(c);
  const page = validate(HeadsPage, c.req.query(), "query");
  const heads = await auditWitness(c.env).list(page.after, page.limit);
  return c.json({ heads, next: heads.length === page.limit ? heads.at(-1)!.shard : null } satisfies z.output<typeof AuditHeads>);
});

/** The exported rows of every shard, in (shard, seq) order. */
admin.get("/audit", async (c) => {
  requireUnrestricted(c);
  const page = validate(AuditPage, c.req.query(), "query");
  // One row per read of the log (its first page), not per page: a reader must be able to reach the end.
  if (page.after_shard === "" && page.after_seq === 0) await recordRead(c, null, { what: "audit" });
  const entries = await auditPage(c.env.DB, { shard: page.after_shard, seq: page.after_seq }, page.limit);
  const last = entries.at(-1);
  return c.json({ entries, next: entries.length === page.limit && last ? { after_shard: last.shard, after_seq: last.seq } : null } satisfies z.output<typeof AuditRows>);
});
