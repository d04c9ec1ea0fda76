//! What every method hands the update stage: its parts, each with its weight and budget.

use super::*;
use crate::rl::advantage::Advantages;

fn group() -> Group {
    Group {
        rollout: Rollout {
            prompts: Vec::new(),
            completions: Vec::new(),
            rewards: Vec::new(),
            stats: Default::default(),
        },
        adv: Advantages {
            values: Vec::new(),
            reward_mean: 0.0,
            reward_std: 0.0,
            frac_zero_std: 0.0,
            zero_std_groups: 0,
        },
        experience: Experience::default(),
    }
}

fn budgets(c: &Collected) -> Vec<(f32, usize)> {
    c.parts()
        .iter()
        .map(|p| (p.weight, p.max_completion_length))
        .collect()
}

/// Each part carries the budget its completions were sampled with (dr_grpo's constant):
/// layer 1's for GRPO and MGRPO's first layer, the correction budget for MGRPO's layer 2, the
/// refinement budget for iGRPO's trained group (its refinements).
#[test]
fn each_part_has_the_budget_of_its_layer() {
    assert_eq!(budgets(&Collected::single(group(), 64)), vec![(1.0, 64)]);
    let mut mgrpo = Collected::single(group(), 64);
    mgrpo.second = Some(Second {
        experience: Experience::default(),
        weight: 0.5,
        budget: 24,
        log: None,
    });
    mgrpo.stats = MethodStats::Mgrpo(mgrpo::Stats::default());
    assert_eq!(budgets(&mgrpo), vec![(1.0, 64), (0.5, 24)]);
    // the update's per-part losses land in MGRPO's metrics
    mgrpo.record_update(&[0.1, 0.7], None);
    match mgrpo.stats {
        MethodStats::Mgrpo(s) => assert_eq!(s.loss, Some(0.7)),
        _ => panic!("MGRPO's stats"),
    }
    // the budgets the sections give each method
    let mut sections = Sections::default();
    sections.mgrpo.layer2_max_completion_length = Some(24);
    sections.igrpo.refine_max_completion_length = Some(32);
    let budget = |a| sections.second_turn(a, 64).map(|(_, b)| b);
    assert_eq!(budget(Algorithm::Mgrpo), Some(24));
    assert_eq!(budget(Algorithm::Igrpo), Some(32));
    assert_eq!(budget(Algorithm::Grpo), None);
    assert_eq!(sections.second_budget(64), 32);
    assert_eq!(Sections::default().second_budget(64), 64);
}

/// A method's metrics read back as the same method (`metrics.jsonl` round trip), and a plain
/// line as no method.
#[test]
fn method_stats_round_trip() {
    for stats in [
        MethodStats::Mgrpo(mgrpo::Stats {
            loss: Some(0.5),
            ..Default::default()
        }),
        MethodStats::Igrpo(igrpo::Stats {
            draft_reward: 0.25,
            best_draft_reward: 0.5,
        }),
        MethodStats::Ppo(ppo::PpoStats::default()),
        MethodStats::Plain {},
    ] {
        let line = serde_json::to_string(&stats).unwrap();
        let back: MethodStats = serde_json::from_str(&line).unwrap();
        assert_eq!(back, stats, "{line}");
    }
    let plain: MethodStats = serde_json::from_str("{\"reward\": 1.0}").unwrap();
    assert_eq!(plain, MethodStats::Plain {});
}
