//! What the answers and the turn-2 checks did, per row (printed by `mgrpo table2` when the
//! evaluations hold them): how often each turn states an answer, and the check anatomy of `data::check_anatomy` (column facts
//! true, checked steps right, how often the check flags a wrong and a right first answer, how
//! often a flagged wrong answer ends right). Each share is pooled over the problems and
//! samples of a seed, then averaged over seeds.

use super::{Results, Scope};
use crate::eval::verdicts::Sample;

/// Numerator and denominator of one share, per seed.
#[derive(Default, Clone, Copy)]
struct Share(f64, f64);

impl Share {
    fn add(&mut self, hit: bool, counted: bool) {
        if counted {
            self.0 += f64::from(hit);
            self.1 += 1.0;
        }
    }
}

const COLUMNS: usize = 7;

/// The shares of one seed over `samples` of the scope's problems, in one pass, and whether
/// any sample held a check. A sample without a check did not flag, so the flag shares count
/// every sample.
fn seed_shares<'a>(samples: impl Iterator<Item = &'a Sample>) -> ([Share; COLUMNS], bool) {
    let mut s = [Share::default(); COLUMNS];
    let mut checked = false;
    for x in samples {
        if let Some(a) = x.answered.0 {
            s[0].add(a, true);
        }
        if let Some(a) = x.answered.1 {
            s[1].add(a, true);
        }
        if let Some(c) = x.check {
            checked = true;
            s[2].0 += f64::from(c.columns_right);
            s[2].1 += f64::from(c.columns);
            s[3].0 += f64::from(c.steps_right);
            s[3].1 += f64::from(c.steps);
        }
        let flagged = x.check.is_some_and(|c| c.flagged);
        s[4].add(flagged, !x.t1);
        s[5].add(flagged, x.t1);
        s[6].add(x.t2, flagged && !x.t1);
    }
    (s, checked)
}

/// The table, one line per row that has any of the measured fields; `None` if none has.
pub fn checks_table(results: &Results, scope: &Scope) -> Option<String> {
    let mut out = String::from(
        "| Method | seeds | turn 1 states an answer | turn 2 states an answer | column facts \
         true | checked steps right | flags a wrong first answer | flags a right first answer \
         | flagged wrong answers fixed |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut any = false;
    for row in &results.rows {
        let mut per_seed = Vec::new();
        let mut has_checks = false;
        for run in &row.seeds {
            let (s, checked) =
                seed_shares(scope.problems.iter().flat_map(|&p| run.aligned[p].iter()));
            has_checks |= checked;
            per_seed.push(s);
        }
        let answered = per_seed.iter().any(|s| s[0].1 > 0.0);
        if !answered && !has_checks {
            continue;
        }
        any = true;
        let cell = |i: usize| {
            if i >= 2 && !has_checks {
                return "–".to_string();
            }
            let shares: Vec<f64> = per_seed
                .iter()
                .filter(|s| s[i].1 > 0.0)
                .map(|s| s[i].0 / s[i].1)
                .collect();
            if shares.is_empty() {
                "–".to_string()
            } else {
                format!(
                    "{:.1} %",
                    100.0 * shares.iter().sum::<f64>() / shares.len() as f64
                )
            }
        };
        let cells: Vec<String> = (0..COLUMNS).map(cell).collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            row.label,
            row.seeds.len(),
            cells.join(" | ")
        ));
    }
    any.then_some(out)
}
