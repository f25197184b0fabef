// src/schema.d.ts from openapi.json with openapi-typescript — the one place its options are set, used by
// `npm run generate`, `make client` and the drift check (tests/client/test_typescript_client.py), which
// passes other paths: node scripts/generate.mjs [<openapi.json> [<schema.d.ts>]]
//
// --default-non-nullable false: a field with a default is optional to send (FastAPI's request schemas
// give defaults to optional fields); without it openapi-typescript would make every such field required.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = (relative) => fileURLToPath(new URL(relative, import.meta.url));
const [input = here("../openapi.json"), output = here("../src/schema.d.ts")] = process.argv.slice(2);
const cli = here("../node_modules/openapi-typescript/bin/cli.js");
const result = spawnSync(
  process.execPath,
  [cli, input, "--default-non-nullable", "false", "--output", output],
  { stdio: ["ignore", "inherit", "inherit"] },
);
if (result.error) throw result.error;
process.exit(result.status ?? 1);
