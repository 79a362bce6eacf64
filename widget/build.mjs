// Bundles the widget front ends into accelerate_lab/static/ (ES modules for anywidget, CSS beside
// them). WGSL files from shaders/ are imported as text, so the bundle carries the same kernels.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: {
    browser_device: path.join(here, "src/index.ts"),
    dashboard: path.join(here, "src/dashboard/index.ts"),
    chat: path.join(here, "src/chat/index.ts"),
    demos: path.join(here, "src/demos/index.ts"),
  },
  outdir: path.join(here, "../accelerate_lab/static"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  loader: { ".wgsl": "text" },
  logLevel: "warning",
});
