//! JSON text, read and written by the widget: [`parse`] into a `serde_json::Value` (whose
//! fields [`crate::json_fields`] reads) and [`to_text`] and [`ToJson`] out. serde_json's parser
//! and serialiser (generic code, error plumbing, `io::Write`) were a large share of the widget's
//! size; these few functions read and write the same texts. They are tested against serde_json
//! itself: the same values from the same texts (thousands of mutated ones among them), the same
//! texts refused, the same text written (`assert_writes_as_serde` for each [`ToJson`]).

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// serde_json's nesting limit: 127 levels of arrays and objects are read, 128 are refused.
const MAX_DEPTH: u32 = 128;

/// Reads `text` as one JSON value (whitespace around it allowed, nothing else), as
/// `serde_json::from_str::<Value>` reads it; the refusal says what was wrong and where.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser {
        text,
        at: 0,
        depth: 0,
    };
    parser.space();
    let value = parser.value()?;
    parser.space();
    if parser.at < text.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        let (word, value) = match self.peek() {
            Some(b'"') => return self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => return self.number(),
            Some(open @ (b'[' | b'{')) => return self.nested(open == b'{'),
            Some(b'n') => ("null", Value::Null),
            Some(b't') => ("true", Value::Bool(true)),
            Some(b'f') => ("false", Value::Bool(false)),
            _ => return Err(self.error("expected a value")),
        };
        if !self.text[self.at..].starts_with(word) {
            return Err(self.error("expected a value"));
        }
        self.at += word.len();
        Ok(value)
    }

    /// An array or an object, at its opening bracket.
    fn nested(&mut self, object: bool) -> Result<Value, String> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1;
        let close = if object { b'}' } else { b']' };
        let mut items = Vec::new();
        let mut fields = Map::new();
        self.space();
        if !self.eat(close) {
            loop {
                if object {
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a key"));
                    }
                    let key = self.string()?;
                    self.space();
                    if !self.eat(b':') {
                        return Err(self.error("expected `:`"));
                    }
                    self.space();
                    fields.insert(key, self.value()?);
                } else {
                    items.push(self.value()?);
                }
                self.space();
                if self.eat(close) {
                    break;
                }
                if !self.eat(b',') {
                    return Err(self.error("expected `,` or a closing bracket"));
                }
                self.space();
            }
        }
        self.depth -= 1;
        Ok(if object {
            Value::Object(fields)
        } else {
            Value::Array(items)
        })
    }

    /// A string, at its opening quote.
    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            // Stopped at an ASCII byte or the end: a character boundary.
            out.push_str(&self.text[start..self.at]);
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.at += 1;
            match byte {
                b'"' => return Ok(out),
                b'\\' => {}
                _ => return Err(self.error("control character in a string")),
            }
            let escaped = self.peek();
            self.at += 1;
            out.push(match escaped {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => self.unicode_escape()?,
                _ => return Err(self.error("invalid escape")),
            });
        }
    }

    /// The character of `\uXXXX` (after the `u`), or of a surrogate pair `\uD83D\uDE00`.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if !self.text[self.at..].starts_with("\\u") {
                    return Err(self.error("lone surrogate in an escape"));
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error("lone surrogate in an escape"));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("lone surrogate in an escape"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("");
        let code = (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or_else(|| self.error("invalid escape"))?;
        self.at += 4;
        Ok(code)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number: a whole one that fits is a `u64` (0 or more) or an `i64`; anything else an
    /// `f64` (-0 included, as serde_json reads it); one too large for an `f64` is refused.
    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        let negative = self.eat(b'-');
        let whole_start = self.at;
        let whole_digits = self.digits();
        let whole = &self.text[whole_start..self.at];
        if whole_digits == 0 || (whole_digits > 1 && whole.starts_with('0')) {
            return Err(self.error("invalid number"));
        }
        let mut fraction = "";
        if self.eat(b'.') {
            let from = self.at;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            fraction = &self.text[from..self.at];
        }
        let mut exponent: i64 = 0;
        let mut integer = fraction.is_empty();
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            let minus = !self.eat(b'+') && self.eat(b'-');
            let from = self.at;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            exponent = self.text[from..self.at]
                .bytes()
                .fold(0, |e, b| (e * 10 + i64::from(b - b'0')).min(1_000_000));
            if minus {
                exponent = -exponent;
            }
        }
        let text = &self.text[start..self.at];
        if integer && text != "-0" {
            let number = if negative {
                text.parse::<i64>().ok().map(Number::from)
            } else {
                text.parse::<u64>().ok().map(Number::from)
            };
            if let Some(number) = number {
                return Ok(Value::Number(number));
            }
        }
        let value = float(whole, fraction, exponent);
        Number::from_f64(if negative { -value } else { value })
            .map(Value::Number)
            .ok_or_else(|| self.error("number out of range"))
    }
}

/// A type the widget sends as JSON, written exactly as `serde_json::to_string` writes it.
pub trait ToJson {
    fn to_json(&self) -> String;
}

/// An object being written, its fields in the order they are added.
pub struct Object(String);

impl Default for Object {
    fn default() -> Self {
        Object("{".to_owned())
    }
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string_into(key, &mut self.0);
        self.0.push(':');
        &mut self.0
    }

    /// A string field.
    pub fn text(&mut self, key: &str, value: &str) -> &mut Self {
        string_into(value, self.key(key));
        self
    }

    /// A string field, `null` when `None`.
    pub fn opt_text(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(key, value),
            None => self.raw(key, "null"),
        }
    }

    /// A whole-number field.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        let _ = write!(self.key(key), "{value}");
        self
    }

    /// A whole-number field, 0 or more.
    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        let _ = write!(self.key(key), "{value}");
        self
    }

    /// A whole-number field, `null` when `None`.
    pub fn opt_int(&mut self, key: &str, value: Option<i64>) -> &mut Self {
        match value {
            Some(value) => self.int(key, value),
            None => self.raw(key, "null"),
        }
    }

    /// A field of any JSON value.
    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        value_into(value, self.key(key));
        self
    }

    /// A field whose value is JSON text already (a nested [`ToJson`], `null`).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    /// The object's text.
    pub fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.0);
        text.push('}');
        text
    }
}

/// The value of the digits `whole.fraction` × 10^`exponent`: exact (correctly rounded) for up to
/// 15 significant digits and an exponent within ±22, which is every number the widget meets;
/// beyond, within a few units in the last place, as serde_json reads them without its
/// `float_roundtrip` feature (so a number within a few units of `f64::MAX` may be refused as out
/// of range). The standard library's correctly rounded parser would carry some 10 kB of tables
/// into the wasm.
fn float(whole: &str, fraction: &str, mut exponent: i64) -> f64 {
    const LIMIT: u64 = 1_000_000_000_000_000_000;
    let mut mantissa: u64 = 0;
    for digit in whole.bytes() {
        if mantissa < LIMIT {
            mantissa = mantissa * 10 + u64::from(digit - b'0');
        } else {
            exponent += 1;
        }
    }
    for digit in fraction.bytes() {
        if mantissa < LIMIT {
            mantissa = mantissa * 10 + u64::from(digit - b'0');
            exponent -= 1;
        }
    }
    let mut value = mantissa as f64;
    if mantissa == 0 {
        return value;
    }
    while exponent < -308 && value != 0.0 {
        value /= 1e308;
        exponent += 308;
    }
    // Within ±400 after the loop: 10^400 is infinite, and so is the value.
    let power = 10f64.powi(exponent.unsigned_abs().min(400) as i32);
    if exponent >= 0 {
        value * power
    } else {
        value / power
    }
}

/// `value` as JSON text, compact, as `Value::to_string` writes it.
pub fn to_text(value: &Value) -> String {
    let mut text = String::new();
    value_into(value, &mut text);
    text
}

fn value_into(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => match (number.as_u64(), number.as_i64(), number.as_f64()) {
            (Some(whole), _, _) => {
                let _ = write!(out, "{whole}");
            }
            (_, Some(whole), _) => {
                let _ = write!(out, "{whole}");
            }
            (_, _, fraction) => float_into(fraction.unwrap_or_default(), out),
        },
        Value::String(text) => string_into(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                value_into(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (index, (key, value)) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                string_into(key, out);
                out.push(':');
                value_into(value, out);
            }
            out.push('}');
        }
    }
}

/// A number that is not whole (or too large for a whole type): `1.0` for a whole number below
/// 2^53, as serde_json writes it; else up to 17 significant digits and an exponent (`1.5e-7`),
/// the same number to 14 significant figures (the powers of ten are computed, not tabled). The
/// widget only writes back numbers it read, and never computes with a fraction; the shortest
/// exact writer serde_json uses carries its own tables into the wasm (1,770 B gzip).
fn float_into(value: f64, out: &mut String) {
    if value.is_sign_negative() {
        out.push('-');
    }
    let value = value.abs();
    if value.fract() == 0.0 && value < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}.0", value as u64);
        return;
    }
    // value ≈ digits × 10^-shift, digits of 17 figures (in [1e16, 1e17)).
    let binary_exponent = ((value.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let mut shift = 16 - (f64::from(binary_exponent) * std::f64::consts::LOG10_2) as i32;
    let scale = |shift: i32| {
        // In two steps: 10^shift alone overflows for the smallest numbers.
        let half = shift / 2;
        value * 10f64.powi(half) * 10f64.powi(shift - half)
    };
    let mut scaled = scale(shift);
    while scaled >= 1e17 {
        shift -= 1;
        scaled = scale(shift);
    }
    while scaled < 1e16 {
        shift += 1;
        scaled = scale(shift);
    }
    let mut digits = scaled.round() as u64;
    while digits.is_multiple_of(10) {
        digits /= 10;
        shift -= 1;
    }
    let text = digits.to_string();
    out.push_str(&text[..1]);
    if text.len() > 1 {
        out.push('.');
        out.push_str(&text[1..]);
    }
    let _ = write!(out, "e{}", text.len() as i32 - 1 - shift);
}

/// A JSON string: quotes, backslashes and control characters escaped as serde_json escapes
/// them; everything else as is.
fn string_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let byte = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[byte >> 4]));
                out.push(char::from(HEX[byte & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Test support: each sample writes the text its derived serialiser writes.
#[cfg(test)]
pub(crate) fn assert_writes_as_serde<T: ToJson + serde::Serialize + std::fmt::Debug>(
    samples: &[T],
) {
    for sample in samples {
        let theirs = serde_json::to_string(sample).unwrap();
        assert_eq!(sample.to_json(), theirs, "{sample:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The same value, a fraction's last bits aside: neither parser rounds every fraction
    /// correctly (serde_json without its `float_roundtrip` feature, `parse` beyond 15 digits or
    /// an exponent of ±22), and below 1e-300 both are as good as 0.
    fn same(ours: &Value, theirs: &Value) -> bool {
        match (ours, theirs) {
            (Value::Number(a), Value::Number(b)) if a.is_f64() && b.is_f64() => {
                let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(1.0));
                a.is_sign_negative() == b.is_sign_negative()
                    && ((a - b).abs() <= a.abs().max(b.abs()) * 1e-14 || (a - b).abs() < 1e-300)
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((k, a), (l, b))| k == l && same(a, b))
            }
            _ => ours == theirs,
        }
    }

    /// Parses `text` both ways; returns whether it was read.
    fn reads_as_serde_json(text: &str) -> bool {
        match (parse(text), serde_json::from_str::<Value>(text)) {
            (Ok(ours), Ok(theirs)) => {
                assert!(
                    same(&ours, &theirs),
                    "{text:?}: read {ours}, serde {theirs}"
                );
                true
            }
            (Err(_), Err(_)) => false,
            (ours, theirs) => panic!("{text:?}: read {ours:?}, serde {theirs:?}"),
        }
    }

    #[test]
    fn texts_are_read_as_serde_json_reads_them() {
        let read = [
            "null",
            " true ",
            "\tfalse\r\n",
            "0",
            "-0",
            "-7",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.5",
            "-0.0",
            "1e3",
            "1E+2",
            "2.5e-3",
            "1e-400",
            "1.5e308",
            "0.1",
            "123456789012345678901234567890",
            r#""""#,
            r#""plain é 😀""#,
            r#""\" \\ \/ \b \f \n \r \t""#,
            r#""\u0041\u00e9\u20AC\ud83d\ude00\u0000""#,
            "[]",
            "{}",
            "[ 1 , [ ] , { } ]",
            r#"{"a": 1, "a": 2, "b": {"c": [null]}}"#,
            r#" { "k" : "v" } "#,
        ];
        for text in read {
            assert!(reads_as_serde_json(text), "{text}");
        }
        let refused = [
            "",
            " ",
            "nul",
            "tru",
            "nulls",
            "NaN",
            "Infinity",
            "+1",
            "01",
            "-01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "1.e3",
            "1e400",
            "-1e400",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{,}",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            "{1:2}",
            "1 2",
            "[",
            "{",
            r#"""#,
            r#""\x""#,
            r#""\u12""#,
            r#""\u12G4""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800\n""#,
            "\"a\nb\"",
            "\"\u{1}\"",
            "\u{feff}1",
        ];
        for text in refused {
            assert!(!reads_as_serde_json(text), "{text:?}");
        }
        // serde_json's nesting limit, both ways.
        for depth in [126, 127, 128, 129] {
            for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
                let text = format!("{}0{}", open.repeat(depth), close.repeat(depth));
                assert_eq!(reads_as_serde_json(&text), depth < 128, "{depth} {open}");
            }
        }
        assert!(parse("[").unwrap_err().contains("at byte 1"));
    }

    #[test]
    fn mutated_texts_are_read_as_serde_json_reads_them() {
        let seeds = [
            r#"{"protocol":"ccai-kustomer-adapter","version":1,"type":"init","id":"h-1","payload":{"user":{"id":"u1","email":"ada@example.com"},"lang":"fr-FR"}}"#,
            r#"[0, -1, 2.5e-3, 1E9, true, false, null, "s\"\\\u00e9\ud83d\ude00", [], {}]"#,
            r#"{"seq":42,"epoch":7,"event":{"type":"call","call":{"id":9,"state":"ringing","number":"+33612345678"}}}"#,
        ]
        .map(String::from);
        let noise = format!("{}\\u/+E\u{e9} \n", crate::testing::JSON_NOISE);
        let mut read = 0;
        for text in crate::testing::mutations(&seeds, 20_000, 4, &noise) {
            read += usize::from(reads_as_serde_json(&text));
        }
        assert!(read > 2_000, "only {read} of the mutations were JSON");
        // Numbers of every size, both ways.
        let mut random = crate::testing::XorShift::default();
        for _ in 0..5_000 {
            let mantissa = random.next_u64() >> random.below(64);
            let text = match random.below(4) {
                0 => format!("{mantissa}"),
                1 => format!("-{mantissa}"),
                2 => format!("{mantissa}.{}", random.next_u64() % 1000),
                _ => format!("-{mantissa}e{}", random.below(700) as i64 - 350),
            };
            reads_as_serde_json(&text);
        }
    }

    /// `value` is written as serde_json writes it; a fraction to 14 figures (see `float_into`).
    fn assert_written_as_serde(value: &Value) {
        let (ours, theirs) = (to_text(value), value.to_string());
        if ours != theirs {
            let read = serde_json::from_str::<Value>(&ours);
            assert!(
                read.as_ref().is_ok_and(|read| same(read, value)),
                "{value:?}: wrote {ours}, serde_json {theirs}"
            );
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let samples = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-7),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(0.1),
            json!(""),
            json!("plain"),
            json!("quote \" backslash \\ slash / tab \t nl \n cr \r bs \u{8} ff \u{c}"),
            json!("\u{0}\u{1}\u{1f}\u{7f} é 😀"),
            json!([]),
            json!({}),
            json!([1, "a", [null, {}], {"k": [true]}]),
            json!({"b": 1, "a": {"z": [], "y": "\""}, "": null}),
        ];
        for sample in &samples {
            assert_written_as_serde(sample);
        }
        // Fractions: read back as serde_json reads them, the same number to 14 figures.
        let mut random = crate::testing::XorShift::default();
        let mut fractions = vec![0.1, 1.5, -2.5e-7, 1e300, 5e-324, 2.2250738585072014e-308];
        fractions.extend([
            f64::MAX,
            f64::MIN_POSITIVE,
            123456.789,
            9_007_199_254_740_993.0,
        ]);
        for _ in 0..20_000 {
            let bits = random.next_u64();
            let value = f64::from_bits(bits);
            if value.is_finite() {
                fractions.push(value);
            }
        }
        for value in fractions {
            let text = to_text(&json!(value));
            let theirs = serde_json::from_str::<Value>(&text).unwrap_or_default();
            let back = theirs.as_f64().unwrap_or(f64::NAN);
            assert!(
                back == value || (back - value).abs() <= value.abs() * 1e-14,
                "{value:e} written {text}, read back {back:e}"
            );
        }
        // Every control character, one at a time.
        for byte in 0u8..0x20 {
            let sample = Value::String(char::from(byte).to_string());
            assert_eq!(to_text(&sample), sample.to_string(), "{byte}");
        }
    }

    #[test]
    fn mutated_values_are_written_as_serde_json_writes_them() {
        let texts = [
            json!({"a": "x\ny", "b": [1, 2.5, -3], "c": {"d": null, "e": false}}).to_string(),
            json!(["é", "\u{1}", {"\\": "\""}]).to_string(),
        ];
        let mut written = 0;
        for raw in crate::testing::mutations(&texts, 3_000, 3, crate::testing::JSON_NOISE) {
            if let Ok(value) = serde_json::from_str::<Value>(&raw) {
                assert_written_as_serde(&value);
                written += 1;
            }
        }
        assert!(written > 100, "only {written} mutations parsed");
    }

    #[test]
    fn objects_write_fields_in_order() {
        let mut object = Object::new();
        object
            .text("s", "a\"b")
            .opt_text("none", None)
            .opt_text("some", Some("x"))
            .int("i", -4)
            .uint("u", u64::MAX)
            .opt_int("n", None)
            .value("v", &json!([1, {"k": "v"}]))
            .raw("r", r#"{"x":1}"#);
        assert_eq!(
            object.finish(),
            r#"{"s":"a\"b","none":null,"some":"x","i":-4,"u":18446744073709551615,"n":null,"v":[1,{"k":"v"}],"r":{"x":1}}"#
        );
        assert_eq!(Object::new().finish(), "{}");
    }
}
