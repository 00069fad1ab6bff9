import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Storage is isolated per test file; applying the idempotent schema here gives every file fresh tables.
await applyD1Migrations(env.DB, env.TEST_SCHEMA);
