//! `report_to = "tensorboard"` (TRL's key): a run writes an event file under `RUN/runs/` whose
//! records are well framed (lengths and masked CRC-32Cs check out) and hold, for every step,
//! each metric of `metrics.jsonl` as the scalar `train/<metric>`. The record bytes themselves
//! are PyTorch's (`metrics::tensorboard`'s unit test).

mod common;

use common::{fails, jsonl, run_config};

const CONFIG: &str = "configs/copy-grpo.toml";

fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xA282_EAD8)
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let x = b[*at];
        *at += 1;
        v |= ((x & 0x7f) as u64) << shift;
        if x < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// The protocol-buffer fields of `b`: (field, wire type, bytes or value).
fn fields(b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let key = varint(b, &mut at);
        let value = match key & 7 {
            0 => varint(b, &mut at).to_le_bytes().to_vec(),
            1 => {
                at += 8;
                b[at - 8..at].to_vec()
            }
            2 => {
                let n = varint(b, &mut at) as usize;
                at += n;
                b[at - n..at].to_vec()
            }
            5 => {
                at += 4;
                b[at - 4..at].to_vec()
            }
            w => panic!("wire type {w}"),
        };
        out.push((key >> 3, value));
    }
    out
}

/// Every (step, tag, value) of the file's scalar events, checking each record's framing.
fn scalars(data: &[u8]) -> Vec<(u64, String, f32)> {
    let mut out = Vec::new();
    let (mut at, mut records) = (0, 0);
    while at < data.len() {
        let len = &data[at..at + 8];
        let n = u64::from_le_bytes(len.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap());
        assert_eq!(crc, masked(len), "length CRC of record {records}");
        let body = &data[at + 12..at + 12 + n];
        let crc = u32::from_le_bytes(data[at + 12 + n..at + 16 + n].try_into().unwrap());
        assert_eq!(crc, masked(body), "data CRC of record {records}");
        at += 16 + n;
        records += 1;
        let event = fields(body);
        let step = event
            .iter()
            .find(|(f, _)| *f == 2)
            .map_or(0, |(_, v)| u64::from_le_bytes(v[..8].try_into().unwrap()));
        if records == 1 {
            let version = event.iter().find(|(f, _)| *f == 3).unwrap();
            assert_eq!(version.1, b"brain.Event:2");
            continue;
        }
        let (_, summary) = event.iter().find(|(f, _)| *f == 5).unwrap();
        for (_, value) in fields(summary) {
            let v = fields(&value);
            let tag = String::from_utf8(v[0].1.clone()).unwrap();
            let x = f32::from_le_bytes(v[1].1[..4].try_into().unwrap());
            out.push((step, tag, x));
        }
    }
    out
}

#[test]
fn a_run_reports_its_metrics_to_tensorboard() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_config(
        "train",
        CONFIG,
        &run,
        &["--set", "max_steps=3", "--set", "report_to=\"tensorboard\""],
    );
    let files: Vec<_> = std::fs::read_dir(run.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let got = scalars(&std::fs::read(&files[0]).unwrap());
    let metrics = jsonl(&run.join("metrics.jsonl"));
    assert_eq!(metrics.len(), 3);
    for m in &metrics {
        let step = m["step"].as_u64().unwrap();
        for (key, want) in m.as_object().unwrap() {
            let Some(want) = want.as_f64().filter(|_| key != "step") else {
                continue;
            };
            let tag = format!("train/{key}");
            let hit = got.iter().find(|(s, t, _)| *s == step && *t == tag);
            let Some((_, _, value)) = hit else {
                panic!("step {step}: no {tag}")
            };
            assert_eq!(*value, want as f32, "step {step} {tag}");
        }
    }
    // TRL's other values: a list, "none" (off), "all" (every writer mgrpo has); others refused
    let other = tmp.path().join("other");
    let other_s = other.to_str().unwrap();
    let e = fails(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        other_s,
        "--set",
        "report_to=\"wandb\"",
    ]);
    assert!(e.contains("report_to") && e.contains("wandb"), "{e}");
    assert!(!other.exists());
}
