//! Tests of `config.rs`: TOML keys, `--set` overrides, defaults and errors naming the key.

use super::*;
use crate::rl::schedule::SchedulerType;

fn load(text: &str, sets: &[&str]) -> Result<TrainConfig> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    TrainConfig::from_toml(text, Path::new("run.toml"), &sets)
}

#[test]
fn defaults_and_overrides() {
    let c = load(
        "dataset = \"d.jsonl\"\nloss_type = \"grpo\"\n",
        &["beta=0.04", "model=some/dir", "lr_scheduler_type=cosine"],
    )
    .unwrap();
    assert_eq!(c.loss_type, LossType::Grpo);
    assert_eq!(c.beta, 0.04);
    assert_eq!(c.model, PathBuf::from("some/dir"));
    assert_eq!(c.optim.lr_scheduler_type, SchedulerType::Cosine);
    assert_eq!(c.epsilon_high(), 0.2);
    assert_eq!(c.prompts_per_step(), 1);
    // an empty eval_dataset switches evaluation off (`--set` cannot unset a key)
    let c = load(
        "dataset = \"d\"\neval_dataset = \"t.jsonl\"\n",
        &["eval_dataset="],
    )
    .unwrap();
    assert_eq!(c.eval_dataset, None);
    // an evaluation turn gets the larger completion budget unless told otherwise
    let c = load(
        "dataset = \"d\"\nmax_completion_length = 64\n[mgrpo]\nlayer2_max_completion_length = 192\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.eval_max_new_tokens(), 192);
    let c = load(
        "dataset = \"d\"\nmax_completion_length = 64\n",
        &["igrpo.refine_max_completion_length=200"],
    )
    .unwrap();
    assert_eq!(c.eval_max_new_tokens(), 200);
    let c = load("dataset = \"d\"\nmax_completion_length = 64\n", &[]).unwrap();
    assert_eq!(c.eval_max_new_tokens(), 64);
    let c = load("dataset = \"d\"\n", &["eval_max_new_tokens=100"]).unwrap();
    assert_eq!(c.eval_max_new_tokens(), 100);
    let c = load(
        "dataset = \"d\"\n[reward.policy]\npercent = \"ignore\"\n",
        &[
            "reward.funcs=[\"accuracy\", \"format\"]",
            "reward.weights=[1.0, 0.5]",
            "reward.policy.ordered_lists=true",
            "mgrpo.augment_h=6",
            "learning_rate=3e-4",
            "kl_coef=0.1",
            "normalize_advantages=true",
        ],
    )
    .unwrap();
    assert_eq!(c.reward.weights, Some(vec![1.0, 0.5]));
    assert!(c.reward.policy.ordered_lists);
    assert_eq!(c.methods.mgrpo.augment_h, 6);
    assert_eq!(c.optim.learning_rate, 3e-4);
    assert_eq!(c.methods.ppo.kl_coef, 0.1);
    assert!(c.methods.rloo.normalize_advantages);
    assert_eq!(
        c.reward.policy.percent,
        crate::verify::PercentPolicy::Ignore
    );
    // the resolved config reads back to the same thing
    let again = load(&c.to_toml().unwrap(), &[]).unwrap();
    assert_eq!(again, c);
}

#[test]
fn errors_name_the_key() {
    for (text, sets, needle) in [
        (
            "dataset = \"d\"\nnum_generaitons = 4\n",
            &[][..],
            "num_generaitons",
        ),
        ("dataset = \"d\"\n", &["bogus_key=1"][..], "bogus_key"),
        ("dataset = \"d\"\nbeta = \"high\"\n", &[][..], "beta"),
        (
            "dataset = \"d\"\nnum_generations = 3\n",
            &[][..],
            "num_generations",
        ),
        ("dataset = \"d\"\nloss_type = \"ppo\"\n", &[][..], "ppo"),
        ("dataset = \"d\"\nepsilon = 0\n", &[][..], "epsilon"),
        (
            "dataset = \"d\"\neval_max_new_tokens = 0\n",
            &[][..],
            "eval_max_new_tokens",
        ),
        ("num_generations = 4\n", &[][..], "dataset"),
        (
            "dataset = \"d\"\n[reward]\nformat_wieght = 1\n",
            &[][..],
            "format_wieght",
        ),
        (
            "dataset = \"d\"\n[reward]\nturn2_graded_on = \"whole\"\n",
            &[][..],
            "turn2_graded_on",
        ),
        // the flat sections (optimizer, PPO, RLOO) name their key too
        (
            "dataset = \"d\"\nwarmup_steps = \"x\"\n",
            &[][..],
            "warmup_steps",
        ),
        ("dataset = \"d\"\nkl_coef = \"x\"\n", &[][..], "kl_coef"),
        (
            "dataset = \"d\"\nlearning_rate = 0\n",
            &[][..],
            "learning_rate",
        ),
        (
            "dataset = \"d\"\nreward_clip_range = [1.0, 0.0]\n",
            &["algorithm=rloo"][..],
            "reward_clip_range",
        ),
        // a method's table refuses unknown keys, and names the table
        (
            "dataset = \"d\"\n[mgrpo]\naugment = 4\n",
            &[][..],
            "[mgrpo] unknown field `augment`",
        ),
        (
            "dataset = \"d\"\n",
            &["igrpo.num_drafts=0"][..],
            "igrpo.num_drafts",
        ),
        (
            "dataset = \"d\"\nalgorithm = \"mgrpo\"\n[mgrpo]\naugment_h = 1\n",
            &[][..],
            "mgrpo.augment_h",
        ),
        // keys that moved into a table point to their new place
        (
            "dataset = \"d\"\naugment_h = 4\n",
            &[][..],
            "`augment_h`: it moved to [mgrpo] augment_h",
        ),
        (
            "dataset = \"d\"\n",
            &["layer2_max_completion_length=8"][..],
            "[igrpo] refine_max_completion_length",
        ),
        (
            "dataset = \"d\"\nigrpo_num_drafts = 2\n",
            &[][..],
            "[igrpo] num_drafts",
        ),
        // RLOO's loss is fixed
        (
            "dataset = \"d\"\nalgorithm = \"rloo\"\nloss_type = \"grpo\"\n",
            &[][..],
            "loss_type",
        ),
    ] {
        let e = load(text, sets).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} should name {needle}");
        assert!(e.starts_with("run.toml"), "{e:?} should name the file");
    }
}

/// `steps_per_generation` / `generation_batch_size` (TRL's pair): how many micro-batches one
/// rollout feeds, and so how many completions it samples and how many updates it makes.
#[test]
fn steps_per_generation_and_generation_batch_size() {
    let base = "dataset = \"d\"\nper_device_train_batch_size = 8\ngradient_accumulation_steps = 2\nnum_generations = 4\n";
    let c = load(base, &[]).unwrap();
    assert_eq!(
        c.steps_per_generation(),
        2,
        "default: one optimizer step's worth"
    );
    assert_eq!((c.completions_per_step(), c.prompts_per_step()), (16, 4));
    assert_eq!(c.updates_per_step(), 1);
    let c = load(base, &["steps_per_generation=6", "num_iterations=2"]).unwrap();
    assert_eq!((c.completions_per_step(), c.prompts_per_step()), (48, 12));
    assert_eq!(
        (c.optimizer_steps_per_generation(), c.updates_per_step()),
        (3, 6)
    );
    // TRL's generation_batch_size = batch × devices × steps_per_generation
    let g = load(base, &["generation_batch_size=96", "num_devices=2"]).unwrap();
    assert_eq!(
        (g.steps_per_generation(), g.completions_per_step()),
        (6, 96)
    );
    let key = |sets: &[&str]| match load(base, sets).unwrap_err() {
        Error::ConfigKey { key, .. } => key,
        e => panic!("{e}"),
    };
    assert_eq!(
        key(&["generation_batch_size=32", "steps_per_generation=4"]),
        "generation_batch_size"
    );
    assert_eq!(key(&["generation_batch_size=12"]), "generation_batch_size");
    assert_eq!(key(&["generation_batch_size=8"]), "generation_batch_size");
    assert_eq!(key(&["steps_per_generation=3"]), "steps_per_generation");
    assert_eq!(key(&["steps_per_generation=0"]), "steps_per_generation");
}

/// PPO's keys: TRL's PPOConfig defaults, its optimizer steps per step, the reference only with
/// a KL penalty.
#[test]
fn ppo_keys_and_counts() {
    let c = load("dataset = \"d\"\nalgorithm = \"ppo\"\n", &[]).unwrap();
    assert_eq!(c.algorithm, Algorithm::Ppo);
    assert_eq!(
        (
            c.methods.ppo.kl_coef,
            c.methods.ppo.cliprange,
            c.methods.ppo.cliprange_value,
            c.methods.ppo.vf_coef
        ),
        (0.05, 0.2, 0.2, 0.1)
    );
    assert_eq!(
        (
            c.methods.ppo.gamma,
            c.methods.ppo.lam,
            c.methods.ppo.num_ppo_epochs,
            c.methods.ppo.num_mini_batches
        ),
        (1.0, 0.95, 4, 1)
    );
    assert!(c.needs_reference());
    assert_eq!(c.updates_per_step(), 4);
    assert_eq!(c.value_learning_rate(), c.optim.learning_rate);
    let c = load(
        "dataset = \"d\"\nalgorithm = \"ppo\"\nper_device_train_batch_size = 8\n",
        &[
            "num_mini_batches=4",
            "num_ppo_epochs=2",
            "kl_coef=0",
            "value_learning_rate=3e-6",
        ],
    )
    .unwrap();
    assert_eq!(c.updates_per_step(), 8);
    assert!(!c.needs_reference());
    assert_eq!(c.value_learning_rate(), 3e-6);
    // one completion per prompt: PPO's critic needs no group, GRPO's advantage does
    let one = "dataset = \"d\"\nnum_generations = 1\n";
    assert!(load(one, &["algorithm=ppo"]).is_ok());
    let e = load(one, &[]).unwrap_err().to_string();
    assert!(e.contains("num_generations") && e.contains("PPO"), "{e}");
    // GRPO's keys keep GRPO's meaning
    let g = load("dataset = \"d\"\nbeta = 0.04\nkl_coef = 0\n", &[]).unwrap();
    assert!(g.needs_reference());
    assert_eq!(g.updates_per_step(), 1);
}

/// TRL's `num_generations_eval` is our `eval_samples` (completions per evaluation problem);
/// setting both is refused, naming the key.
#[test]
fn num_generations_eval_is_eval_samples() {
    let c = TrainConfig::from_toml(
        "dataset = \"d\"\nnum_generations_eval = 4\n",
        Path::new("r.toml"),
        &[],
    )
    .unwrap();
    assert_eq!(c.eval_samples, 4);
    let e = TrainConfig::from_toml(
        "dataset = \"d\"\nnum_generations_eval = 4\neval_samples = 2\n",
        Path::new("r.toml"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("key `num_generations_eval`") && e.contains("eval_samples"),
        "{e}"
    );
    let e = TrainConfig::from_toml(
        "dataset = \"d\"\nnum_generations_eval = 0\n",
        Path::new("r.toml"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("eval_samples"), "{e}");
}
