//! Reading typed fields out of a parsed JSON object, with the reason for each refusal. The widget
//! decodes what reaches it (host messages, the event stream) with these instead of serde's
//! derived decoders: one small parser for everything ([`crate::json_text::parse`], into a
//! `serde_json::Value`), and a few lines per type, where each derived decoder is its own generic
//! code (a large share of the widget's size).
//!
//! The rules are serde's defaults, so a type reads the same through either: unknown fields are
//! ignored; an optional field that is missing or `null` is `None`; a field with a default
//! (`or_default`) takes it only when missing (`null` is refused, as serde refuses it); a field
//! of the wrong type is refused with its name.

use serde_json::{Map, Value};

/// Why a message was refused: `field `phone`: expected a string`, `missing field `user``.
pub type FieldError = String;

/// What a field reader says of a value it refuses: the kind it expected (the field is named
/// by [`Fields`]), or a whole refusal of something inside it.
#[derive(Debug)]
pub enum Refusal {
    Expected(String),
    Inner(FieldError),
}

impl From<FieldError> for Refusal {
    fn from(inner: FieldError) -> Self {
        Refusal::Inner(inner)
    }
}

/// A JSON object whose fields are being read; `what` names it in refusals.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    what: &'a str,
}

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be an object.
    pub fn of(value: &'a Value, what: &'a str) -> Result<Fields<'a>, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields { map, what }),
            _ if what.is_empty() => Err("expected an object".into()),
            _ => Err(format!("`{what}`: expected an object")),
        }
    }

    /// The field's value, `None` when missing or `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Every field, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.iter()
    }

    /// The field's value as given (`null` included), `None` when missing.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn name(&self, key: &str) -> String {
        if self.what.is_empty() {
            format!("`{key}`")
        } else {
            format!("`{}.{key}`", self.what)
        }
    }

    fn read<T>(
        &self,
        key: &str,
        value: &'a Value,
        read: impl FnOnce(&'a Value, &str) -> Result<T, Refusal>,
    ) -> Result<T, FieldError> {
        read(value, key).map_err(|refusal| match refusal {
            Refusal::Expected(kind) => format!("field {}: expected {kind}", self.name(key)),
            Refusal::Inner(error) => error,
        })
    }

    /// A required field.
    pub fn req<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'a Value, &str) -> Result<T, Refusal>,
    ) -> Result<T, FieldError> {
        match self.map.get(key) {
            Some(value) => self.read(key, value, read),
            None => Err(format!("missing field {}", self.name(key))),
        }
    }

    /// An optional field: `None` when missing or `null`.
    pub fn opt<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'a Value, &str) -> Result<T, Refusal>,
    ) -> Result<Option<T>, FieldError> {
        match self.map.get(key).filter(|v| !v.is_null()) {
            Some(value) => self.read(key, value, read).map(Some),
            None => Ok(None),
        }
    }

    /// A field with a default: the default only when missing.
    pub fn or_default<T: Default>(
        &self,
        key: &str,
        read: impl FnOnce(&'a Value, &str) -> Result<T, Refusal>,
    ) -> Result<T, FieldError> {
        match self.map.get(key) {
            Some(value) => self.read(key, value, read),
            None => Ok(T::default()),
        }
    }
}

/// A type read from a JSON object by [`Fields`]: the widget's decoder of a body.
pub trait FromJson: Sized {
    fn from_fields(fields: Fields<'_>) -> Result<Self, FieldError>;
}

/// Parses `text` and reads a `T` from it.
pub fn from_str<T: FromJson>(text: &str) -> Result<T, FieldError> {
    let value = crate::json_text::parse(text)?;
    T::from_fields(Fields::of(&value, "")?)
}

/// A field that is an object, read as `T`.
pub fn object<T: FromJson>(value: &Value, key: &str) -> Result<T, Refusal> {
    Ok(T::from_fields(
        Fields::of(value, key).map_err(|_| Refusal::Expected("an object".into()))?,
    )?)
}

/// A field that is an object, read by `read` (`what` names it in refusals).
pub fn object_with<'a, T>(
    what: &'a str,
    read: impl Fn(Fields<'a>) -> Result<T, FieldError>,
) -> impl Fn(&'a Value, &str) -> Result<T, Refusal> {
    move |value, _| Ok(read(Fields::of(value, what)?)?)
}

/// Any JSON value, as given.
pub fn any(value: &Value, _: &str) -> Result<Value, Refusal> {
    Ok(value.clone())
}

fn expected(kind: &str) -> Refusal {
    Refusal::Expected(kind.into())
}

/// A string.
pub fn string(value: &Value, _: &str) -> Result<String, Refusal> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| expected("a string"))
}

/// `true` or `false`.
pub fn boolean(value: &Value, _: &str) -> Result<bool, Refusal> {
    value.as_bool().ok_or_else(|| expected("a boolean"))
}

/// A whole number that fits an `i64`.
pub fn int(value: &Value, _: &str) -> Result<i64, Refusal> {
    value.as_i64().ok_or_else(|| expected("a whole number"))
}

/// A whole number that fits a `u64`.
pub fn uint(value: &Value, _: &str) -> Result<u64, Refusal> {
    value
        .as_u64()
        .ok_or_else(|| expected("a whole number, 0 or more"))
}

/// A whole number that fits a `u32`.
pub fn uint32(value: &Value, key: &str) -> Result<u32, Refusal> {
    u32::try_from(uint(value, key)?).map_err(|_| expected("a smaller number"))
}

/// A whole number that fits a `u16`.
pub fn uint16(value: &Value, key: &str) -> Result<u16, Refusal> {
    u16::try_from(uint(value, key)?).map_err(|_| expected("a smaller number"))
}

/// An array, each item read by `read`.
pub fn list<'a, T>(
    read: impl Fn(&'a Value, &str) -> Result<T, Refusal>,
) -> impl FnOnce(&'a Value, &str) -> Result<Vec<T>, Refusal> {
    move |value, key| {
        let items = value.as_array().ok_or_else(|| expected("an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                read(item, key).map_err(|refusal| match refusal {
                    Refusal::Expected(kind) => {
                        Refusal::Inner(format!("field `{key}[{i}]`: expected {kind}"))
                    }
                    inner => inner,
                })
            })
            .collect()
    }
}

/// One of `names` (an enum's variants by name): its index.
pub fn one_of<'n>(names: &'n [&'n str]) -> impl Fn(&Value, &str) -> Result<usize, Refusal> + 'n {
    move |value, _| {
        value
            .as_str()
            .and_then(|s| names.iter().position(|n| *n == s))
            .ok_or_else(|| Refusal::Expected(format!("one of {}", names.join(", "))))
    }
}

/// Holds a [`FromJson`] reader to the type's derived decoder: each sample reads back as
/// itself, and `mutations` random edits of their JSON read the same through both (or are
/// refused by both).
#[cfg(test)]
pub(crate) fn assert_reads_as_serde<T>(samples: &[T], mutations: usize)
where
    T: FromJson + serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let texts: Vec<String> = samples
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    for (sample, text) in samples.iter().zip(&texts) {
        assert_eq!(&from_str::<T>(text).unwrap(), sample, "{text}");
    }
    for raw in crate::testing::mutations(&texts, mutations, 3, crate::testing::JSON_NOISE) {
        match (from_str::<T>(&raw), serde_json::from_str::<T>(&raw)) {
            (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{raw}"),
            (Err(_), Err(_)) => {}
            (ours, theirs) => panic!("{raw}: read {ours:?}, serde {theirs:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_read_as_serde_reads_them() {
        let value = json!({"s": "x", "n": null, "i": -3, "u": 7, "b": true, "l": ["a", "b"],
            "bad": 1.5, "o": {"k": "v"}});
        let f = Fields::of(&value, "").unwrap();
        assert_eq!(f.req("s", string).unwrap(), "x");
        assert_eq!(f.opt("n", string).unwrap(), None, "null is none");
        assert_eq!(f.opt("gone", string).unwrap(), None, "missing is none");
        assert_eq!(f.req("i", int).unwrap(), -3);
        assert_eq!(f.req("u", uint32).unwrap(), 7);
        assert!(f.req("b", boolean).unwrap());
        assert_eq!(f.req("l", list(string)).unwrap(), ["a", "b"]);
        assert_eq!(
            f.or_default("gone", list(string)).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(f.req("gone", string).unwrap_err(), "missing field `gone`");
        assert_eq!(
            f.req("i", string).unwrap_err(),
            "field `i`: expected a string"
        );
        assert_eq!(
            f.req("i", uint).unwrap_err(),
            "field `i`: expected a whole number, 0 or more"
        );
        assert!(f.req("bad", int).is_err(), "no fractions");
        assert!(
            f.or_default("n", list(string)).is_err(),
            "null is not a default"
        );
        assert_eq!(
            f.req("l", list(int)).unwrap_err(),
            "field `l[0]`: expected a whole number"
        );
        let inner = f
            .req("o", |v, _| Fields::of(v, "o").map_err(Refusal::from))
            .unwrap();
        assert_eq!(inner.req("x", string).unwrap_err(), "missing field `o.x`");
        assert_eq!(
            f.req("s", one_of(&["a", "b"])).unwrap_err(),
            "field `s`: expected one of a, b"
        );
        assert!(Fields::of(&json!([1]), "").is_err());
    }
}
