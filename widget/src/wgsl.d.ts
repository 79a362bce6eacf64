// esbuild's `text` loader turns each imported .wgsl file into its source string.
declare module "*.wgsl" {
  const source: string;
  export default source;
}
