-- edgekbs D1 schema. Idempotent: `npm start` and the tests apply it on every run.
-- The seed's three tables stay keyed by workload, as in virtee/reference-kbs.

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

-- Secrets released to an attested session of their own workload only.
-- The seed's /register_workload writes one secret whose key_id is the workload id.
CREATE TABLE IF NOT EXISTS secrets (
  workload_id TEXT NOT NULL,
  key_id      TEXT NOT NULL,
  secret      TEXT NOT NULL,
  PRIMARY KEY (workload_id, key_id)
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
