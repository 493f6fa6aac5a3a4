//! Phone numbers to dial: whatever the CRM or the agent typed, normalised to E.164 with a
//! country code, or an error that says what is wrong.
//!
//! National formats are read with a configurable default country; spaces, dashes, dots,
//! brackets and slashes are ignored; `+`, `00` and the default country's international prefix
//! start an international number; `(0)` after a country code and a national trunk prefix written
//! after one are dropped; extensions (`ext`, `x`, `poste`, `,`, `;ext=`) are split off.
//! The rules are kept compact on purpose (no full numbering-plan metadata in a 150 kB widget):
//! country codes are checked against the ITU list, and national lengths for the countries in
//! [`COUNTRIES`].

use std::fmt;

/// Numbering facts of one country, enough to read its national format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2 code.
    pub iso: &'static str,
    pub calling_code: u16,
    /// The digit(s) dialled before a national number inside the country, e.g. `0` in France.
    pub trunk_prefix: Option<&'static str>,
    /// Possible lengths of the national significant number (inclusive).
    pub national_len: (u8, u8),
    /// The prefix dialled inside the country to call abroad (`00` in most of the world).
    pub international_prefix: &'static str,
}

const fn c(
    iso: &'static str,
    calling_code: u16,
    trunk_prefix: Option<&'static str>,
    national_len: (u8, u8),
    international_prefix: &'static str,
) -> Country {
    Country {
        iso,
        calling_code,
        trunk_prefix,
        national_len,
        international_prefix,
    }
}

/// Countries whose national formats are understood.
pub const COUNTRIES: &[Country] = &[
    c("US", 1, Some("1"), (10, 10), "011"),
    c("CA", 1, Some("1"), (10, 10), "011"),
    c("FR", 33, Some("0"), (9, 9), "00"),
    c("BE", 32, Some("0"), (8, 9), "00"),
    c("CH", 41, Some("0"), (9, 9), "00"),
    c("LU", 352, None, (4, 11), "00"),
    c("GB", 44, Some("0"), (7, 10), "00"),
    c("IE", 353, Some("0"), (7, 9), "00"),
    c("DE", 49, Some("0"), (5, 13), "00"),
    c("AT", 43, Some("0"), (4, 13), "00"),
    c("NL", 31, Some("0"), (9, 9), "00"),
    c("ES", 34, None, (9, 9), "00"),
    c("PT", 351, None, (9, 9), "00"),
    c("IT", 39, None, (6, 11), "00"),
    c("PL", 48, None, (9, 9), "00"),
    c("SE", 46, Some("0"), (7, 9), "00"),
    c("DK", 45, None, (8, 8), "00"),
    c("NO", 47, None, (8, 8), "00"),
    c("FI", 358, Some("0"), (5, 12), "00"),
    c("MA", 212, Some("0"), (9, 9), "00"),
    c("DZ", 213, Some("0"), (8, 9), "00"),
    c("TN", 216, None, (8, 8), "00"),
    c("SN", 221, None, (9, 9), "00"),
    c("CI", 225, None, (10, 10), "00"),
    c("CM", 237, None, (9, 9), "00"),
    c("ZA", 27, Some("0"), (9, 9), "00"),
    c("MX", 52, None, (10, 10), "00"),
    c("BR", 55, Some("0"), (10, 11), "00"),
    c("IN", 91, Some("0"), (10, 10), "00"),
    c("SG", 65, None, (8, 8), "000"),
    c("PH", 63, Some("0"), (8, 10), "00"),
    c("CN", 86, Some("0"), (7, 11), "00"),
    c("JP", 81, Some("0"), (9, 10), "010"),
    c("AU", 61, Some("0"), (9, 9), "0011"),
    c("NZ", 64, Some("0"), (8, 10), "00"),
];

/// The country with ISO code `iso` (case-insensitive), if its format is known.
pub fn country(iso: &str) -> Option<&'static Country> {
    COUNTRIES
        .iter()
        .find(|c| c.iso.eq_ignore_ascii_case(iso.trim()))
}

/// Country calling codes assigned by the ITU (E.164). The set is prefix-free: no code is the
/// start of another, so the first match on 1, 2 then 3 digits is the code.
const CALLING_CODES: &[u16] = &[
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54,
    55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211,
    212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298,
    299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377,
    378, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506,
    507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676,
    677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 800, 808, 850, 852,
    853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, 960, 961, 962, 963, 964, 965, 966, 967,
    968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993, 994, 995, 996, 998,
];

/// Longest input read, in characters: anything longer is not a phone number.
pub const MAX_INPUT_CHARS: usize = 64;
/// Longest extension, in digits.
pub const MAX_EXTENSION_DIGITS: usize = 10;

/// A number ready to dial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialNumber {
    /// `+` and 8 to 15 digits.
    pub e164: String,
    /// Digits to send after the call connects.
    pub extension: Option<String>,
}

impl fmt::Display for DialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.extension {
            Some(ext) => write!(f, "{} ext. {ext}", self.e164),
            None => f.write_str(&self.e164),
        }
    }
}

/// Why a number cannot be dialled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneError {
    Empty,
    /// Longer than [`MAX_INPUT_CHARS`].
    InputTooLong,
    /// A character that has no place in a phone number.
    InvalidCharacter(char),
    /// `*` or `#`: tones for during a call, not part of a number to dial.
    ToneKey(char),
    /// A `+` that is not at the start.
    MisplacedPlus,
    /// No country calling code starts these digits.
    UnknownCountryCode(String),
    /// Too few digits for the country (`min` national digits).
    TooShort {
        country: String,
        min: u8,
    },
    /// Too many digits for the country (`max` national digits).
    TooLong {
        country: String,
        max: u8,
    },
    /// The extension is not 1 to 10 digits.
    InvalidExtension,
    /// The digits break a rule of the country's numbering plan.
    NotInPlan {
        country: String,
        rule: &'static str,
    },
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Empty => f.write_str("no number"),
            PhoneError::InputTooLong => write!(f, "longer than {MAX_INPUT_CHARS} characters"),
            PhoneError::InvalidCharacter(ch) => write!(f, "{ch:?} has no place in a phone number"),
            PhoneError::ToneKey(ch) => write!(f, "{ch:?} can only be sent during a call"),
            PhoneError::MisplacedPlus => f.write_str("'+' may only start the number"),
            PhoneError::UnknownCountryCode(digits) => write!(f, "no country code starts +{digits}"),
            PhoneError::TooShort { country, min } => {
                write!(
                    f,
                    "too short for {country} (at least {min} digits after the country code)"
                )
            }
            PhoneError::TooLong { country, max } => {
                write!(
                    f,
                    "too long for {country} (at most {max} digits after the country code)"
                )
            }
            PhoneError::InvalidExtension => {
                write!(
                    f,
                    "the extension must be 1 to {MAX_EXTENSION_DIGITS} digits"
                )
            }
            PhoneError::NotInPlan { country, rule } => write!(f, "not a {country} number: {rule}"),
        }
    }
}

impl std::error::Error for PhoneError {}

/// Words and signs that introduce an extension, lower case, longest first.
const EXTENSION_MARKERS: &[&str] = &[";ext=", "extension", "poste", "ext.", "ext", "x", ",", ";"];

/// Splits `input` into the number and its extension.
fn split_extension(input: &str) -> Result<(&str, Option<String>), PhoneError> {
    let lower = input.to_ascii_lowercase();
    let found = EXTENSION_MARKERS
        .iter()
        .filter_map(|marker| lower.find(marker).map(|at| (at, marker.len())))
        .min_by_key(|&(at, len)| (at, usize::MAX - len));
    let Some((at, len)) = found else {
        return Ok((input, None));
    };
    let rest = input[at + len..].trim_start_matches([' ', '.', ':', ',', ';']);
    let digits: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.is_empty()
        || digits.len() > MAX_EXTENSION_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(PhoneError::InvalidExtension);
    }
    Ok((&input[..at], Some(digits)))
}

/// Normalises `input` to E.164, reading national formats as numbers of `default_country`.
pub fn normalise(input: &str, default_country: &Country) -> Result<DialNumber, PhoneError> {
    if input.chars().count() > MAX_INPUT_CHARS {
        return Err(PhoneError::InputTooLong);
    }
    let input = input.trim();
    if input.is_empty() {
        return Err(PhoneError::Empty);
    }
    let (number, extension) = split_extension(input)?;
    let number = number.trim();
    let international_sign = number.starts_with('+');
    // "+44 (0)20 ..." : the (0) is the trunk prefix, written for national callers.
    let without_trunk_hint = if international_sign {
        number.replacen("(0)", "", 1)
    } else {
        number.to_owned()
    };
    let mut digits = String::with_capacity(16);
    for (i, ch) in without_trunk_hint.char_indices() {
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if i == 0 => {}
            '+' => return Err(PhoneError::MisplacedPlus),
            '*' | '#' => return Err(PhoneError::ToneKey(ch)),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\u{2011}' | '\u{2013}' => {}
            other => return Err(PhoneError::InvalidCharacter(other)),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }

    let e164 = if international_sign {
        international(&digits)?
    } else if let Some(rest) = digits
        .strip_prefix(default_country.international_prefix)
        .or_else(|| digits.strip_prefix("00"))
    {
        international(rest)?
    } else {
        national(&digits, default_country)?
    };
    Ok(DialNumber { e164, extension })
}

/// `digits` start with a country calling code.
fn international(digits: &str) -> Result<String, PhoneError> {
    // No calling code starts with 0 (and "01" must not parse as 1).
    let code = (1..=3)
        .filter(|&n| n <= digits.len() && !digits.starts_with('0'))
        .find_map(|n| {
            let code: u16 = digits[..n].parse().ok()?;
            CALLING_CODES.contains(&code).then_some((code, n))
        });
    let Some((code, n)) = code else {
        return Err(PhoneError::UnknownCountryCode(
            digits.chars().take(3).collect(),
        ));
    };
    let national_digits = &digits[n..];
    match COUNTRIES.iter().find(|c| c.calling_code == code) {
        Some(country) => checked(country, strip_trunk(country, national_digits)),
        // Not a country whose plan is known here: E.164 bounds only.
        None => {
            let label = format!("+{code}");
            if national_digits.len() < 4 {
                Err(PhoneError::TooShort {
                    country: label,
                    min: 4,
                })
            } else if digits.len() > 15 {
                let max = u8::try_from(15 - n).unwrap_or(0);
                Err(PhoneError::TooLong {
                    country: label,
                    max,
                })
            } else {
                Ok(format!("+{digits}"))
            }
        }
    }
}

/// `digits` are a national number of `country`, maybe with its trunk prefix.
fn national(digits: &str, country: &Country) -> Result<String, PhoneError> {
    checked(country, strip_trunk(country, digits))
}

/// Drops a trunk prefix: always a `0` (no national significant number starts with it where it
/// is the trunk prefix, so `+33 06...` is `+33 6...`), another only when the number is too long
/// with it (`1 555 123 4567` in North America).
fn strip_trunk<'a>(country: &Country, digits: &'a str) -> &'a str {
    match country.trunk_prefix {
        Some(trunk)
            if digits.starts_with(trunk)
                && (trunk == "0" || digits.len() > usize::from(country.national_len.1)) =>
        {
            &digits[trunk.len()..]
        }
        _ => digits,
    }
}

fn checked(country: &Country, national_digits: &str) -> Result<String, PhoneError> {
    let (min, max) = country.national_len;
    let len = national_digits.len();
    if len < usize::from(min) {
        return Err(PhoneError::TooShort {
            country: country.iso.into(),
            min,
        });
    }
    if len > usize::from(max) {
        return Err(PhoneError::TooLong {
            country: country.iso.into(),
            max,
        });
    }
    // North American area codes and exchange codes start with 2 to 9.
    let bytes = national_digits.as_bytes();
    if country.calling_code == 1 && (bytes[0] < b'2' || bytes[3] < b'2') {
        return Err(PhoneError::NotInPlan {
            country: country.iso.into(),
            rule: "area codes and exchange codes start with 2 to 9",
        });
    }
    Ok(format!("+{}{national_digits}", country.calling_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(e164: &str) -> Result<DialNumber, PhoneError> {
        Ok(DialNumber {
            e164: e164.into(),
            extension: None,
        })
    }

    fn ext(e164: &str, extension: &str) -> Result<DialNumber, PhoneError> {
        Ok(DialNumber {
            e164: e164.into(),
            extension: Some(extension.into()),
        })
    }

    fn short(country: &str, min: u8) -> Result<DialNumber, PhoneError> {
        Err(PhoneError::TooShort {
            country: country.into(),
            min,
        })
    }

    fn long(country: &str, max: u8) -> Result<DialNumber, PhoneError> {
        Err(PhoneError::TooLong {
            country: country.into(),
            max,
        })
    }

    #[test]
    fn normalisation_table() {
        let cases: Vec<(&str, &str, Result<DialNumber, PhoneError>)> = vec![
            // France, national and international formats
            ("01 23 45 67 89", "FR", ok("+33123456789")),
            ("06.12.34.56.78", "FR", ok("+33612345678")),
            ("0612345678", "FR", ok("+33612345678")),
            ("612345678", "FR", ok("+33612345678")),
            ("+33 6 12 34 56 78", "FR", ok("+33612345678")),
            ("+33 (0)6 12 34 56 78", "FR", ok("+33612345678")),
            ("+33 06 12 34 56 78", "FR", ok("+33612345678")),
            ("0033 6 12 34 56 78", "FR", ok("+33612345678")),
            ("0033612345678", "US", ok("+33612345678")),
            ("01 23 45 67", "FR", short("FR", 9)),
            ("01 23 45 67 89 10", "FR", long("FR", 9)),
            ("01 23 45 67 89 poste 12", "FR", ext("+33123456789", "12")),
            // United States and Canada
            ("(415) 555-2671", "US", ok("+14155552671")),
            ("415.555.2671", "US", ok("+14155552671")),
            ("1-415-555-2671", "US", ok("+14155552671")),
            ("+1 415 555 2671", "FR", ok("+14155552671")),
            ("011 44 20 7946 0958", "US", ok("+442079460958")),
            ("(415) 555-2671 ext. 204", "US", ext("+14155552671", "204")),
            ("415-555-2671 x12", "US", ext("+14155552671", "12")),
            ("+1 415 555 2671;ext=9", "US", ext("+14155552671", "9")),
            ("415 555 2671,,33", "US", ext("+14155552671", "33")),
            ("(604) 555-0199", "CA", ok("+16045550199")),
            ("555-2671", "US", short("US", 10)),
            (
                "(015) 555-2671",
                "US",
                Err(PhoneError::NotInPlan {
                    country: "US".into(),
                    rule: "area codes and exchange codes start with 2 to 9",
                }),
            ),
            (
                "1-800-FLOWERS",
                "US",
                Err(PhoneError::InvalidCharacter('F')),
            ),
            // United Kingdom, Germany, Belgium, Switzerland, Spain, Italy
            ("020 7946 0958", "GB", ok("+442079460958")),
            ("+44 (0)20 7946 0958", "FR", ok("+442079460958")),
            ("07700 900123", "GB", ok("+447700900123")),
            ("030 1234567", "DE", ok("+49301234567")),
            ("+49 (0)30 123 456 78", "DE", ok("+493012345678")),
            ("02/123.45.67", "BE", ok("+3221234567")),
            ("0470 12 34 56", "BE", ok("+32470123456")),
            ("044 668 18 00", "CH", ok("+41446681800")),
            ("912 345 678", "ES", ok("+34912345678")),
            ("06 6982 1234", "IT", ok("+390669821234")),
            ("+39 06 6982 1234", "FR", ok("+390669821234")),
            // Elsewhere
            ("(11) 91234-5678", "BR", ok("+5511912345678")),
            ("03-1234-5678", "JP", ok("+81312345678")),
            ("0011 33 1 23 45 67 89", "AU", ok("+33123456789")),
            ("0412 345 678", "AU", ok("+61412345678")),
            ("098765 43210", "IN", ok("+919876543210")),
            ("33 820 12 34", "SN", ok("+221338201234")),
            ("0612-345678", "MA", ok("+212612345678")),
            ("+7 495 123-45-67", "FR", ok("+74951234567")),
            ("+971 4 123 4567", "US", ok("+97141234567")),
            ("+852 2123 4567", "GB", ok("+85221234567")),
            // What is not a number to dial
            ("", "FR", Err(PhoneError::Empty)),
            ("  - . ", "FR", Err(PhoneError::Empty)),
            ("*123#", "FR", Err(PhoneError::ToneKey('*'))),
            ("06 12 34 56 78#", "FR", Err(PhoneError::ToneKey('#'))),
            ("06 12 + 34 56 78", "FR", Err(PhoneError::MisplacedPlus)),
            (
                "+0 123 456 789",
                "FR",
                Err(PhoneError::UnknownCountryCode("012".into())),
            ),
            (
                "+999 123 456 789",
                "FR",
                Err(PhoneError::UnknownCountryCode("999".into())),
            ),
            ("+1234567890123456", "FR", long("US", 10)),
            ("+971 1234567890123", "FR", long("+971", 12)),
            ("+971 123", "FR", short("+971", 4)),
            (
                "06 12 34 56 78 ext",
                "FR",
                Err(PhoneError::InvalidExtension),
            ),
            (
                "06 12 34 56 78 ext 12345678901",
                "FR",
                Err(PhoneError::InvalidExtension),
            ),
            (
                "06 12 34 56 78 ext 1a",
                "FR",
                Err(PhoneError::InvalidExtension),
            ),
            (
                "tel:0612345678",
                "FR",
                Err(PhoneError::InvalidCharacter('t')),
            ),
            (
                "06\u{0}12345678",
                "FR",
                Err(PhoneError::InvalidCharacter('\u{0}')),
            ),
            ("٠٦١٢٣٤٥٦٧٨", "FR", Err(PhoneError::InvalidCharacter('٠'))),
        ];
        assert!(cases.len() >= 40);
        for (input, iso, want) in cases {
            let default = country(iso).unwrap();
            assert_eq!(normalise(input, default), want, "{input:?} read in {iso}");
        }
    }

    #[test]
    fn overlong_input_is_refused_before_it_is_read() {
        let input = "1".repeat(MAX_INPUT_CHARS + 1);
        assert_eq!(
            normalise(&input, country("FR").unwrap()),
            Err(PhoneError::InputTooLong)
        );
    }

    #[test]
    fn calling_codes_are_sorted_unique_and_prefix_free() {
        assert!(
            CALLING_CODES.windows(2).all(|w| w[0] < w[1]),
            "sorted and unique"
        );
        for &a in CALLING_CODES {
            for &b in CALLING_CODES {
                let (a, b) = (a.to_string(), b.to_string());
                assert!(a == b || !b.starts_with(&a), "+{a} is a prefix of +{b}");
            }
        }
        for country in COUNTRIES {
            assert!(
                CALLING_CODES.contains(&country.calling_code),
                "{}",
                country.iso
            );
        }
    }

    #[test]
    fn country_lookup_is_case_insensitive() {
        assert_eq!(country(" fr ").map(|c| c.calling_code), Some(33));
        assert_eq!(country("XX"), None);
    }

    #[test]
    fn every_result_is_e164_or_an_error_for_arbitrary_input() {
        let alphabet: Vec<char> = "0123456789 +-.()/*#xet,;poÉ٠\u{a0}".chars().collect();
        let mut random = crate::testing::XorShift::default();
        let fr = country("FR").unwrap();
        for _ in 0..20_000 {
            let len = random.below(40);
            let input: String = (0..len).map(|_| *random.pick(&alphabet)).collect();
            if let Ok(number) = normalise(&input, fr) {
                let digits = &number.e164[1..];
                assert!(number.e164.starts_with('+'), "{input:?} -> {number:?}");
                assert!((8..=15).contains(&digits.len()), "{input:?} -> {number:?}");
                assert!(
                    digits.bytes().all(|b| b.is_ascii_digit()),
                    "{input:?} -> {number:?}"
                );
            }
        }
    }
}
