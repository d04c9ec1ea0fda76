//! Config sections: a struct of keys that a config file writes either flat at its top level
//! (TRL's names: `learning_rate`, `kl_coef`, ...) or as a `[table]` (our methods' keys), read
//! out of the file's table before the rest is deserialised. serde's `flatten` is not used to
//! read them: it loses the key in type errors, ignores the outer struct's defaults and cannot
//! refuse unknown keys.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serialize;

/// Take the keys of the flat section `S` out of `table` and deserialise them over `default`
/// (the enclosing config's defaults for this section). The error names the key.
pub(crate) fn take_flat<S: Serialize + DeserializeOwned>(
    table: &mut toml::Table,
    default: &S,
) -> Result<S, String> {
    let mut section = toml::Table::try_from(default).map_err(|e| e.to_string())?;
    for key in fields_of::<S>() {
        if let Some(v) = table.remove(*key) {
            section.insert(key.to_string(), v);
        }
    }
    S::deserialize(section).map_err(|e| message(&e))
}

/// Take the table `name` out of `table` and deserialise it (absent: the section's defaults).
/// The error names `name.key`.
pub(crate) fn take_table<S: Default + DeserializeOwned>(
    table: &mut toml::Table,
    name: &str,
) -> Result<S, String> {
    match table.remove(name) {
        None => Ok(S::default()),
        Some(toml::Value::Table(t)) => S::deserialize(t).map_err(|e| {
            let m = message(&e);
            format!("[{name}] {m}")
        }),
        Some(_) => Err(format!("`{name}` must be a table ([{name}])")),
    }
}

/// A toml error as one line, with the key it is about.
fn message(e: &toml::de::Error) -> String {
    e.to_string().trim().replace('\n', " ")
}

/// The field names of the struct `S` (what its derived `Deserialize` asks for).
pub(crate) fn fields_of<S: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = S::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only records the fields a struct asks for, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Optim {
        learning_rate: f64,
        warmup_steps: usize,
    }

    impl Default for Optim {
        fn default() -> Self {
            Self {
                learning_rate: 1e-6,
                warmup_steps: 0,
            }
        }
    }

    #[test]
    fn flat_keys_leave_the_table_over_the_callers_defaults() {
        assert_eq!(fields_of::<Optim>(), ["learning_rate", "warmup_steps"]);
        let mut t: toml::Table = "warmup_steps = 3\nseed = 1".parse().unwrap();
        let sft_default = Optim {
            learning_rate: 2e-5,
            warmup_steps: 0,
        };
        let o = take_flat(&mut t, &sft_default).unwrap();
        assert_eq!((o.learning_rate, o.warmup_steps), (2e-5, 3));
        assert_eq!(t.keys().collect::<Vec<_>>(), ["seed"]);
        let mut bad: toml::Table = "warmup_steps = \"x\"".parse().unwrap();
        let e = take_flat(&mut bad, &Optim::default()).unwrap_err();
        assert!(e.contains("warmup_steps"), "{e}");
    }

    #[test]
    fn tables_name_their_unknown_keys() {
        let mut t: toml::Table = "[optim]\nwarmup = 3".parse().unwrap();
        let e = take_table::<Optim>(&mut t, "optim").unwrap_err();
        assert!(e.contains("[optim]") && e.contains("`warmup`"), "{e}");
        let mut t: toml::Table = "optim = 3".parse().unwrap();
        assert!(take_table::<Optim>(&mut t, "optim").is_err());
        let mut t = toml::Table::new();
        assert_eq!(
            take_table::<Optim>(&mut t, "optim").unwrap(),
            Optim::default()
        );
    }
}
