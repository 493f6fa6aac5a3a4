//! The widget's instant preview (`adapter_core::phone`, a compact table) against the gateway's
//! libphonenumber-based normaliser, over a corpus generated from libphonenumber's example numbers;
//! and the committed table against what its generator writes now.

use std::{collections::BTreeMap, fmt::Write};

use adapter_core::phone::{self, PhoneError};
use adapter_gateway::phone as gateway;
use phonenumber::{metadata::DATABASE, Mode};

#[allow(dead_code)]
#[path = "../examples/phone_table.rs"]
mod phone_table;

#[test]
fn the_committed_table_is_what_the_generator_writes() {
    let committed = include_str!("../../adapter-core/src/phone_table.rs");
    assert!(
        committed == phone_table::generate(),
        "crates/adapter-core/src/phone_table.rs is stale: run \
         `cargo run -p adapter-gateway --example phone_table` and commit it"
    );
    assert_eq!(phone::METADATA_VERSION, phone_table::METADATA_VERSION);
}

/// One written form: the text, the default country it is read in, and what it is.
struct Case {
    text: String,
    default: &'static str,
    form: &'static str,
}

/// Every example number of every region libphonenumber has, written in E.164, international
/// and national formats and the human variants the dial pad accepts, and mutated.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |text: String, default: &'static str, form: &'static str| {
        cases.push(Case {
            text,
            default,
            form,
        })
    };
    for code in 1..1000u16 {
        for meta in DATABASE.by_code(&code).unwrap_or_default() {
            let region: &'static str = if meta.id() == "001" {
                "US"
            } else {
                phone::country(meta.id()).expect("region in the table").iso
            };
            let d = meta.descriptors();
            let examples = [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|desc| desc.example());
            for nsn in examples {
                let e164 = format!("+{code}{nsn}");
                let Ok(number) = phonenumber::parse(None, &e164) else {
                    continue;
                };
                let intl = number.format().mode(Mode::International).to_string();
                let nat = number.format().mode(Mode::National).to_string();
                push(e164.clone(), "FR", "E.164");
                push(intl.clone(), "GB", "international");
                push(format!("00{code} {nsn}"), "US", "00 prefix");
                push(format!("tel:{}", intl.replace(' ', "-")), "DE", "tel: link");
                push(format!("(+{code}) {nsn}"), "JP", "(+code)");
                push(format!("{intl} poste 12"), "FR", "extension");
                if meta.id() != "001" {
                    push(nat.clone(), region, "national");
                    push(nat.replace(' ', "\u{2010}"), region, "national, U+2010");
                    if let Some(np) = meta.national_prefix() {
                        push(format!("+{code} ({np}){nsn}"), "US", "+code (0)");
                    }
                }
                // Mutations: mostly numbers that do not exist.
                push(
                    e164[..e164.len() - 1].into(),
                    "FR",
                    "mutation: digit dropped",
                );
                push(format!("{e164}5"), "FR", "mutation: digit added");
                let first = nsn.as_bytes()[0];
                let other = char::from(b'0' + (first - b'0' + 3) % 10);
                push(
                    format!("+{code}{other}{}", &nsn[1..]),
                    "FR",
                    "mutation: first digit",
                );
            }
        }
    }
    cases
}

#[test]
fn the_preview_agrees_with_libphonenumber() {
    let cases = corpus();
    let regions_with_examples = DATABASE.iter().count();
    let mut valid = 0usize;
    let mut valid_agree = 0usize;
    let mut invalid = 0usize;
    let mut invalid_agree = 0usize;
    let mut both_accept_differ = Vec::new();
    let mut classes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for case in &cases {
        let widget = phone::normalise(&case.text, phone::country(case.default).unwrap());
        let gateway = gateway::normalise(&case.text, case.default);
        let class = match (&gateway, &widget) {
            (Ok(g), Ok(w)) if g == w => None,
            (Ok(g), Ok(w)) => {
                both_accept_differ.push(format!("{:?} in {}: {g} / {w}", case.text, case.default));
                Some("both accept, E.164 differs".to_string())
            }
            (Ok(_), Err(e)) => Some(format!(
                "gateway accepts, preview refuses ({}), {}",
                kind(e),
                case.form
            )),
            (Err(e), Ok(_)) => Some(format!(
                "preview accepts, gateway refuses ({}), {}",
                kind(e),
                case.form
            )),
            (Err(_), Err(_)) => None,
        };
        if gateway.is_ok() {
            valid += 1;
            valid_agree += usize::from(class.is_none());
        } else {
            invalid += 1;
            invalid_agree += usize::from(class.is_none());
        }
        if let Some(class) = class {
            let entry = classes.entry(class).or_default();
            entry.0 += 1;
            if entry.1.is_empty() {
                entry.1 = format!("{:?} in {}", case.text, case.default);
            }
        }
    }
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let mut summary = String::new();
    writeln!(
        summary,
        "phone differential: {} written forms from the example numbers of {} regions \
         (libphonenumber {})",
        cases.len(),
        regions_with_examples,
        phone::METADATA_VERSION
    )
    .unwrap();
    writeln!(
        summary,
        "  valid for libphonenumber: {valid}, the preview agrees on {valid_agree} ({:.2} %)",
        pct(valid_agree, valid)
    )
    .unwrap();
    writeln!(
        summary,
        "  refused by libphonenumber: {invalid}, the preview refuses {invalid_agree} ({:.2} %)",
        pct(invalid_agree, invalid)
    )
    .unwrap();
    writeln!(
        summary,
        "  both accept, E.164 differs: {}",
        both_accept_differ.len()
    )
    .unwrap();
    writeln!(summary, "  differences by class (count, first example):").unwrap();
    for (class, (count, example)) in &classes {
        writeln!(summary, "    {count:5}  {class}: {example}").unwrap();
    }
    eprint!("{summary}");
    // Also on disk, so the figures are there without --nocapture.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").into());
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(format!("{target}/phone-differential.txt"), &summary);

    assert!(cases.len() >= 5_000, "{}", cases.len());
    assert!(
        both_accept_differ.is_empty(),
        "{}",
        both_accept_differ.join("\n")
    );
    assert!(pct(valid_agree, valid) >= 99.5, "{summary}");
}

fn kind(error: &PhoneError) -> &'static str {
    match error {
        PhoneError::Empty => "empty",
        PhoneError::InputTooLong => "input too long",
        PhoneError::InvalidCharacter(_) => "invalid character",
        PhoneError::ToneKey(_) => "tone key",
        PhoneError::MisplacedPlus => "misplaced +",
        PhoneError::UnknownCountryCode(_) => "unknown calling code",
        PhoneError::TooShort { .. } => "too short",
        PhoneError::TooLong { .. } => "too long",
        PhoneError::InvalidExtension => "extension",
        PhoneError::NotInPlan { .. } => "not in plan",
        _ => "other",
    }
}
