//! `--set key=value` overrides applied to a TOML config before it is deserialised (shared by
//! `mgrpo train` and `mgrpo sft`).

use std::path::Path;

use crate::error::{Error, Result};

/// A TOML config's top-level table (`path` is only used in messages) with the `--set`
/// overrides applied (`key=value`, dotted keys into tables). Errors name the file and the key.
/// Shared by `mgrpo train` and `mgrpo sft`.
pub(crate) fn parse_table(text: &str, path: &Path, overrides: &[String]) -> Result<toml::Table> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::config(path, e.to_string().trim().to_string()))?;
    for o in overrides {
        let (key, value) = parse_override(o)?;
        set_dotted(&mut table, &key, value).map_err(|table| {
            Error::arg(format!("--set {o}"), format!("`{table}` is not a table"))
        })?;
    }
    Ok(table)
}

/// Refuse a key that moved (`moved`: old key, where it lives now), pointing to its new place.
pub(crate) fn refuse_moved(
    table: &toml::Table,
    moved: &[(&str, &str)],
) -> std::result::Result<(), String> {
    match moved.iter().find(|(old, _)| table.contains_key(*old)) {
        Some((old, new)) => Err(format!(
            "unknown key `{old}`: it moved to {new} (on the command line: --set TABLE.KEY=VALUE)"
        )),
        None => Ok(()),
    }
}

/// Keys of burn-collective's multi-node engine, which TCP connections to node 0 replaced.
const GONE: &[(&str, &str)] = &[
    (
        "orchestrator",
        "node 0's host:port is now `rendezvous` (see \"Several machines\")",
    ),
    (
        "node_address",
        "the nodes now connect to node 0 only (`rendezvous`)",
    ),
];

/// Refuse a key that is gone, saying what replaced it.
pub(crate) fn refuse_replaced(table: &toml::Table) -> std::result::Result<(), String> {
    match GONE.iter().find(|(old, _)| table.contains_key(*old)) {
        Some((old, why)) => Err(format!("key `{old}` is gone: {why}")),
        None => Ok(()),
    }
}

/// Set `a.b.c = value` in `table`, creating the tables on the way (`reward.format_weight`).
/// The error is the part of the key that names a value, not a table.
fn set_dotted<'k>(
    table: &mut toml::Table,
    key: &'k str,
    value: toml::Value,
) -> std::result::Result<(), &'k str> {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
            Ok(())
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_dotted(t, rest, value),
                _ => Err(head),
            }
        }
    }
}

/// `key=value` → the key and its TOML value (a bare word is a string).
fn parse_override(s: &str) -> Result<(String, toml::Value)> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| Error::arg(format!("--set `{s}`"), "expected KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::arg(format!("--set `{s}`"), "empty key"));
    }
    let value = value.trim();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key.to_string(), parsed))
}
