// Minifies the JavaScript of a release build (wasm-bindgen's glue: about 2 kB gzip less for the
// agent widget) and keeps each page's Subresource Integrity true: Trunk wrote the pages'
// `integrity="sha384-…"` for the files as they were, so each changed file's old hash is replaced
// by the new one in every page of its folder. Trunk's own `minify` minifies the pages and the
// styles; its JS minifier cannot parse wasm-bindgen's output (it warns "Failed to minify JS" and
// copies the file unchanged), so this does.
//
//   node scripts/minify-js.mjs DIR [DIR …]     each DIR: a build's folder (its *.js and *.html)
//
// Run by scripts/post-build.sh on release builds, on the staging folder and its settings/.
// Fails (so does the build) when a page does not carry the hash of a file it names.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { minify } from "terser";

const sri = (bytes) => `sha384-${createHash("sha384").update(bytes).digest("base64")}`;

async function minifyFolder(dir) {
  const names = readdirSync(dir);
  const pages = names.filter((n) => n.endsWith(".html")).map((n) => join(dir, n));
  for (const name of names.filter((n) => n.endsWith(".js"))) {
    const file = join(dir, name);
    const before = readFileSync(file, "utf8");
    const out = await minify(before, {
      module: true,
      compress: { passes: 2 },
      mangle: true,
      format: { comments: false },
    });
    if (typeof out.code !== "string" || out.code.length === 0) {
      throw new Error(`${file}: terser gave no code`);
    }
    const oldHash = sri(before);
    const newHash = sri(out.code);
    let named = 0;
    for (const page of pages) {
      const html = readFileSync(page, "utf8");
      if (!html.includes(name)) continue;
      named += 1;
      if (!html.includes(oldHash)) {
        throw new Error(`${page} names ${name} without its integrity ${oldHash}`);
      }
      writeFileSync(page, html.replaceAll(oldHash, newHash));
    }
    writeFileSync(file, out.code);
    console.log(
      `minify-js: ${file}: ${Buffer.byteLength(before)} -> ${Buffer.byteLength(out.code)} bytes` +
        ` (${named} page${named === 1 ? "" : "s"} updated)`,
    );
  }
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error("usage: node scripts/minify-js.mjs DIR [DIR …]");
  process.exit(2);
}
for (const dir of dirs) {
  await minifyFolder(dir);
}
