// Finishes a release bundle that Trunk built (run by scripts/post-build.sh on release builds, on
// the staging folder and its settings/), in place:
//
// 1. The wasm: drops the exports nothing calls, then optimises it with wasm-opt (binaryen, from
//    node_modules; the pages set data-wasm-opt="0", so Trunk does not). The exports dropped are
//    the classes of UNUSED_CLASSES: wasm-streams' stream adapters, which wasm-bindgen exports
//    because Leptos's server_fn depends on wasm-streams, though neither bundle has a server
//    function and nothing in the wasm creates one of them. An export keeps its code alive
//    through every optimisation; without them, about 1.6 kB gzip less per bundle.
// 2. wasm-bindgen's JavaScript: those classes removed; then a check that every export the
//    script calls is still in the wasm (the build fails if not); then minified by terser
//    (Trunk's own JS minifier cannot parse wasm-bindgen's output: it says "WARN Failed to
//    minify JS", once per page, and copies the file unchanged).
// 3. The pages: Trunk wrote their `integrity="sha384-…"` for the files as they were; each
//    changed file's hash is replaced in every page of its folder (the build fails when a page
//    names a file without its hash).
//
//   node scripts/finish-bundle.mjs DIR [DIR …]     each DIR: one bundle's *.wasm, *.js, *.html
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { minify } from "terser";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const wasmOpt = join(root, "node_modules", ".bin", "wasm-opt");

/// wasm-bindgen classes neither bundle uses (see above).
const UNUSED_CLASSES = ["IntoUnderlyingByteSource", "IntoUnderlyingSink", "IntoUnderlyingSource"];

// The wasm features rustc's wasm32-unknown-unknown target emits (Trunk's wasm-bindgen strips the
// target-features section that would tell wasm-opt).
const FEATURES = [
  "--enable-bulk-memory",
  "--enable-bulk-memory-opt",
  "--enable-mutable-globals",
  "--enable-multivalue",
  "--enable-nontrapping-float-to-int",
  "--enable-reference-types",
  "--enable-sign-ext",
];
// -Oz, then: --low-memory-unused (loads and stores may take in a pointer's small constant
// offset: only pointer arithmetic that wraps around the address space, which Rust never does,
// could tell the difference), --strip-producers and --strip-target-features (sections the
// browser does not read), and -Oz again after --flatten --rereloop. Run twice: the second run
// finds more once the first has removed the dropped exports' code (about 1 kB gzip).
const PASSES = [
  "-Oz",
  "--low-memory-unused",
  "--strip-producers",
  "--strip-target-features",
  "--flatten",
  "--rereloop",
  "-Oz",
];

const sri = (bytes) => `sha384-${createHash("sha384").update(bytes).digest("base64")}`;

// --- the wasm binary's export section (id 7): a vector of (name, kind, index) ---

function readLeb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

function leb(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return Buffer.from(out);
}

/// The module without the exports `drop(name)` selects; returns [bytes, kept names, dropped].
function withoutExports(bytes, drop) {
  const parts = [bytes.subarray(0, 8)];
  const kept = [];
  const dropped = [];
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at];
    const [size, start] = readLeb(bytes, at + 1);
    let body = bytes.subarray(start, start + size);
    if (id === 7) {
      let [count, p] = readLeb(body, 0);
      const entries = [];
      for (; count > 0; count--) {
        const [length, nameAt] = readLeb(body, p);
        const name = body.subarray(nameAt, nameAt + length).toString("utf8");
        const [, end] = readLeb(body, nameAt + length + 1);
        if (drop(name)) {
          dropped.push(name);
        } else {
          kept.push(name);
          entries.push(body.subarray(p, end));
        }
        p = end;
      }
      body = Buffer.concat([leb(entries.length), ...entries]);
    }
    parts.push(Buffer.from([id]), leb(body.length), body);
    at = start + size;
  }
  return [Buffer.concat(parts), kept, dropped];
}

// --- wasm-bindgen's script ---

/// `script` without `export class NAME { … }`, its `Symbol.dispose` line and its
/// `const NAMEFinalization = …;` (wasm-bindgen writes each at the start of a line).
function withoutClass(script, name) {
  const found = new RegExp(`(^|\\n)export class ${name} \\{`).exec(script);
  if (found === null) return script;
  const open = found.index;
  let depth = 0;
  let end = script.indexOf("{", open);
  for (; end < script.length; end++) {
    if (script[end] === "{") depth++;
    if (script[end] === "}" && --depth === 0) break;
  }
  script = script.slice(0, open) + script.slice(end + 1);
  const dispose = new RegExp(`\\nif \\(Symbol\\.dispose\\) ${name}\\.prototype[^\\n]*`);
  script = script.replace(dispose, "");
  const registry = new RegExp(`\\nconst ${name}Finalization = [\\s\\S]*?\\);(?=\\n)`);
  return script.replace(registry, "");
}

function replaceHash(pages, file, before, after) {
  const [oldHash, newHash] = [sri(before), sri(after)];
  const name = file.split("/").pop();
  for (const page of pages) {
    const html = readFileSync(page, "utf8");
    if (!html.includes(name)) continue;
    if (!html.includes(oldHash)) {
      throw new Error(`${page} names ${name} without its integrity ${oldHash}`);
    }
    writeFileSync(page, html.replaceAll(oldHash, newHash));
  }
}

const gzipped = (bytes) => execFileSync("gzip", ["-9c"], { input: bytes }).length;

async function finish(dir) {
  const names = readdirSync(dir);
  const pages = names.filter((n) => n.endsWith(".html")).map((n) => join(dir, n));
  const wasmFiles = names.filter((n) => n.endsWith(".wasm")).map((n) => join(dir, n));
  const scripts = names.filter((n) => n.endsWith(".js")).map((n) => join(dir, n));
  if (wasmFiles.length !== 1 || scripts.length !== 1) {
    throw new Error(`${dir}: expected one .wasm and one .js, found ${wasmFiles} ${scripts}`);
  }
  const [wasmFile, scriptFile] = [wasmFiles[0], scripts[0]];

  const wasmBefore = readFileSync(wasmFile);
  const prefixes = UNUSED_CLASSES.map((c) => c.toLowerCase() + "_");
  const [stripped, kept, dropped] = withoutExports(
    wasmBefore,
    (name) => prefixes.some((p) => name.startsWith(p) || name.startsWith(`__wbg_${p}`)),
  );
  writeFileSync(wasmFile, stripped);
  for (let run = 0; run < 2; run++) {
    execFileSync(wasmOpt, [...FEATURES, ...PASSES, wasmFile, "-o", wasmFile], {
      stdio: "inherit",
    });
  }
  const wasmAfter = readFileSync(wasmFile);

  const scriptBefore = readFileSync(scriptFile, "utf8");
  let script = scriptBefore;
  for (const name of UNUSED_CLASSES) script = withoutClass(script, name);
  for (const name of UNUSED_CLASSES) {
    if (script.includes(name)) throw new Error(`${scriptFile}: ${name} is still used`);
  }
  const exports = new Set(kept);
  const called = [...script.matchAll(/\bwasm\.(\w+)/g)].map((m) => m[1]);
  const missing = [...new Set(called)].filter((name) => !exports.has(name));
  if (missing.length > 0) {
    throw new Error(`${scriptFile} calls exports the wasm no longer has: ${missing.join(", ")}`);
  }
  const out = await minify(script, {
    module: true,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false },
  });
  if (typeof out.code !== "string" || out.code.length === 0) {
    throw new Error(`${scriptFile}: terser gave no code`);
  }
  writeFileSync(scriptFile, out.code);

  replaceHash(pages, wasmFile, wasmBefore, wasmAfter);
  replaceHash(pages, scriptFile, scriptBefore, out.code);
  console.log(
    `finish-bundle: ${wasmFile}: ${dropped.length} unused exports dropped, optimised: ` +
      `${gzipped(wasmBefore)} -> ${gzipped(wasmAfter)} B gzip`,
  );
  console.log(
    `finish-bundle: ${scriptFile}: minified: ` +
      `${gzipped(Buffer.from(scriptBefore))} -> ${gzipped(Buffer.from(out.code))} B gzip`,
  );
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error("usage: node scripts/finish-bundle.mjs DIR [DIR …]");
  process.exit(2);
}
for (const dir of dirs) {
  await finish(dir);
}
