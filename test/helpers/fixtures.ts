// The public AMD data the tests and the bench read (certificates, real SNP reports, legacy SEV chains),
// copied into the repository: see test/fixtures/MANIFEST.md for each file's source. A missing file is a
// test failure, never a skip.
import { fileURLToPath } from "node:url";

/** Absolute path of test/fixtures. */
export const FIXTURES = fileURLToPath(new URL("../fixtures", import.meta.url));
