// Typed D1 access to the seed's three tables (measurements, configs, secrets), keyed by workload.

export interface Workload {
  workloadId: string;
  /** Lowercase hex of 32 (SEV) or 48 (SNP) bytes. */
  launchMeasurement: string;
  teeConfig: string;
}

export interface WorkloadRegistration extends Workload {
  passphrase: string;
}

/** Upsert (as reference-kbs's REPLACE INTO), atomically across the three tables. */
export async function registerWorkload(db: D1Database, w: WorkloadRegistration): Promise<void> {
  await db.batch([
    db
      .prepare("INSERT INTO measurements (workload_id, launch_measurement) VALUES (?1, ?2) ON CONFLICT (workload_id) DO UPDATE SET launch_measurement = excluded.launch_measurement")
      .bind(w.workloadId, w.launchMeasurement),
    db
      .prepare("INSERT INTO configs (workload_id, tee_config) VALUES (?1, ?2) ON CONFLICT (workload_id) DO UPDATE SET tee_config = excluded.tee_config")
      .bind(w.workloadId, w.teeConfig),
    // The seed's single secret per workload has key_id = workload_id.
    db
      .prepare("INSERT INTO secrets (workload_id, key_id, secret) VALUES (?1, ?1, ?2) ON CONFLICT (workload_id, key_id) DO UPDATE SET secret = excluded.secret")
      .bind(w.workloadId, w.passphrase),
  ]);
}

/** The workload's measurement and TEE config, or null when either is missing. */
export async function getWorkload(db: D1Database, workloadId: string): Promise<Workload | null> {
  const row = await db
    .prepare("SELECT m.launch_measurement AS m, c.tee_config AS c FROM measurements m JOIN configs c ON c.workload_id = m.workload_id WHERE m.workload_id = ?1")
    .bind(workloadId)
    .first<{ m: string; c: string }>();
  return row ? { workloadId, launchMeasurement: row.m, teeConfig: row.c } : null;
}

/** A secret of the given workload only: a session can never name another workload's key. */
export async function getSecret(db: D1Database, workloadId: string, keyId: string): Promise<string | null> {
  const row = await db
    .prepare("SELECT secret FROM secrets WHERE workload_id = ?1 AND key_id = ?2")
    .bind(workloadId, keyId)
    .first<{ secret: string }>();
  return row?.secret ?? null;
}
