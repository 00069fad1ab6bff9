-- Edge-native state (issue 9) and a stored TEE per workload.

-- A workload's TEE, stored rather than inferred from the length of its launch measurement.
ALTER TABLE workloads ADD COLUMN tee TEXT NOT NULL DEFAULT 'snp' CHECK (tee IN ('snp', 'sev'));
UPDATE workloads SET tee = 'sev'
  WHERE (SELECT length(launch_measurement) FROM measurements m WHERE m.workload_id = workloads.workload_id) = 64;

-- generation moves on with every change of measurement or policy and with a delete; a session remembers the
-- generation it attested under and /key refuses it once the workload has moved on (revocation).
ALTER TABLE workloads ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;

-- The audit log is sharded (src/audit): each shard is its own hash chain, and rows are keyed by (shard, seq).
-- Shard "admin/<workload id>" (or "admin") is written in the same D1 batch as the admin action it records;
-- shard "session/<Durable Object id>" is written inside that session's object together with its state change
-- and exported here by the object's alarm (INSERT OR IGNORE, so a repeated export is harmless). The
-- AuditWitness object keeps each shard's head outside D1, so removed rows are detected too. Never holds secret
-- values. The single chain written before this migration stays, unchanged and verifiable, in audit_log_v1.
ALTER TABLE audit_log RENAME TO audit_log_v1;
CREATE TABLE audit_log (
  shard     TEXT    NOT NULL,
  seq       INTEGER NOT NULL,
  at        INTEGER NOT NULL,     -- unix ms
  actor     TEXT    NOT NULL,     -- "token", "jwt:<iss>/<sub>", or "guest"
  event     TEXT    NOT NULL,     -- e.g. workload.register, auth, attest, secret.release, admin.read
  workload  TEXT,
  key_id    TEXT,
  version   INTEGER,
  session   TEXT,
  ok        INTEGER NOT NULL,
  reason    TEXT,
  details   TEXT    NOT NULL,     -- JSON: measurement, reported TCB, SHA-256 of the chip id, …
  prev_hash TEXT    NOT NULL,
  hash      TEXT    NOT NULL,
  PRIMARY KEY (shard, seq)
);
CREATE INDEX audit_log_workload ON audit_log (workload, event);
