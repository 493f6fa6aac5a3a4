//! Every number the gateway dials, validated and formatted with libphonenumber's metadata (the
//! `phonenumber` crate), for every country. The text is read with the same
//! [`adapter_core::phone::prepare`] as the widget's preview, so the two read it alike; the
//! differential test in `tests/phone.rs` checks that they agree.

use adapter_core::phone::{self, DialNumber, PhoneError};
use phonenumber::{country::Id, metadata::DATABASE, Mode, ParseError, PhoneNumber};

/// Normalises `input` to E.164 with libphonenumber, reading national formats as numbers of the
/// region `default_iso`; refuses a number libphonenumber does not hold valid.
pub fn normalise(input: &str, default_iso: &str) -> Result<DialNumber, PhoneError> {
    let prepared = phone::prepare(input)?;
    let digits = prepared.digits.as_str();
    let region = DATABASE
        .by_id(default_iso.trim().to_ascii_uppercase().as_str())
        .filter(|m| m.id() != "001");
    let e164 = if prepared.plus {
        international(digits)?
    } else {
        let idd_rest = region
            .and_then(|m| m.international_prefix())
            .and_then(|idd| idd.find(digits))
            .filter(|m| m.start() == 0)
            .map(|m| &digits[m.end()..]);
        match (phone::international_rest(digits, idd_rest), region) {
            (Some(rest), _) => international(rest)?,
            (None, Some(region)) => national(digits, region.id(), region.country_code())?,
            (None, None) => {
                return Err(PhoneError::UnknownCountryCode(default_iso.trim().into()));
            }
        }
    };
    Ok(DialNumber {
        e164,
        extension: prepared.extension,
    })
}

/// Whether `number` is an E.164 number libphonenumber holds valid, written as it formats it.
pub fn check_e164(number: &str) -> Result<(), PhoneError> {
    let Some(digits) = number.strip_prefix('+') else {
        return Err(PhoneError::NotInPlan {
            country: "E.164".into(),
            rule: "an E.164 number starts with +",
        });
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PhoneError::Empty);
    }
    if international(digits)? == number {
        Ok(())
    } else {
        Err(PhoneError::NotInPlan {
            country: "E.164".into(),
            rule: "not written as libphonenumber writes it",
        })
    }
}

/// `digits` follow a `+`.
fn international(digits: &str) -> Result<String, PhoneError> {
    let parsed = phonenumber::parse(None, format!("+{digits}"));
    checked(parsed, digits, None)
}

/// `digits` are a national number of `region`; or, when they are not a valid one and start
/// with its calling code, an international number (kinder than libphonenumber).
fn national(digits: &str, iso: &str, code: u16) -> Result<String, PhoneError> {
    let id: Option<Id> = iso.parse().ok();
    // Given with its calling code as context, so the digits are never taken for a calling
    // code by the parser.
    let parsed = phonenumber::parse(id, format!("tel:{digits};phone-context=+{code}"));
    let read = checked(parsed, digits, Some(code));
    match read {
        Err(error) if digits.starts_with(&code.to_string()) => {
            international(digits).map_err(|_| error)
        }
        read => read,
    }
}

fn checked(
    parsed: Result<PhoneNumber, ParseError>,
    digits: &str,
    code: Option<u16>,
) -> Result<String, PhoneError> {
    let number = match parsed {
        Ok(number) => number,
        Err(ParseError::InvalidCountryCode) => {
            return Err(PhoneError::UnknownCountryCode(
                digits.chars().take(3).collect(),
            ))
        }
        Err(ParseError::TooLong) => {
            return Err(PhoneError::TooLong {
                country: label(code),
                max: 17,
            })
        }
        Err(_) => {
            return Err(PhoneError::TooShort {
                country: label(code),
                min: 2,
            })
        }
    };
    let code = number.code().value();
    let national = number.national().to_string();
    if phonenumber::is_valid(&number) {
        return Ok(number.format().mode(Mode::E164).to_string());
    }
    // Say why in the preview's words where its plan already knows; otherwise it is a gap in
    // the plan only libphonenumber's full patterns show.
    Err(match phone::check_plan(code, &national) {
        Err(error) => error,
        Ok(()) => PhoneError::NotInPlan {
            country: label(Some(code)),
            rule: "no such number in the country's numbering plan",
        },
    })
}

fn label(code: Option<u16>) -> String {
    code.and_then(|c| {
        DATABASE
            .by_code(&c)?
            .first()
            .map(|m| (c, m.id().to_owned()))
    })
    .map(|(c, id)| if id == "001" { format!("+{c}") } else { id })
    .unwrap_or_else(|| "+".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_checked_against_the_plan() {
        for good in ["+14155552671", "+33612345678", "+390212345678", "+6834002"] {
            assert_eq!(check_e164(good), Ok(()), "{good}");
        }
        for bad in [
            "+33723456789",
            "+32123456781",
            "+3306123456789",
            "33612345678",
            "+",
            "+1 415 555 2671",
        ] {
            assert!(check_e164(bad).is_err(), "{bad}");
        }
    }
}
