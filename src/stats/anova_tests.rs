use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// 2 seeds × 3 problems × 2 samples, by hand. Cell means: seed 0 [1, ½, 0], seed 1 [1, 1, ½];
/// grand mean ⅔; seed means ½, ⅚; problem means 1, ¾, ¼. MS_seeds = 3·2·(⅙)² = ⅙,
/// MS_problems = 2·(⅓² + (1/12)² + (5/12)²)/2 = 7/24, the interaction residuals ±⅙, ±1/12,
/// ±1/12 give MS_interaction = 2·(1/36 + 2/144)/2 = 1/24, and the two split cells give
/// MS_within = 4·¼/6 = ⅙. Var(mean) = (⅙ + 7/24 − 1/24)/6 = 5/72; Satterthwaite's df =
/// (10/24)² / ((4/24)²/1 + (7/24)²/2 + (1/24)²/2) = 100/41. Components: σ²p = (7/24 − 1/24)/2
/// = ⅛, σ²s = (⅙ − 1/24)/3 = 1/24, σ²i = max(0, 1/24 − ⅙/2) = 0, σ²w = ⅙.
#[test]
fn two_way_anova_by_hand() {
    let y = [
        [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]],
        [[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]],
    ];
    let panel = Panel::from_fn(2, 3, 2, |s, p, r| y[s][p][r]).unwrap();
    let e = estimate(&panel).unwrap();
    assert!(close(e.mean, 2.0 / 3.0, 1e-12));
    assert!(close(e.se * e.se, 5.0 / 72.0, 1e-12), "{e:?}");
    assert!(close(e.df, 100.0 / 41.0, 1e-9), "{e:?}");
    let c = e.components;
    assert!(close(c.problem, 1.0 / 8.0, 1e-12), "{c:?}");
    assert!(close(c.seed, 1.0 / 24.0, 1e-12), "{c:?}");
    assert_eq!(c.interaction, 0.0);
    assert!(close(c.within.unwrap(), 1.0 / 6.0, 1e-12), "{c:?}");
    // t(0.975, 100/41 = 2.44) lies between t(3) = 3.18 and t(2) = 4.30
    let ci = e.interval(0.95);
    let half = (ci.hi - ci.lo) / 2.0;
    assert!(half / e.se > 3.5 && half / e.se < 3.9, "{ci:?}");
}

/// With one seed the interval is the one-sample t interval over problems: 10 problems, 4
/// right: mean 0.4, sd² = 10·0.24/9, se = √(0.24/9), t(0.975, 9) = 2.2622.
#[test]
fn one_seed_is_the_paired_t_interval() {
    let panel = Panel::from_fn(1, 10, 1, |_, p, _| f64::from(p < 4)).unwrap();
    let e = estimate(&panel).unwrap();
    assert!(close(e.se, (0.24f64 / 9.0).sqrt(), 1e-12));
    assert!(close(e.df, 9.0, 1e-9));
    let ci = e.interval(0.95);
    assert!(close(ci.hi - 0.4, 2.262_157 * e.se, 1e-5), "{ci:?}");
    assert!(e
        .projected(Design {
            seeds: 1,
            problems: 10,
            samples: 4
        })
        .is_none());
    assert_eq!(e.samples_needed(0.1, 0.05, 0.8, 64), None);
}

/// Seeds that disagree while every problem of a seed agrees: the seed margin is all there is,
/// df = S − 1 and the interval is the t interval of the seed means (0.1 … 0.5: sd 0.158,
/// se 0.0707, t(0.975, 4) = 2.776).
#[test]
fn seed_dominated_data_get_the_seed_degrees_of_freedom() {
    let panel = Panel::from_fn(5, 100, 1, |s, _, _| (s + 1) as f64 / 10.0).unwrap();
    let e = estimate(&panel).unwrap();
    assert!(close(e.df, 4.0, 1e-9), "{e:?}");
    assert!(close(e.se, 0.025f64.sqrt() / 5f64.sqrt(), 1e-12), "{e:?}");
    let ci = e.interval(0.95);
    assert!(close(ci.hi - 0.3, 2.776_445 * e.se, 1e-5), "{ci:?}");
}

#[test]
fn constant_values_give_a_point_interval_and_exact_p_values() {
    let panel = Panel::from_fn(3, 40, 2, |_, _, _| 0.25).unwrap();
    let e = estimate(&panel).unwrap();
    let ci = e.interval(0.95);
    assert_eq!((ci.mean, ci.lo, ci.hi), (0.25, 0.25, 0.25));
    assert_eq!(e.p_value(0.25), 1.0);
    assert_eq!(e.p_value(0.0), 0.0);
    assert!(estimate(&Panel::from_fn(1, 1, 1, |_, _, _| 1.0).unwrap()).is_err());
}

/// The p-value and the interval agree: the 95 % interval's limit is where p = 0.05.
#[test]
fn p_values_match_the_interval() {
    let panel = Panel::from_fn(5, 200, 1, |s, p, _| {
        f64::from((p * 7 + s * 3) % 10 < 3 + s % 2)
    })
    .unwrap();
    let e = estimate(&panel).unwrap();
    let ci = e.interval(0.95);
    assert!(close(e.p_value(ci.lo), 0.05, 1e-6), "{}", e.p_value(ci.lo));
    assert!(close(e.p_value(ci.hi), 0.05, 1e-6));
    assert!(e.p_value(e.mean) > 0.999);
}

/// Power: the minimal detectable effect is (t(0.975) + t(0.8)) · se, falls as seeds or
/// samples are added, and the counts found detect the effect asked for.
#[test]
fn power_and_projections() {
    // seed effects ±0.05 and a within-cell coin: samples and seeds both help
    let panel = Panel::from_fn(5, 300, 4, |s, p, r| {
        let seed = [0.0, 0.05, -0.05, 0.03, -0.03][s];
        f64::from(((p * 31 + r * 17 + s * 7) % 100) as f64 / 100.0 < 0.4 + seed)
    })
    .unwrap();
    let e = estimate(&panel).unwrap();
    let mde = e.minimal_detectable(0.05, 0.8);
    assert!(close(
        mde,
        (t_quantile(0.975, e.df) + t_quantile(0.8, e.df)) * e.se,
        1e-12
    ));
    let at = |seeds, samples| {
        e.projected(Design {
            seeds,
            problems: 300,
            samples,
        })
        .unwrap()
        .0
    };
    assert!(at(10, 4) < at(5, 4) && at(5, 8) < at(5, 4) && at(5, 1) > at(5, 4));
    let target = mde * 0.8;
    let seeds = e.seeds_needed(target, 0.05, 0.8, 200).unwrap();
    assert!(seeds > 5, "{seeds}");
    let (se, df) = e.projected(Design { seeds, ..e.design }).unwrap();
    assert!(Estimate::detectable(se, df, 0.05, 0.8) <= target);
    let (se, df) = e
        .projected(Design {
            seeds: seeds - 1,
            ..e.design
        })
        .unwrap();
    assert!(Estimate::detectable(se, df, 0.05, 0.8) > target);
}

/// Five seeds whose means agree to the last digit (every seed 40 % right, on different
/// problems) still leave the interaction's share of the variance: the seed mean square is
/// taken at its 2.5 % quantile under no seed effect, χ²(4; 0.025)/4 = 0.121 of MS_interaction.
#[test]
fn identical_seed_means_do_not_erase_the_interval() {
    let panel = Panel::from_fn(5, 200, 1, |s, p, _| f64::from((p * 7 + s * 3) % 10 < 4)).unwrap();
    let e = estimate(&panel).unwrap();
    assert!(e.se > 0.0 && e.df >= 4.0, "{e:?}");
    let ci = e.interval(0.95);
    assert!(ci.lo < 0.4 && ci.hi > 0.4);
}

/// An assumed sampling share splits a one-sample residual for projections and leaves the
/// interval alone; data with several samples keep their own split.
#[test]
fn an_assumed_sampling_share_fills_the_sample_projection() {
    let panel = Panel::from_fn(5, 200, 1, |s, p, _| {
        f64::from((p * 7 + s * 3) % 10 < 3 + s % 2)
    })
    .unwrap();
    let e = estimate(&panel).unwrap();
    assert_eq!(e.samples_needed(0.05, 0.05, 0.8, 64), None);
    let split = e.with_within_share(0.75);
    assert_eq!((split.se, split.df), (e.se, e.df));
    let c = split.components;
    assert!(close(
        c.within.unwrap(),
        0.75 * e.components.interaction,
        1e-15
    ));
    assert!(close(c.interaction, 0.25 * e.components.interaction, 1e-15));
    assert!(close(split.within_share().unwrap(), 0.75, 1e-12));
    let more = split
        .projected(Design {
            samples: 4,
            ..e.design
        })
        .unwrap()
        .0;
    assert!(more < e.se);
    let y = [
        [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]],
        [[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]],
    ];
    let two = estimate(&Panel::from_fn(2, 3, 2, |s, p, r| y[s][p][r]).unwrap()).unwrap();
    assert_eq!(two.with_within_share(0.1), two);
}
