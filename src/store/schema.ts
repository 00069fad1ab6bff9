// What the code needs of the D1 schema (migrations/): each table it uses, with the columns it reads or writes
// that a later migration added or that identify the table's shape. /readyz compares this with the database,
// so a deployment that skipped `wrangler d1 migrations apply` is told what is missing. A migration that adds a
// table or a column the code uses adds it here too.

const NEEDED: Record<string, readonly string[]> = {
  workloads: ["workload_id", "tee", "generation", "deleted_at"],
  measurements: ["workload_id", "launch_measurement"],
  configs: ["workload_id", "tee_config"],
  secrets: ["workload_id", "key_id", "version", "kid", "wrapped_key", "ciphertext", "deleted_at"],
  audit_log: ["shard", "seq", "prev_hash", "hash"],
  amd_certs: ["cache_key", "der", "not_after"],
  amd_crls: ["product", "signer", "der", "next_update"],
};

/** The tables and `table.column`s the code needs that the database lacks. */
export async function missingSchema(db: D1Database): Promise<string[]> {
  const tables = Object.keys(NEEDED);
  const { results } = await db
    .prepare(`SELECT m.name AS t, p.name AS c FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table' AND m.name IN (${tables.map((_, i) => `?${i + 1}`).join(", ")})`)
    .bind(...tables)
    .all<{ t: string; c: string }>();
  const have = new Set(results.map((r) => `${r.t}.${r.c}`));
  return tables.flatMap((t) => (results.some((r) => r.t === t) ? NEEDED[t]!.filter((c) => !have.has(`${t}.${c}`)).map((c) => `${t}.${c}`) : [t]));
}
