//! The Markdown of `mgrpo table2`: the cells, the claims with their verdicts and power, and a
//! run's before/after comparison.

use super::{panel, Results, Scope};
use crate::error::Result;
use crate::eval::verdicts::{Metric, Verdicts};
use crate::stats::family::holm;
use crate::stats::{estimate, Estimate, Interval, Panel};

fn cell(ci: Interval) -> String {
    let ci = ci.scaled(100.0);
    format!("{:.1} [{:.1}, {:.1}]", ci.mean, ci.lo, ci.hi)
}

/// Mean ± sample standard deviation of wall times, "–" for none.
fn wall(walls: &[f64]) -> String {
    match walls.len() {
        0 => "–".to_string(),
        1 => format!("{:.0}", walls[0]),
        n => {
            let mean = walls.iter().sum::<f64>() / n as f64;
            let var = walls.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            format!("{mean:.0} ± {:.0}", var.sqrt())
        }
    }
}

/// The table over the problems of `scope`: one row per method, each cell the mean over seeds,
/// problems and samples in percent with its 95 % interval, and the wall time's mean ± sd.
pub fn table(results: &Results, scope: &Scope) -> Result<String> {
    let mut out = String::from(
        "| Method | seeds | samples | Acc@t1 | Acc@t2 | Δ(t1,t2) | Δi→c | Δc→i | wall time (s) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &results.rows {
        let seeds: Vec<u64> = row.seeds.iter().map(|s| s.seed).collect();
        let mut cells = Vec::new();
        let mut samples = 1;
        for m in Metric::ALL {
            let p = panel(row, m, &seeds, scope)?;
            samples = p.samples;
            cells.push(cell(estimate(&p)?.interval(0.95).clipped(m.range())));
        }
        let walls: Vec<f64> = row.seeds.iter().filter_map(|s| s.wall_s).collect();
        out.push_str(&format!(
            "| {} | {} | {samples} | {} | {} |\n",
            row.label,
            seeds.len(),
            cells.join(" | "),
            wall(&walls)
        ));
    }
    Ok(out)
}

/// Which side of `threshold` a claim puts its quantity on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sense {
    Above(f64),
    Below(f64),
}

impl Sense {
    fn threshold(self) -> f64 {
        match self {
            Sense::Above(t) | Sense::Below(t) => t,
        }
    }
}

/// A claim as a paired quantity: `a`, or `a − b`, against a threshold. Primary claims (the
/// paper's, named before any data) are tested as a family with Holm's correction; the others
/// are exploratory.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub text: &'static str,
    pub a: (&'static str, Metric),
    pub b: Option<(&'static str, Metric)>,
    pub sense: Sense,
    pub primary: bool,
}

/// The claims the laptop experiment tests: the MGRPO paper's (primary: claim 1 in its three
/// parts, claim 2, claim 3 as the paper asks it) and the baselines' premises (exploratory).
pub const CLAIMS: &[Claim] = &[
    Claim {
        text: "1. MGRPO corrects: Δi→c(MGRPO) − Δi→c(start) > 0",
        a: ("mgrpo", Metric::IToC),
        b: Some(("start", Metric::IToC)),
        sense: Sense::Above(0.0),
        primary: true,
    },
    Claim {
        text: "1. MGRPO corrects: Δ(t1,t2)(MGRPO) > 0",
        a: ("mgrpo", Metric::Delta),
        b: None,
        sense: Sense::Above(0.0),
        primary: true,
    },
    Claim {
        text: "1. MGRPO corrects: Δc→i(MGRPO) < 1 %",
        a: ("mgrpo", Metric::CToI),
        b: None,
        sense: Sense::Below(0.01),
        primary: true,
    },
    Claim {
        text: "2. MGRPO beats GRPO: Acc@t2(MGRPO) − Acc@t1(GRPO) > 0",
        a: ("mgrpo", Metric::AccT2),
        b: Some(("grpo", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: true,
    },
    Claim {
        text: "3. Intrinsic self-correction hurts: Δ(t1,t2)(intrinsic) < 0",
        a: ("intrinsic", Metric::Delta),
        b: None,
        sense: Sense::Below(0.0),
        primary: true,
    },
    Claim {
        text: "MGRPO beats GRPO at MGRPO's questions per step: Acc@t2(MGRPO) − Acc@t1(GRPO-8q) > 0",
        a: ("mgrpo", Metric::AccT2),
        b: Some(("grpo-8q", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "Turn 1 at matched questions per step: Acc@t1(MGRPO) − Acc@t1(GRPO-8q) > 0",
        a: ("mgrpo", Metric::AccT1),
        b: Some(("grpo-8q", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "Correction generalises to turn 1: Acc@t1(MGRPO) − Acc@t1(GRPO) > 0",
        a: ("mgrpo", Metric::AccT1),
        b: Some(("grpo", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "Intrinsic, instruction inside the assistant turn: Δ(t1,t2) < 0",
        a: ("intrinsic-in-turn", Metric::Delta),
        b: None,
        sense: Sense::Below(0.0),
        primary: false,
    },
    Claim {
        text: "MGRPO raises Acc@t2: Acc@t2(MGRPO) − Acc@t2(start) > 0",
        a: ("mgrpo", Metric::AccT2),
        b: Some(("start", Metric::AccT2)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "GRPO raises Acc@t1: Acc@t1(GRPO) − Acc@t1(start) > 0",
        a: ("grpo", Metric::AccT1),
        b: Some(("start", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "Positive control: Acc@t1(GRPO) − Acc@t1(start) > 8 points",
        a: ("grpo", Metric::AccT1),
        b: Some(("start", Metric::AccT1)),
        sense: Sense::Above(0.08),
        primary: false,
    },
    Claim {
        text: "Random-reward control: Acc@t1(GRPO, random reward) − Acc@t1(start) > 0",
        a: ("grpo-random", Metric::AccT1),
        b: Some(("start", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "The reward teaches: Acc@t1(GRPO) − Acc@t1(GRPO, random reward) > 0",
        a: ("grpo", Metric::AccT1),
        b: Some(("grpo-random", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "MGRPO lifts turn 1: Acc@t1(MGRPO) − Acc@t1(start) > 0",
        a: ("mgrpo", Metric::AccT1),
        b: Some(("start", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
    Claim {
        text: "iGRPO beats GRPO: Acc@t1(iGRPO) − Acc@t1(GRPO) > 0",
        a: ("igrpo", Metric::AccT1),
        b: Some(("grpo", Metric::AccT1)),
        sense: Sense::Above(0.0),
        primary: false,
    },
];

/// A claim's directional verdict: its null rejected (`rejected`) with the estimate on the
/// claimed side of the threshold ("holds"), on the other side ("the opposite holds"), or not
/// rejected ("not established").
pub fn verdict(rejected: bool, estimate: f64, sense: Sense) -> &'static str {
    let claimed_side = match sense {
        Sense::Above(t) => estimate > t,
        Sense::Below(t) => estimate < t,
    };
    match (rejected, claimed_side) {
        (false, _) => "not established",
        (true, true) => "holds",
        (true, false) => "the opposite holds",
    }
}

/// How the claims are judged and sized.
#[derive(Debug, Clone)]
pub struct ClaimOptions {
    /// The family's error rate (two-sided tests).
    pub alpha: f64,
    /// The power the detectable effects and the seed/sample counts are sized for.
    pub power: f64,
    /// The effect size of interest as a fraction (the paper's MGRPO-over-GRPO gain: 0.03).
    pub effect: f64,
    /// Apply Holm's correction over the primary claims (off in per-group tables, which are
    /// exploratory as a whole).
    pub correct: bool,
    /// For claims measured with one sample per problem: the share of their residual taken as
    /// sampling noise when projecting more samples (measured on a multi-sample evaluation,
    /// `--components`); `None` leaves the samples column empty.
    pub within_share: Option<f64>,
    /// Other designs to size each claim for: the effect detectable there (the components
    /// estimated here, projected).
    pub plans: Vec<crate::stats::Design>,
}

impl Default for ClaimOptions {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            power: 0.8,
            effect: 0.03,
            correct: true,
            within_share: None,
            plans: Vec::new(),
        }
    }
}

/// One claim's paired panel over the seeds both rows have, if its rows are present.
fn claim_panel(results: &Results, c: &Claim, scope: &Scope) -> Result<Option<Panel>> {
    let Some(ra) = results.row(c.a.0) else {
        return Ok(None);
    };
    let rb = match c.b {
        Some((key, _)) => match results.row(key) {
            Some(r) => Some(r),
            None => return Ok(None),
        },
        None => None,
    };
    let seeds: Vec<u64> = ra
        .seeds
        .iter()
        .map(|s| s.seed)
        .filter(|s| rb.is_none_or(|rb| rb.seeds.iter().any(|r| r.seed == *s)))
        .collect();
    if seeds.is_empty() {
        return Ok(None);
    }
    let a = panel(ra, c.a.1, &seeds, scope)?;
    Ok(Some(match (rb, c.b) {
        (Some(rb), Some((_, mb))) => a.minus(&panel(rb, mb, &seeds, scope)?)?,
        _ => a,
    }))
}

fn count(n: Option<usize>, max: usize) -> String {
    n.map_or(format!("> {max}"), |n| n.to_string())
}

/// The claims whose rows are present, as a Markdown table: the paired quantity in points with
/// its 95 % interval, its p-value (and Holm's over the primary ones), the verdict, the
/// smallest effect detectable with the asked power, and the seeds or samples per problem
/// that would detect `effect` (the samples only where the data have several: one sample
/// cannot tell sampling noise from the problem × seed interaction).
pub fn claims(results: &Results, scope: &Scope, opt: &ClaimOptions) -> Result<String> {
    let mut found: Vec<(&Claim, Estimate)> = Vec::new();
    for c in CLAIMS {
        if let Some(p) = claim_panel(results, c, scope)? {
            let e = estimate(&p)?;
            found.push((c, opt.within_share.map_or(e, |s| e.with_within_share(s))));
        }
    }
    let primary: Vec<usize> = (0..found.len())
        .filter(|&i| opt.correct && found[i].0.primary)
        .collect();
    let raw: Vec<f64> = primary
        .iter()
        .map(|&i| found[i].1.p_value(found[i].0.sense.threshold()))
        .collect();
    let adjusted = holm(&raw);
    let m = primary.len().max(1);
    let effect_pts = 100.0 * opt.effect;
    if found.is_empty() {
        return Ok("(no claim has its rows here)\n".into());
    }
    let plan_heads: String = opt
        .plans
        .iter()
        .map(|d| format!(" detectable at {}×{}×{} |", d.seeds, d.problems, d.samples))
        .collect();
    let plan_rule = "---:|".repeat(opt.plans.len());
    let mut out = format!(
        "| Claim | kind | seeds × samples | estimate (points) | 95 % CI | p | Holm p | verdict | \
         detectable ({:.0} % power) | seeds for {effect_pts:.0} points | samples for \
         {effect_pts:.0} points |{plan_heads}\n|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|{plan_rule}\n",
        100.0 * opt.power
    );
    for (i, (c, e)) in found.iter().enumerate() {
        let threshold = c.sense.threshold();
        let p = e.p_value(threshold);
        let slot = primary.iter().position(|&j| j == i);
        let (kind, holm_p, alpha) = match slot {
            Some(k) => ("primary", Some(adjusted[k]), opt.alpha / m as f64),
            None => ("exploratory", None, opt.alpha),
        };
        let judged = holm_p.unwrap_or(p);
        let range = if c.b.is_some() {
            (-1.0, 1.0)
        } else {
            c.a.1.range()
        };
        let ci = e.interval(1.0 - opt.alpha).clipped(range).scaled(100.0);
        let gap = opt.effect;
        let planned: String = opt
            .plans
            .iter()
            .map(|&d| match e.projected(d) {
                Some((se, df)) => {
                    format!(
                        " {:.1} |",
                        100.0 * Estimate::detectable(se, df, alpha, opt.power)
                    )
                }
                None => " – |".to_string(),
            })
            .collect();
        out.push_str(&format!(
            "| {} | {kind} | {} × {} | {:+.1} | [{:+.1}, {:+.1}] | {} | {} | {} | {:.1} | {} | {} |{planned}\n",
            c.text,
            e.design.seeds,
            e.design.samples,
            100.0 * e.mean,
            ci.lo,
            ci.hi,
            pvalue(p),
            holm_p.map_or("–".into(), pvalue),
            verdict(judged <= opt.alpha, e.mean, c.sense),
            100.0 * e.minimal_detectable(alpha, opt.power),
            if e.design.seeds > 1 {
                count(e.seeds_needed(gap, alpha, opt.power, 100), 100)
            } else {
                "–".into()
            },
            match e.components.within {
                Some(_) => count(e.samples_needed(gap, alpha, opt.power, 64), 64),
                None => "–".into(),
            },
        ));
    }
    if !primary.is_empty() {
        out.push_str(&format!(
            "\nPrimary: the paper's claims, named before the data, judged as one family of {} \
             with Holm's correction (family-wise error ≤ {:.0} %); their detectable effects and \
             counts are sized at α = {:.3} (Holm's first step). Exploratory: judged alone at \
             {:.0} %.\n",
            primary.len(),
            100.0 * opt.alpha,
            opt.alpha / m as f64,
            100.0 * opt.alpha
        ));
    }
    Ok(out)
}

/// Each cell's variance components as standard deviations in points (σp between problems, σs
/// between seeds, σi the problem × seed interaction, σw between samples of one problem and
/// seed) and the share of the residual that is sampling noise (`σw² / (σi² + σw²)`; with one
/// sample σi holds both and the share is unknown).
pub fn components_table(results: &Results, scope: &Scope) -> Result<String> {
    let mut out = String::from(
        "| Method | metric | mean | σp | σs | σi | σw | sampling share of the residual | df |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let sd = |v: f64| format!("{:.1}", 100.0 * v.sqrt());
    for row in &results.rows {
        let seeds: Vec<u64> = row.seeds.iter().map(|s| s.seed).collect();
        for m in Metric::ALL {
            let e = estimate(&panel(row, m, &seeds, scope)?)?;
            let c = e.components;
            out.push_str(&format!(
                "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {:.1} |\n",
                row.label,
                m.label(),
                100.0 * e.mean,
                sd(c.problem),
                sd(c.seed),
                sd(c.interaction),
                c.within.map_or("–".into(), sd),
                e.within_share()
                    .map_or("–".into(), |s| format!("{:.0} %", 100.0 * s)),
                e.df
            ));
        }
    }
    Ok(out)
}

fn pvalue(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// Two evaluations of the same problems (a run's start and end) compared problem by problem:
/// each metric before and after with its interval, and the paired change with its interval
/// (one seed: a paired t interval over problems, samples averaged per problem), as a Markdown
/// table in percent.
pub fn paired_changes(before: &Verdicts, after: &Verdicts) -> Result<String> {
    let a = after.aligned(&before.ids, &before.path)?;
    let mut out = String::from(
        "| metric | before | after | after − before (points) |\n|---|---:|---:|---:|\n",
    );
    for m in Metric::ALL {
        let (pb, pa) = (samples_panel(&before.samples, m)?, samples_panel(&a, m)?);
        let d = paired_interval(&pb, &pa)?;
        out.push_str(&format!(
            "| {} | {} | {} | {:+.1} [{:+.1}, {:+.1}] |\n",
            m.label(),
            cell(estimate(&pb)?.interval(0.95).clipped(m.range())),
            cell(estimate(&pa)?.interval(0.95).clipped(m.range())),
            d.mean,
            d.lo,
            d.hi
        ));
    }
    Ok(out)
}

/// One evaluation's samples as a one-seed panel of `m`.
fn samples_panel(samples: &[Vec<crate::eval::verdicts::Sample>], m: Metric) -> Result<Panel> {
    let r = samples.first().map_or(1, |s| s.len());
    Panel::new(
        1,
        samples.len(),
        r,
        samples
            .iter()
            .flat_map(|s| s.iter().map(|x| m.value(x.pair())))
            .collect(),
    )
}

/// The 95 % interval of `after − before` (the same problems, paired), in points.
fn paired_interval(before: &Panel, after: &Panel) -> Result<Interval> {
    Ok(estimate(&after.minus(before)?)?
        .interval(0.95)
        .scaled(100.0))
}

/// The sentence that says whether a run learnt: the paired change from `before` to `after` (the
/// same problems) of Acc@t2 for a two-turn evaluation, else Acc@t1, with its 95 % interval, and
/// whether that interval lies above zero ("learnt"), below it, or covers it.
pub fn learning_verdict(before: &Verdicts, after: &Verdicts, two_turns: bool) -> Result<String> {
    let m = if two_turns {
        Metric::AccT2
    } else {
        Metric::AccT1
    };
    let a = after.aligned(&before.ids, &before.path)?;
    let (pb, pa) = (samples_panel(&before.samples, m)?, samples_panel(&a, m)?);
    let d = paired_interval(&pb, &pa)?;
    let change = format!(
        "{} changed by {:+.1} points, 95 % CI [{:+.1}, {:+.1}]",
        m.label(),
        d.mean,
        d.lo,
        d.hi
    );
    Ok(if d.lo > 0.0 {
        format!("Learnt: {change}, above zero: the held-out gain is more than its interval.")
    } else if d.hi < 0.0 {
        format!("Got worse: {change}, below zero.")
    } else {
        format!("Not shown to learn: {change}, which covers zero.")
    })
}
