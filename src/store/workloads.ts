// Typed D1 access to workloads: the seed's tables (measurements, configs) plus their lifecycle
// (workloads). Secrets live in ./secrets.ts, sealed.

import type { MasterKeyring } from "../crypto/seal";
import { newVersionStatement, runVersioned } from "./secrets";

export interface Workload {
  workloadId: string;
  /** Lowercase hex of 32 (SEV) or 48 (SNP) bytes. */
  launchMeasurement: string;
  teeConfig: string;
}

export interface WorkloadRecord extends Workload {
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
}

export interface WorkloadRegistration extends Workload {
  passphrase: string;
  actor: string;
  now: number;
}

function upserts(db: D1Database, w: Workload, now: number): D1PreparedStatement[] {
  return [
    db
      .prepare("INSERT INTO measurements (workload_id, launch_measurement) VALUES (?1, ?2) ON CONFLICT (workload_id) DO UPDATE SET launch_measurement = excluded.launch_measurement")
      .bind(w.workloadId, w.launchMeasurement),
    db
      .prepare("INSERT INTO configs (workload_id, tee_config) VALUES (?1, ?2) ON CONFLICT (workload_id) DO UPDATE SET tee_config = excluded.tee_config")
      .bind(w.workloadId, w.teeConfig),
    db
      .prepare("INSERT INTO workloads (workload_id, created_at, updated_at) VALUES (?1, ?2, ?2) ON CONFLICT (workload_id) DO UPDATE SET updated_at = excluded.updated_at, deleted_at = NULL")
      .bind(w.workloadId, now),
  ];
}

/** reference-kbs's register (an upsert), atomically; the passphrase becomes a new version of key_id = workload_id. */
export async function registerWorkload(db: D1Database, ring: MasterKeyring, w: WorkloadRegistration): Promise<{ version: number }> {
  const { version, statement } = await newVersionStatement(db, ring, { workloadId: w.workloadId, keyId: w.workloadId, value: new TextEncoder().encode(w.passphrase), actor: w.actor, now: w.now });
  await runVersioned(db, [...upserts(db, w, w.now), statement]);
  return { version };
}

const SELECT = `SELECT w.workload_id AS id, m.launch_measurement AS m, c.tee_config AS c, w.created_at, w.updated_at, w.deleted_at
  FROM workloads w JOIN measurements m ON m.workload_id = w.workload_id JOIN configs c ON c.workload_id = w.workload_id`;

interface Row {
  id: string;
  m: string;
  c: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

const record = (r: Row): WorkloadRecord => ({ workloadId: r.id, launchMeasurement: r.m, teeConfig: r.c, createdAt: r.created_at, updatedAt: r.updated_at, deletedAt: r.deleted_at });

/** A live (not deleted) workload's measurement and TEE config, or null. */
export async function getWorkload(db: D1Database, workloadId: string): Promise<Workload | null> {
  const row = await db.prepare(`${SELECT} WHERE w.workload_id = ?1 AND w.deleted_at IS NULL`).bind(workloadId).first<Row>();
  return row ? record(row) : null;
}

/** Any workload record, deleted ones included (admin view). */
export async function getWorkloadRecord(db: D1Database, workloadId: string): Promise<WorkloadRecord | null> {
  const row = await db.prepare(`${SELECT} WHERE w.workload_id = ?1`).bind(workloadId).first<Row>();
  return row ? record(row) : null;
}

/** A page of workloads in id order after `after`, optionally only those under one of `prefixes`. */
export async function listWorkloads(db: D1Database, opts: { after: string; limit: number; prefixes: readonly string[] | null }): Promise<WorkloadRecord[]> {
  // Prefix filtering happens here rather than in SQL LIKE, whose wildcards (_ %) may appear in ids.
  const { results } = await db.prepare(`${SELECT} WHERE w.workload_id > ?1 ORDER BY w.workload_id LIMIT ?2`).bind(opts.after, opts.prefixes ? 1000 : opts.limit).all<Row>();
  const rows = opts.prefixes ? results.filter((r) => opts.prefixes!.some((p) => r.id.startsWith(p))) : results;
  return rows.slice(0, opts.limit).map(record);
}

/** Changes a live workload's measurement and/or config; false when there is no such live workload. */
export async function updateWorkload(db: D1Database, workloadId: string, change: Partial<Pick<Workload, "launchMeasurement" | "teeConfig">>, now: number): Promise<boolean> {
  const current = await getWorkload(db, workloadId);
  if (!current) return false;
  await db.batch(upserts(db, { ...current, ...change }, now));
  return true;
}

/** Soft delete: sessions can no longer start or attest; the rows stay until destroyed. */
export async function softDeleteWorkload(db: D1Database, workloadId: string, now: number): Promise<boolean> {
  const r = await db.prepare("UPDATE workloads SET deleted_at = ?2, updated_at = ?2 WHERE workload_id = ?1 AND deleted_at IS NULL").bind(workloadId, now).run();
  return r.meta.changes > 0;
}

/** Destroy a soft-deleted workload with all its secrets; false unless it was soft-deleted first. */
export async function destroyWorkload(db: D1Database, workloadId: string): Promise<boolean> {
  const gone = await db.prepare("SELECT 1 AS x FROM workloads WHERE workload_id = ?1 AND deleted_at IS NOT NULL").bind(workloadId).first();
  if (!gone) return false;
  await db.batch(
    ["secrets", "configs", "measurements", "workloads"].map((t) => db.prepare(`DELETE FROM ${t} WHERE workload_id = ?1`).bind(workloadId)),
  );
  return true;
}
