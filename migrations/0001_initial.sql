-- edgekbs D1 schema as first released. IF NOT EXISTS throughout, so a database created before migrations
-- existed (from the old schema.sql) takes this one as already applied. reference-kbs's three tables
-- (measurements, configs, secrets) stay keyed by workload.

-- The launch digest a workload must show: hex of 32 bytes (SEV) or 48 bytes (SEV-SNP MEASUREMENT).
CREATE TABLE IF NOT EXISTS measurements (
  workload_id        TEXT PRIMARY KEY,
  launch_measurement TEXT NOT NULL
);

-- The TEE configuration of a workload: SEV policy JSON, or for SNP a free string / JSON policy.
CREATE TABLE IF NOT EXISTS configs (
  workload_id TEXT PRIMARY KEY,
  tee_config  TEXT NOT NULL
);

-- Secrets, sealed: each value is AES-256-GCM under its own data key, the data key wrapped by the master
-- key `kid` (KBS_MASTER_KEY); both bind workload_id, key_id and version as AAD, so a moved or swapped row
-- does not open. A D1 dump alone reveals no secret. Several named secrets per workload, each versioned;
-- the newest version that is not deleted is the one released. Deleting is soft (deleted_at); destroying
-- removes the rows. reference-kbs's /register_workload writes a new version of key_id = workload_id.
CREATE TABLE IF NOT EXISTS secrets (
  workload_id TEXT    NOT NULL,
  key_id      TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  kid         TEXT    NOT NULL,   -- master key the data key is wrapped with
  wrapped_key BLOB    NOT NULL,   -- IV ‖ AES-GCM(master, data key)
  ciphertext  BLOB    NOT NULL,   -- IV ‖ AES-GCM(data key, value)
  created_at  INTEGER NOT NULL,   -- unix ms
  created_by  TEXT    NOT NULL,   -- admin subject
  deleted_at  INTEGER,            -- unix ms of the soft delete, NULL while live
  PRIMARY KEY (workload_id, key_id, version)
);

-- Workload lifecycle (measurements and configs hold its measurement and config). Deleting is soft until destroyed.
CREATE TABLE IF NOT EXISTS workloads (
  workload_id TEXT PRIMARY KEY,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  deleted_at  INTEGER
);

-- Append-only audit log, one hash chain: hash = SHA-256 over the row's fields and prev_hash (src/audit).
-- Rows are appended by one Durable Object (AuditLog) so concurrent requests never fork or lose the chain;
-- it also keeps the head, so deleting the newest rows is detected too. Never holds secret values.
CREATE TABLE IF NOT EXISTS audit_log (
  seq       INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,     -- unix ms
  actor     TEXT    NOT NULL,     -- admin subject, "guest", or "system"
  event     TEXT    NOT NULL,     -- e.g. workload.register, auth, attest, secret.release, admin.read
  workload  TEXT,
  key_id    TEXT,
  version   INTEGER,
  session   TEXT,
  ok        INTEGER NOT NULL,
  reason    TEXT,
  details   TEXT    NOT NULL,     -- JSON: measurement, reported TCB, SHA-256 of the chip id, …
  prev_hash TEXT    NOT NULL,
  hash      TEXT    NOT NULL
);

-- AMD certificates (ASK/ASVK/ARK per product, VCEK per product + hwID + REPORTED_TCB) that already
-- chained to a pinned or operator-listed ARK. Spares AMD KDS (which rate-limits) on later attestations;
-- every use re-verifies the chain, so a cached row is never trusted on its own.
CREATE TABLE IF NOT EXISTS amd_certs (
  cache_key  TEXT PRIMARY KEY,   -- "vcek/<Product>/<hwid hex>/<reported tcb hex>", "ask/<Product>", "asvk/<Product>", "ark/<Product>"
  der        BLOB NOT NULL,      -- one DER certificate
  not_after  INTEGER NOT NULL,   -- unix seconds; rows past it are ignored
  fetched_at INTEGER NOT NULL
);

-- AMD CRLs per product and signer kind that verified under a trusted ARK. Kept past next_update so a
-- KDS outage can fall back to the last good list (CRL_MODE decides whether that is acceptable).
CREATE TABLE IF NOT EXISTS amd_crls (
  product     TEXT NOT NULL,     -- "Milan", "Genoa", "Turin"
  signer      TEXT NOT NULL,     -- "VCEK" (ARK → ASK side) or "VLEK" (ARK → ASVK side)
  der         BLOB NOT NULL,     -- the DER CRL as KDS served it
  next_update INTEGER,           -- unix seconds, NULL when the CRL names none
  fetched_at  INTEGER NOT NULL,
  PRIMARY KEY (product, signer)
);
