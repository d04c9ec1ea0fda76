//! `report_to = "tensorboard"`: each step's metrics as TensorBoard scalars, in an event file
//! under `RUN/runs/` (transformers' `logging_dir`), written as the run goes.
//!
//! The file is TensorFlow's record format: per record its length (u64, little-endian), the
//! masked CRC-32C of the length, the bytes, and their masked CRC-32C. Each record is an `Event`
//! protocol buffer: the first holds the file version, each later one a step's `Summary` with
//! one `simple_value`. A scalar record is byte for byte what PyTorch's `SummaryWriter.add_scalar`
//! writes (`tests/fixtures/tensorboard/`). Tags are transformers' `train/<metric>`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, KeyError, Result};

/// `report_to` (TRL's and transformers' key): where metrics go besides `metrics.jsonl`. A
/// string or a list: `"tensorboard"`, `"all"` (every writer mgrpo has: TensorBoard), `"none"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "OneOrMany", into = "Vec<String>")]
pub struct ReportTo(pub Vec<String>);

impl Default for ReportTo {
    /// transformers 5's default: no writer.
    fn default() -> Self {
        Self(vec!["none".into()])
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for ReportTo {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::One(s) => Self(vec![s]),
            OneOrMany::Many(v) => Self(v),
        }
    }
}

impl From<ReportTo> for Vec<String> {
    fn from(r: ReportTo) -> Self {
        r.0
    }
}

impl ReportTo {
    /// Whether the run writes TensorBoard event files.
    pub fn tensorboard(&self) -> bool {
        self.0.iter().any(|s| s == "tensorboard" || s == "all")
    }

    /// Only the writers mgrpo has; `"none"` alone.
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        if let Some(other) = self
            .0
            .iter()
            .find(|s| !["tensorboard", "all", "none"].contains(&s.as_str()))
        {
            return Err(KeyError::new(
                "report_to",
                format!(
                    "\"{other}\" is not a writer mgrpo has (\"tensorboard\", \"all\" or \"none\"; \
                     every step is also a line of metrics.jsonl)"
                ),
            ));
        }
        if self.0.len() > 1 && self.0.iter().any(|s| s == "none") {
            return Err(KeyError::new(
                "report_to",
                "\"none\" cannot be combined with a writer",
            ));
        }
        Ok(())
    }
}

/// CRC-32C (Castagnoli), reflected, as TensorFlow's `crc32c`.
fn crc32c(bytes: &[u8]) -> u32 {
    const POLY: u32 = 0x82F6_3B78;
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TensorFlow's masked CRC of a record's parts.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protocol-buffer field.
fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// An `Event` with `wall_time` (field 1), `step` (2) and one of `file_version` (3) or a
/// `summary` (5) of one scalar (`Summary.Value { tag = 1, simple_value = 2 }`).
fn event(wall_time: f64, step: i64, body: &EventBody<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(1 << 3 | 1); // field 1, 64-bit
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        varint(2 << 3, &mut out); // field 2, varint
        varint(step as u64, &mut out);
    }
    match body {
        EventBody::FileVersion => {
            bytes_field(3, b"brain.Event:2", &mut out);
            let mut source = Vec::new();
            bytes_field(1, b"mgrpo", &mut source);
            bytes_field(10, &source, &mut out);
        }
        EventBody::Scalar(tag, value) => {
            let mut v = Vec::new();
            bytes_field(1, tag.as_bytes(), &mut v);
            v.push(2 << 3 | 5); // field 2, 32-bit
            v.extend_from_slice(&value.to_le_bytes());
            let mut summary = Vec::new();
            bytes_field(1, &v, &mut summary);
            bytes_field(5, &summary, &mut out);
        }
    }
    out
}

enum EventBody<'a> {
    FileVersion,
    Scalar(&'a str, f32),
}

/// One record of the file: framing and CRCs around `data`.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The bytes of one scalar's record (what `SummaryWriter.add_scalar(tag, value, step,
/// walltime)` writes).
pub(crate) fn scalar_record(tag: &str, value: f32, step: i64, wall_time: f64) -> Vec<u8> {
    record(&event(wall_time, step, &EventBody::Scalar(tag, value)))
}

/// An event file being written.
pub(crate) struct EventWriter {
    file: File,
    path: PathBuf,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventWriter {
    /// A new event file in `dir` (created), named as TensorBoard's writers name theirs; a
    /// resumed run starts a new file beside the old ones, as transformers' does.
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let t = now();
        let path = dir.join(format!(
            "events.out.tfevents.{}.mgrpo.{}",
            t as u64,
            std::process::id()
        ));
        let mut file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        file.write_all(&record(&event(t, 0, &EventBody::FileVersion)))
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self { file, path })
    }

    /// One step's scalars, `train/<name>` each (NaN and infinite values are left out), flushed.
    pub(crate) fn scalars(&mut self, step: usize, values: &[(String, f64)]) -> Result<()> {
        let t = now();
        let mut out = Vec::new();
        for (name, v) in values.iter().filter(|(_, v)| v.is_finite()) {
            out.extend(scalar_record(
                &format!("train/{name}"),
                *v as f32,
                step as i64,
                t,
            ));
        }
        self.file
            .write_all(&out)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// The numbers of a metrics line, by key (but `step`): what [`EventWriter::scalars`] logs.
pub(crate) fn numbers(line: &serde_json::Value) -> Vec<(String, f64)> {
    line.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| *k != "step")
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32C's check value ("123456789" → 0xE3069283).
    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    /// Two scalars byte for byte as PyTorch's `SummaryWriter` wrote them
    /// (`scripts/make_tensorboard_fixture.py`).
    #[test]
    fn scalar_records_are_pytorchs() {
        let path = crate::test_repo().join("tests/fixtures/tensorboard/scalars.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let hex = v["scalar_records_hex"].as_str().unwrap();
        let mut ours = Vec::new();
        for s in v["scalars"].as_array().unwrap() {
            ours.extend(scalar_record(
                s["tag"].as_str().unwrap(),
                s["value"].as_f64().unwrap() as f32,
                s["step"].as_i64().unwrap(),
                s["walltime"].as_f64().unwrap(),
            ));
        }
        let ours: String = ours.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ours, hex);
    }
}
