//! Writing JSON text: the widget's writer, the counterpart of [`crate::json_fields`]. serde_json's
//! serialiser (its `io::Write` plumbing and each derived `Serialize`) is a large share of the
//! widget's size; these few functions write the same text. Each type's [`ToJson`] is tested
//! against its derived serialiser ([`assert_writes_as_serde`]), so the two cannot drift apart.

use std::fmt::Write as _;

use serde_json::Value;

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
        Value::Number(number) => {
            let _ = write!(out, "{number}");
        }
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
            assert_eq!(to_text(sample), sample.to_string(), "{sample:?}");
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
                assert_eq!(to_text(&value), value.to_string(), "{raw}");
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
