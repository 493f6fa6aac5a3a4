//! The gateway's layering, checked from its source: which module imports which (`crate::…`,
//! `super::…`, grouped `use crate::{…}` included, comments left out), with no import cycle
//! between modules, and axum known only to the HTTP layer and the entry points. The crate root
//! (`lib.rs`, the composition root that builds every part into `AppState`) is not a node.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder") {
        let path = entry.expect("a source entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/http/agent.rs` → `http::agent`; `src/http/mod.rs` → `http`; `src/lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts.join("::")
}

/// The code without comments (line comments and doc comments; the gateway has no block
/// comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string (a URL) is kept when a quote opens before it.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `crate::` or `super::` (grouped imports expanded), as written.
fn paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (prefix_start, prefix) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        // Not the tail of a longer identifier (`adapter_crate::`).
        if code[..prefix_start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &code[prefix_start + prefix.len()..];
        let base = prefix.trim_end_matches("::");
        expand(base, rest, &mut found);
    }
    found
}

/// Reads one path (or a `{…}` group of them) at the start of `rest`, after `base`.
fn expand(base: &str, rest: &str, found: &mut Vec<String>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut item = String::new();
        let mut items = Vec::new();
        for c in group.chars() {
            match c {
                '{' => {
                    depth += 1;
                    item.push(c);
                }
                '}' if depth == 0 => break,
                '}' => {
                    depth -= 1;
                    item.push(c);
                }
                ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                _ => item.push(c),
            }
        }
        items.push(item);
        for item in items {
            let item = item.trim();
            if !item.is_empty() {
                expand(base, item, found);
            }
        }
        return;
    }
    let mut path = base.to_owned();
    let mut rest = rest;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        path.push_str("::");
        path.push_str(&ident);
        rest = &rest[ident.len()..];
        match rest.strip_prefix("::") {
            Some(more) if more.trim_start().starts_with('{') => {
                expand(&path, more, found);
                return;
            }
            Some(more) => rest = more,
            None => break,
        }
    }
    found.push(path);
}

/// The module a path names: the longest known module it starts with (`crate::crm::admin::x`
/// → `crm::admin`), resolved from `from` for `super::`.
fn target(path: &str, from: &str, is_dir_module: bool, modules: &BTreeSet<String>) -> String {
    let mut parts: Vec<&str> = path.split("::").collect();
    let mut absolute: Vec<String> = Vec::new();
    if parts.first() == Some(&"super") {
        let mut here: Vec<String> = from
            .split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        // In `http/mod.rs`, `super` is the crate; in `http/agent.rs`, it is `http`.
        if !is_dir_module || here.len() > 1 {
            here.pop();
        } else {
            here.clear();
        }
        absolute = here;
        parts.remove(0);
    } else {
        parts.remove(0);
    }
    absolute.extend(parts.iter().map(|p| (*p).to_owned()));
    while !absolute.is_empty() {
        let candidate = absolute.join("::");
        if modules.contains(&candidate) {
            return candidate;
        }
        absolute.pop();
    }
    String::new()
}

struct Gateway {
    /// Module → the modules it imports.
    imports: BTreeMap<String, BTreeSet<String>>,
    /// Modules whose code names axum.
    axum: BTreeSet<String>,
}

fn read() -> Gateway {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut imports = BTreeMap::new();
    let mut axum = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        let is_dir_module = file.file_name().is_some_and(|n| n == "mod.rs");
        let code = code(&std::fs::read_to_string(file).expect("a source file"));
        if code.contains("axum") {
            axum.insert(module.clone());
        }
        let targets: BTreeSet<String> = paths(&code)
            .iter()
            .map(|p| target(p, &module, is_dir_module, &modules))
            .filter(|t| !t.is_empty() && *t != module)
            .collect();
        imports.insert(module, targets);
    }
    Gateway { imports, axum }
}

/// A cycle through `start`, if there is one (depth-first, the crate root left out).
fn cycle_from(
    imports: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let here = path.last().cloned().unwrap_or_default();
    for next in imports.get(&here).into_iter().flatten() {
        if let Some(at) = path.iter().position(|p| p == next) {
            let mut cycle = path[at..].to_vec();
            cycle.push(next.clone());
            return Some(cycle);
        }
        if done.contains(next) {
            continue;
        }
        path.push(next.clone());
        if let Some(cycle) = cycle_from(imports, path, done) {
            return Some(cycle);
        }
        path.pop();
    }
    done.insert(here);
    None
}

#[test]
fn no_module_of_the_gateway_imports_itself_back() {
    let gateway = read();
    assert!(
        gateway.imports.len() > 20,
        "the source was read: {:?}",
        gateway.imports.keys()
    );
    assert!(
        gateway.imports["http::agent"].contains("status"),
        "imports are seen: {:?}",
        gateway.imports["http::agent"]
    );
    let mut done = BTreeSet::new();
    for start in gateway.imports.keys().filter(|m| !m.is_empty()) {
        if done.contains(start) {
            continue;
        }
        let mut path = vec![start.clone()];
        if let Some(cycle) = cycle_from(&gateway.imports, &mut path, &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn only_the_http_layer_and_the_entry_points_know_axum() {
    let gateway = read();
    let outside: Vec<&String> = gateway
        .axum
        .iter()
        .filter(|m| !(m.is_empty() || *m == "http" || m.starts_with("http::")))
        .collect();
    assert!(
        gateway.axum.contains("http::agent"),
        "axum is seen where it is used"
    );
    assert!(
        outside.is_empty(),
        "axum outside the HTTP layer: {outside:?}"
    );
}

#[test]
fn the_reader_sees_grouped_and_relative_imports() {
    let found = paths("use crate::{a::b, c::{d, e::F}, G};\nuse super::{auth::X, error};");
    assert_eq!(
        found,
        [
            "crate::a::b",
            "crate::c::d",
            "crate::c::e::F",
            "crate::G",
            "super::auth::X",
            "super::error"
        ]
    );
    let modules: BTreeSet<String> = ["http", "http::auth", "crm", "crm::admin"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        target("super::auth::X", "http::agent", false, &modules),
        "http::auth"
    );
    assert_eq!(
        target("super::CrmSync", "crm::admin", false, &modules),
        "crm"
    );
    assert_eq!(
        target("crate::crm::admin::outbox", "http::admin", false, &modules),
        "crm::admin"
    );
}
