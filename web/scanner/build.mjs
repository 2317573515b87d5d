// Builds the gate page into one folder the orchestrator serves at /scanner (STATIC_DIR/scanner): the bundled
// script (our code, the QR decoder and the JWS library from package-lock.json), the page and its style.
// Usage: node build.mjs <output folder>   (`make static` and the orchestrator image both run it)
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, "../../build/static/scanner"));

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: [path.join(here, "src/main.js")],
  outfile: path.join(out, "scanner.js"),
  bundle: true,
  minify: true,
  format: "esm",
  // WebCrypto Ed25519 (what verifies the codes) is in these browsers and later.
  target: ["chrome113", "safari17", "firefox130"],
  legalComments: "linked",
  logLevel: "warning",
});
await copyFile(path.join(here, "src/scanner.css"), path.join(out, "scanner.css"));
// Last, so its time stamp tells make that the whole folder is up to date.
await copyFile(path.join(here, "src/index.html"), path.join(out, "index.html"));
