//! Writes `crates/adapter-core/src/phone_table.rs`, the widget's compact numbering plans, from
//! libphonenumber's metadata as the `phonenumber` crate embeds it (the same metadata the gateway
//! validates with).
//!
//! ```text
//! cargo run -p adapter-gateway --example phone_table
//! ```
//!
//! `tests/phone.rs` checks that the committed table is what this writes, so it cannot drift from
//! the crate the gateway uses. What the table keeps per region: calling code, the literal
//! alternatives of the international prefix and of the national prefix for parsing, the
//! national prefix; per calling code: the possible lengths and, for each, the first digits a
//! valid number of that length can start with (computed exactly from the patterns of every number
//! type, as automata).

use std::{collections::HashMap, fmt::Write, path::PathBuf};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex_automata::{
    dfa::{dense, Automaton, StartKind},
    util::{primitives::StateID, syntax},
    Anchored, Input,
};
use regex_syntax::hir::{Class, Hir, HirKind};

/// libphonenumber's release, as the `phonenumber` crate's version says after `+`.
pub const METADATA_VERSION: &str = "9.0.33";
/// Digits of a national number the generator looks at (the table keeps the first).
const PREFIX_DIGITS: usize = 2;
/// The longest national significant number libphonenumber reads.
const MAX_NSN: usize = 17;

#[allow(dead_code)]
fn main() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapter-core/src/phone_table.rs");
    std::fs::write(&path, generate()).expect("write the phone table");
    eprintln!("wrote {}", path.display());
}

/// A pattern as a DFA that answers "can these digits be completed into a match".
struct Pattern {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    memo: HashMap<(StateID, usize), bool>,
}

impl Pattern {
    fn new(pattern: &str) -> Pattern {
        let dfa = dense::Builder::new()
            .syntax(
                syntax::Config::new()
                    .ignore_whitespace(true)
                    .unicode(false)
                    .utf8(false),
            )
            .configure(dense::Config::new().start_kind(StartKind::Anchored))
            .build(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let start = dfa
            .start_state_forward(&Input::new("").anchored(Anchored::Yes))
            .expect("start state");
        Pattern {
            dfa,
            start,
            memo: HashMap::new(),
        }
    }

    /// Whether some string of `len` digits starting with `prefix` has a prefix that matches:
    /// the `phonenumber` crate's `Descriptor::is_match` is a find anchored at the start only.
    fn completes(&mut self, prefix: &[u8], len: usize) -> bool {
        let mut state = self.start;
        for (i, &b) in prefix.iter().enumerate() {
            if self.matched_here(state) {
                return true;
            }
            state = self.dfa.next_state(state, b);
            if self.dfa.is_dead_state(state) {
                return false;
            }
            if i + 1 == len {
                break;
            }
        }
        self.can(state, len - prefix.len().min(len))
    }

    fn matched_here(&self, state: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(state))
    }

    fn can(&mut self, state: StateID, rest: usize) -> bool {
        if self.matched_here(state) {
            return true;
        }
        if rest == 0 {
            return false;
        }
        if let Some(&known) = self.memo.get(&(state, rest)) {
            return known;
        }
        let mut found = false;
        for d in b'0'..=b'9' {
            let next = self.dfa.next_state(state, d);
            if !self.dfa.is_dead_state(next) && self.can(next, rest - 1) {
                found = true;
                break;
            }
        }
        self.memo.insert((state, rest), found);
        found
    }
}

/// Number types `phonenumber::is_valid` accepts (anything but `Unknown`).
fn types(meta: &Metadata) -> Vec<&Descriptor> {
    let d = meta.descriptors();
    [
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn bits(lengths: &[u16]) -> u32 {
    lengths.iter().fold(0, |acc, &l| acc | 1 << l)
}

/// Valid (length, first digits) of one region, as a set of (length, prefix) pairs.
fn valid_prefixes(meta: &Metadata, into: &mut [[bool; 100]; MAX_NSN + 1]) {
    let general = meta.descriptors().general();
    let general_lengths = bits(general.possible_length());
    let mut general_pattern = Pattern::new(general.national_number().as_str());
    let mut patterns: Vec<(u32, Pattern)> = types(meta)
        .into_iter()
        .map(|d| {
            let lengths = if d.possible_length().is_empty() {
                u32::MAX
            } else {
                bits(d.possible_length())
            };
            (lengths, Pattern::new(d.national_number().as_str()))
        })
        .collect();
    for (len, slots) in into.iter_mut().enumerate().skip(PREFIX_DIGITS) {
        if general_lengths & (1 << len) == 0 && !general.possible_length().is_empty() {
            continue;
        }
        for (p, slot) in slots.iter_mut().enumerate() {
            let prefix = format!("{p:0width$}", width = PREFIX_DIGITS);
            let prefix = prefix.as_bytes();
            if *slot || !general_pattern.completes(prefix, len) {
                continue;
            }
            *slot = patterns.iter_mut().any(|(lengths, pattern)| {
                *lengths & (1 << len) != 0 && pattern.completes(prefix, len)
            });
        }
    }
}

/// The strings a pattern matches, in the order a leftmost-first regex prefers them; `None` when
/// it matches too many or needs what a list cannot say (captures, `$`).
fn literals(hir: &Hir) -> Option<Vec<String>> {
    const CAP: usize = 64;
    let out = match hir.kind() {
        HirKind::Empty => vec![String::new()],
        HirKind::Literal(lit) => vec![String::from_utf8(lit.0.to_vec()).ok()?],
        HirKind::Class(Class::Unicode(class)) => class
            .iter()
            .flat_map(|r| r.start()..=r.end())
            .map(String::from)
            .take(CAP + 1)
            .collect(),
        HirKind::Class(Class::Bytes(class)) => class
            .iter()
            .flat_map(|r| r.start()..=r.end())
            .map(|b| char::from(b).to_string())
            .take(CAP + 1)
            .collect(),
        HirKind::Concat(parts) => {
            let mut acc = vec![String::new()];
            for part in parts {
                let next = literals(part)?;
                acc = acc
                    .iter()
                    .flat_map(|a| next.iter().map(move |b| format!("{a}{b}")))
                    .collect();
                if acc.len() > CAP {
                    return None;
                }
            }
            acc
        }
        HirKind::Alternation(branches) => {
            let mut acc = Vec::new();
            for branch in branches {
                acc.extend(literals(branch)?);
            }
            acc
        }
        HirKind::Repetition(rep) => {
            let max = rep.max?;
            let sub = literals(&rep.sub);
            let counts: Vec<u32> = if rep.greedy {
                (rep.min..=max).rev().collect()
            } else {
                (rep.min..=max).collect()
            };
            let mut acc = Vec::new();
            for n in counts {
                if n == 0 {
                    acc.push(String::new());
                    continue;
                }
                // An optional part that cannot be listed (a carrier code) is left out: the
                // preview then reads only the plain national prefix.
                let Some(sub) = sub.as_ref() else {
                    if rep.min == 0 {
                        continue;
                    }
                    return None;
                };
                let mut run = vec![String::new()];
                for _ in 0..n {
                    run = run
                        .iter()
                        .flat_map(|a| sub.iter().map(move |b| format!("{a}{b}")))
                        .collect();
                    if run.len() > CAP {
                        return None;
                    }
                }
                acc.extend(run);
            }
            acc
        }
        HirKind::Capture(_) | HirKind::Look(_) => return None,
    };
    (out.len() <= CAP).then_some(out)
}

/// A prefix pattern as `|`-separated literal alternatives; branches of a top-level alternation
/// that cannot be listed (captures for carrier codes, local numbers with `$`) are left out.
fn prefix_alternatives(pattern: Option<&str>) -> String {
    let Some(pattern) = pattern else {
        return String::new();
    };
    let hir = regex_syntax::ParserBuilder::new()
        .ignore_whitespace(true)
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"));
    let listed = match hir.kind() {
        HirKind::Alternation(branches) => branches.iter().filter_map(literals).flatten().collect(),
        _ => literals(&hir).unwrap_or_default(),
    };
    let mut out: Vec<String> = Vec::new();
    for s in listed {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join("|")
}

/// First digits as ranges: `1-6`, `89`, `3`.
fn digit_ranges(pick: impl Fn(usize) -> bool) -> String {
    let mut out = String::new();
    let mut d = 0;
    while d < 10 {
        if !pick(d) {
            d += 1;
            continue;
        }
        let mut e = d;
        while e + 1 < 10 && pick(e + 1) {
            e += 1;
        }
        match e - d {
            0 => write!(out, "{d}"),
            1 => write!(out, "{d}{e}"),
            _ => write!(out, "{d}-{e}"),
        }
        .unwrap();
        d = e + 1;
    }
    out
}

/// The table's Rust source.
pub fn generate() -> String {
    // By code, not by id: the non-geographic codes all have the id `001`.
    let mut regions: Vec<&Metadata> = (1..1000u16)
        .filter_map(|code| DATABASE.by_code(&code))
        .flatten()
        .collect();
    // The main region of a shared code first: the preview reads an international number with
    // its national prefixes.
    regions.sort_by_key(|m| {
        (
            m.country_code(),
            !m.is_main_country_for_code(),
            m.id().to_owned(),
        )
    });
    let mut out = String::new();
    writeln!(
        out,
        "//! Generated by `cargo run -p adapter-gateway --example phone_table` from libphonenumber\n\
         //! {METADATA_VERSION}'s metadata (the `phonenumber` crate the gateway validates with). Do not edit:\n\
         //! update the crate, run the generator, commit; `crates/gateway/tests/phone.rs` fails when\n\
         //! this file is not what the generator writes.\n\
         \n\
         /// libphonenumber's release the table was generated from.\n\
         pub const METADATA_VERSION: &str = \"{METADATA_VERSION}\";\n\
         \n\
         /// Every region (`001`: a non-geographic code), by calling code, the main region of a\n\
         /// shared code first; a line is `ISO:code:international prefixes:national prefix:national\n\
         /// prefixes read`, alternatives separated by `|`.\n\
         pub const REGIONS: &str = \"\\"
    )
    .unwrap();
    for meta in &regions {
        let idd = prefix_alternatives(meta.international_prefix().map(|r| r.as_str()));
        let npp = prefix_alternatives(
            meta.national_prefix_for_parsing()
                .map(|r| r.as_str())
                .or(meta.national_prefix()),
        );
        writeln!(
            out,
            "{}:{}:{idd}:{}:{npp}\\n\\",
            meta.id(),
            meta.country_code(),
            meta.national_prefix().unwrap_or(""),
        )
        .unwrap();
    }
    writeln!(
        out,
        "\";\n\n\
         /// Per calling code, the lengths of a valid national significant number and, for each,\n\
         /// the digits it can start with: `code=length:first digits;length:first digits`.\n\
         pub const PLANS: &str = \"\\"
    )
    .unwrap();
    let mut codes: Vec<u16> = regions.iter().map(|m| m.country_code()).collect();
    codes.dedup();
    for code in codes {
        let mut sets = [[false; 100]; MAX_NSN + 1];
        for meta in DATABASE.by_code(&code).unwrap_or_default() {
            valid_prefixes(meta, &mut sets);
        }
        let plan: Vec<String> = sets
            .iter()
            .enumerate()
            .filter(|(_, set)| set.iter().any(|&b| b))
            .map(|(len, set)| {
                format!(
                    "{len}:{}",
                    digit_ranges(|d| (0..10).any(|s| set[d * 10 + s]))
                )
            })
            .collect();
        writeln!(out, "{code}={}\\n\\", plan.join(";")).unwrap();
    }
    writeln!(out, "\";").unwrap();
    out
}
