// Typed D1 access to workloads: reference-kbs's tables (measurements, configs) plus their lifecycle and TEE
// (workloads). Secrets live in ./secrets.ts, sealed. Writes come back as statements, so the admin layer
// commits each action in one batch with its audit row.

import type { MasterKeyring } from "../crypto/seal";
import type { Tee } from "../errors";
import { newVersionStatement, type D1Reader } from "./secrets";

export interface Workload {
  workloadId: string;
  tee: Tee;
  /** Lowercase hex of 32 (SEV) or 48 (SNP) bytes. */
  launchMeasurement: string;
  teeConfig: string;
}

/** A live workload as a guest's session sees it. */
export interface LiveWorkload extends Workload {
  /** Moves on with every change of measurement or policy and with a delete: sessions attested before it are revoked. */
  generation: number;
}

export interface WorkloadRecord extends LiveWorkload {
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
      .prepare(
        "INSERT INTO workloads (workload_id, tee, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (workload_id) DO UPDATE SET tee = excluded.tee, updated_at = excluded.updated_at, deleted_at = NULL, generation = generation + 1",
      )
      .bind(w.workloadId, w.tee, now),
  ];
}

/** reference-kbs's register (an upsert); the passphrase becomes a new version of key_id = workload_id. */
export async function registrationStatements(db: D1Database, ring: MasterKeyring, w: WorkloadRegistration): Promise<{ version: number; statements: D1PreparedStatement[] }> {
  const { version, statement } = await newVersionStatement(db, ring, { workloadId: w.workloadId, keyId: w.workloadId, value: new TextEncoder().encode(w.passphrase), actor: w.actor, now: w.now });
  return { version, statements: [...upserts(db, w, w.now), statement] };
}

const SELECT = `SELECT w.workload_id AS id, w.tee, m.launch_measurement AS m, c.tee_config AS c, w.generation, w.created_at, w.updated_at, w.deleted_at
  FROM workloads w JOIN measurements m ON m.workload_id = w.workload_id JOIN configs c ON c.workload_id = w.workload_id`;

interface Row {
  id: string;
  tee: Tee;
  m: string;
  c: string;
  generation: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

const recordOf = (r: Row): WorkloadRecord => ({
  workloadId: r.id,
  tee: r.tee,
  launchMeasurement: r.m,
  teeConfig: r.c,
  generation: r.generation,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  deletedAt: r.deleted_at,
});

/** A live (not deleted) workload's measurement, TEE config and generation, or null. */
export async function getWorkload(db: D1Reader, workloadId: string): Promise<LiveWorkload | null> {
  const row = await db.prepare(`${SELECT} WHERE w.workload_id = ?1 AND w.deleted_at IS NULL`).bind(workloadId).first<Row>();
  return row ? recordOf(row) : null;
}

/** More SNP workloads sharing one measurement than this is refused rather than appraised one by one. */
export const MAX_MEASUREMENT_CANDIDATES = 32;

/**
 * The live SNP workloads a report with this MEASUREMENT (lowercase hex) could belong to: those registered with
 * it (listed first), then those whose policy's `measurements` list names it. The text search in tee_config only
 * narrows the rows (D1 refuses LIKE patterns this long); the parsed policy decides. At most
 * MAX_MEASUREMENT_CANDIDATES + 1 rows.
 */
export async function snpWorkloadsForMeasurement(db: D1Reader, measurement: string, policyMeasurements: (teeConfig: string) => readonly string[]): Promise<LiveWorkload[]> {
  const { results } = await db
    .prepare(`${SELECT} WHERE w.deleted_at IS NULL AND w.tee = 'snp' AND (m.launch_measurement = ?1 OR instr(lower(c.tee_config), ?1) > 0) ORDER BY m.launch_measurement = ?1 DESC, w.workload_id LIMIT ?2`)
    .bind(measurement, MAX_MEASUREMENT_CANDIDATES + 1)
    .all<Row>();
  return results.filter((r) => r.m === measurement || policyMeasurements(r.c).includes(measurement)).map(recordOf);
}

/** Any workload record, deleted ones included (admin view). */
export async function getWorkloadRecord(db: D1Database, workloadId: string): Promise<WorkloadRecord | null> {
  const row = await db.prepare(`${SELECT} WHERE w.workload_id = ?1`).bind(workloadId).first<Row>();
  return row ? recordOf(row) : null;
}

/** A page of workloads in id order after `after`, optionally only those a scope covers. */
export async function listWorkloads(db: D1Database, opts: { after: string; limit: number; covers: ((workloadId: string) => boolean) | null }): Promise<WorkloadRecord[]> {
  // Scope filtering happens here rather than in SQL LIKE, whose wildcards (_ %) may appear in ids.
  const { results } = await db.prepare(`${SELECT} WHERE w.workload_id > ?1 ORDER BY w.workload_id LIMIT ?2`).bind(opts.after, opts.covers ? 1000 : opts.limit).all<Row>();
  const rows = opts.covers ? results.filter((r) => opts.covers!(r.id)) : results;
  return rows.slice(0, opts.limit).map(recordOf);
}

/** Changes a live workload's measurement and/or config (a new generation: its attested sessions are revoked). */
export function updateStatements(db: D1Database, w: Workload, now: number): D1PreparedStatement[] {
  return upserts(db, w, now);
}

/** Soft delete: sessions can no longer start, attest or read secrets; the rows stay until destroyed. */
export function softDeleteStatement(db: D1Database, workloadId: string, now: number): D1PreparedStatement {
  return db.prepare("UPDATE workloads SET deleted_at = ?2, updated_at = ?2, generation = generation + 1 WHERE workload_id = ?1 AND deleted_at IS NULL").bind(workloadId, now);
}

/** Destroys a soft-deleted workload with all its secrets. */
export function destroyStatements(db: D1Database, workloadId: string): D1PreparedStatement[] {
  // Each delete is conditional on the workload being soft-deleted, so a racing restore keeps everything.
  const deleted = "SELECT workload_id FROM workloads WHERE workload_id = ?1 AND deleted_at IS NOT NULL";
  return ["secrets", "configs", "measurements", "workloads"].map((t) => db.prepare(`DELETE FROM ${t} WHERE workload_id IN (${deleted})`).bind(workloadId));
}
