import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Storage is isolated per test file; each file starts from the migrations in migrations/ (applied ones are
// recorded, so this is idempotent).
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
