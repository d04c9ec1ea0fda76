//! Checkpoints: what we save is what HF writes (key names, shapes, dtypes, `format=pt`
//! metadata, config), it reloads to the same numbers, and broken directories give one-line
//! errors naming the culprit. The Python side of the round trip is scripts/check_hf_roundtrip.py.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::NdArray;
use common::*;
use mgrpo::model::{load_model, save_model, ModelConfig, SaveDtype, SaveOptions};
use mgrpo::score::score_rows;
use safetensors::{Dtype, SafeTensors};

type B = NdArray<f32>;

/// name → (dtype, shape) of every tensor in a model directory, and each file's metadata.
type Inventory = BTreeMap<String, (Dtype, Vec<usize>)>;
type FileMetadata = Option<std::collections::HashMap<String, String>>;

fn inventory(dir: &Path) -> (Inventory, Vec<FileMetadata>) {
    let mut tensors = BTreeMap::new();
    let mut metas = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            let bytes = std::fs::read(&p).unwrap();
            let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
            metas.push(meta.metadata().clone());
            let st = SafeTensors::deserialize(&bytes).unwrap();
            for (k, v) in st.tensors() {
                tensors.insert(k, (v.dtype(), v.shape().to_vec()));
            }
        }
    }
    (tensors, metas)
}

fn save(
    name: &str,
    dtype: SaveDtype,
    max_shard_bytes: usize,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dev = Default::default();
    let (config, model) = load_model::<B>(&fixture(name), &dev).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("saved");
    let opts = SaveOptions {
        dtype,
        max_shard_bytes,
        side_files_from: Some(fixture(name)),
        overwrite: false,
    };
    save_model(&model, &config, &out, &opts).unwrap();
    (tmp, out)
}

#[test]
fn saved_layout_matches_hf() {
    for name in FIXTURES {
        let (orig, _) = inventory(&fixture(name));
        for (dtype, st_dtype) in [(SaveDtype::F32, Dtype::F32), (SaveDtype::Bf16, Dtype::BF16)] {
            let (_tmp, out) = save(name, dtype, 5_000_000_000);
            let (saved, metas) = inventory(&out);
            // Same keys and shapes as the HF-written original (tied models: no lm_head.weight).
            let names = |m: &BTreeMap<String, (Dtype, Vec<usize>)>| {
                m.iter()
                    .map(|(k, (_, s))| (k.clone(), s.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(&saved), names(&orig), "{name}");
            assert!(
                saved.values().all(|(d, _)| *d == st_dtype),
                "{name}: dtypes"
            );
            for m in metas {
                assert_eq!(
                    m.unwrap().get("format").map(String::as_str),
                    Some("pt"),
                    "{name}: format=pt metadata"
                );
            }
            let cfg: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                    .unwrap();
            // the family's own names, as the source had them
            let src_cfg: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(fixture(name).join("config.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(cfg["architectures"], src_cfg["architectures"], "{name}");
            assert_eq!(cfg["model_type"], src_cfg["model_type"], "{name}");
            assert_eq!(
                cfg["torch_dtype"],
                if dtype == SaveDtype::F32 {
                    "float32"
                } else {
                    "bfloat16"
                }
            );
            let reread = ModelConfig::load(&out.join("config.json")).unwrap();
            let original = ModelConfig::load(&fixture(name).join("config.json")).unwrap();
            assert_eq!(
                (
                    reread.rope_theta,
                    reread.tie_word_embeddings,
                    reread.num_key_value_heads
                ),
                (
                    original.rope_theta,
                    original.tie_word_embeddings,
                    original.num_key_value_heads
                )
            );
            assert_eq!(
                out.join("tokenizer.json").is_file(),
                fixture(name).join("tokenizer.json").is_file()
            );
        }
    }
}

#[test]
fn save_then_load_gives_same_logprobs() {
    let dev = Default::default();
    for name in FIXTURES {
        let rows: Vec<Vec<u32>> = id_rows(name).into_iter().map(|(i, _)| i).collect();
        let (_, model) = load_model::<B>(&fixture(name), &dev).unwrap();
        let before = score_rows(&model, &rows, 4, &dev).unwrap();
        // f32: bit-exact. Sharded (tiny shard size): the index is written and read back.
        for max_shard in [5_000_000_000, 20_000] {
            let (_tmp, out) = save(name, SaveDtype::F32, max_shard);
            assert_eq!(
                out.join("model.safetensors.index.json").is_file(),
                max_shard == 20_000,
                "{name}"
            );
            let (_, again) = load_model::<B>(&out, &dev).unwrap();
            assert_eq!(
                score_rows(&again, &rows, 4, &dev).unwrap(),
                before,
                "{name}"
            );
        }
        // bf16: rounding the weights moves log-probs a little, not a lot (transformers, the
        // same weights rounded to bf16 and run in f32: up to 0.100 on llama32-scaled-tied,
        // 0.074 on gqa2-tied, 0.045 on qwen3-headdim-tied).
        let (_tmp, out) = save(name, SaveDtype::Bf16, 5_000_000_000);
        let (_, again) = load_model::<B>(&out, &dev).unwrap();
        for (a, b) in score_rows(&again, &rows, 4, &dev)
            .unwrap()
            .iter()
            .zip(&before)
        {
            assert!(
                max_abs_diff(a, b) < 0.15,
                "{name}: bf16 round trip moved log-probs by {}",
                max_abs_diff(a, b)
            );
        }
    }
}

#[test]
fn save_refuses_to_clobber_and_overwrites_when_asked() {
    let dev = Default::default();
    let (config, model) = load_model::<B>(&fixture("gqa2-tied-f32-t4"), &dev).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let e = save_model(&model, &config, &out, &SaveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    assert!(out.join("keep.txt").is_file());
    let opts = SaveOptions {
        overwrite: true,
        ..SaveOptions::default()
    };
    save_model(&model, &config, &out, &opts).unwrap();
    assert!(out.join("model.safetensors").is_file() && !out.join("keep.txt").exists());
    // No temporary directories left behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

/// Load `dir` and return the error message (which must be one line).
fn load_err(dir: &Path) -> String {
    let e = load_model::<B>(dir, &Default::default())
        .expect_err("loading should fail")
        .to_string();
    assert!(!e.contains('\n'), "multi-line error: {e}");
    e
}

fn rewrite_config(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(p, v.to_string()).unwrap();
}

#[test]
fn broken_directories_name_the_culprit() {
    // Missing shard.
    let (_t, d) = copy_fixture("mha-untied-f16-sharded");
    std::fs::remove_file(d.join("model-00002-of-00003.safetensors")).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("model-00002-of-00003.safetensors") && e.contains("missing shard"),
        "{e}"
    );

    // Corrupt file (truncated).
    let (_t, d) = copy_fixture("gqa2-tied-f32-t4");
    let p = d.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );

    // Garbage header.
    std::fs::write(&p, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").unwrap();
    let e = load_err(&d);
    assert!(e.contains("model.safetensors"), "{e}");

    // Wrong shape: the config says a different hidden size than the weights have.
    let (_t, d) = copy_fixture("gqa2-tied-f32-t4");
    rewrite_config(&d, |c| {
        c.insert("intermediate_size".into(), 161.into());
    });
    let e = load_err(&d);
    assert!(
        e.contains("gate_proj.weight") && e.contains("[160, 64]") && e.contains("[161, 64]"),
        "{e}"
    );

    // Missing tensor: untied config on tied weights.
    let (_t, d) = copy_fixture("gqa2-tied-f32-t4");
    rewrite_config(&d, |c| {
        c.insert("tie_word_embeddings".into(), false.into());
    });
    let e = load_err(&d);
    assert!(
        e.contains("missing tensor `lm_head.weight`") && e.contains("model.safetensors"),
        "{e}"
    );

    // Extra tensors: one layer fewer in the config than in the file.
    let (_t, d) = copy_fixture("gqa2-tied-f32-t4");
    rewrite_config(&d, |c| {
        c.insert("num_hidden_layers".into(), 1.into());
    });
    let e = load_err(&d);
    assert!(e.contains("unexpected tensor `model.layers.1."), "{e}");

    // Missing config field, missing config.json, sliding window, no weights at all.
    let (_t, d) = copy_fixture("gqa2-tied-f32-t4");
    rewrite_config(&d, |c| {
        c.remove("num_attention_heads");
    });
    let e = load_err(&d);
    assert!(
        e.contains("config.json") && e.contains("`num_attention_heads`"),
        "{e}"
    );
    rewrite_config(&d, |c| {
        c.insert("num_attention_heads".into(), 4.into());
        c.insert("use_sliding_window".into(), true.into());
    });
    let e = load_err(&d);
    assert!(e.contains("use_sliding_window"), "{e}");
    std::fs::remove_file(d.join("config.json")).unwrap();
    let e = load_err(&d);
    assert!(e.contains("config.json") && e.contains("missing"), "{e}");
    let (_t, d) = copy_fixture("gqa2-tied-f32-t4");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    let e = load_err(&d);
    assert!(e.contains("no model.safetensors"), "{e}");

    // An index that points a tensor at the wrong shard.
    let (_t, d) = copy_fixture("mha-untied-f16-sharded");
    let p = d.join("model.safetensors.index.json");
    let mut idx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let wm = idx["weight_map"].as_object_mut().unwrap();
    let key = wm
        .iter()
        .find(|(_, v)| *v == "model-00001-of-00003.safetensors")
        .unwrap()
        .0
        .clone();
    wm.insert(key.clone(), "model-00002-of-00003.safetensors".into());
    std::fs::write(&p, idx.to_string()).unwrap();
    let e = load_err(&d);
    assert!(e.contains(&key), "{e}");
}
