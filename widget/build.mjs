// Bundles the widget front ends into accelerate_lab/static/ (ES modules for anywidget, CSS beside
// them). WGSL files from shaders/ are imported as text, so the bundle carries the same kernels (in
// the BrowserDevice's worker script, which its bundle embeds as a string).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const common = { bundle: true, target: "es2022", minify: true, sourcemap: false, loader: { ".wgsl": "text" }, logLevel: "warning" };
// The BrowserDevice's worker (its runtime and the WGSL) first, as one script the page starts from a
// blob: the main bundle carries it as the string WORKER_SOURCE.
const worker = await build({ ...common, entryPoints: [path.join(here, "src/worker.ts")], format: "iife", write: false });
await build({
  ...common,
  entryPoints: {
    browser_device: path.join(here, "src/index.ts"),
    dashboard: path.join(here, "src/dashboard/index.ts"),
    chat: path.join(here, "src/chat/index.ts"),
    demos: path.join(here, "src/demos/index.ts"),
  },
  outdir: path.join(here, "../accelerate_lab/static"),
  format: "esm",
  define: { WORKER_SOURCE: JSON.stringify(worker.outputFiles[0].text) },
});
