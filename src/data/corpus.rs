//! The warm-start corpus's pairs: a question with its solution as the (possibly noisy) teacher
//! writes it, or a self-correction trace — an attempt (right or with one slip) and a guide
//! phrase as prompt, exactly as MGRPO's layer 2 and the turn-2 evaluation build it, and the
//! check as completion. `mgrpo task` (`task.rs`) writes them to `sft.jsonl`.

use rand::Rng;

use super::arith::ArithProblem;
use super::trace::{check_text, Attempt};
use crate::error::{Error, Result};
use crate::text::template::PromptTemplate;

/// The noisy teacher of the plain solutions: of the pairs that are not traces, a `shortcut`
/// share is the bare `\boxed{answer}` (the right answer, no working) and a `slip` share is an
/// attempt with one slip carried through to a wrong answer ([`Attempt::slipped`]). Both zero:
/// every solution is the reference, and the corpus is byte for byte what it was before the
/// knobs existed (no extra draws).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TeacherNoise {
    pub shortcut: f64,
    pub slip: f64,
}

impl TeacherNoise {
    /// Both shares in [0, 1] and together at most 1; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        for (flag, v) in [
            ("--shortcut-share", self.shortcut),
            ("--slip-share", self.slip),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::arg(flag, "must be in [0, 1]"));
            }
        }
        if self.shortcut + self.slip > 1.0 {
            return Err(Error::arg(
                "--slip-share",
                format!(
                    "with --shortcut-share {} the two shares exceed 1 (they split the plain \
                     solutions)",
                    self.shortcut
                ),
            ));
        }
        Ok(())
    }
}

/// What a warm-start pair is (the corpus row's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairKind {
    /// The question and its reference solution.
    Solution,
    /// The question and the bare boxed answer (the noisy teacher's shortcut).
    Shortcut,
    /// The question and a solution with one slip carried through (the noisy teacher's slip).
    Slipped,
    /// A trace after a right attempt.
    CheckRight,
    /// A trace after a slipped attempt.
    CheckSlip,
}

impl PairKind {
    pub fn name(self) -> &'static str {
        match self {
            PairKind::Solution => "solution",
            PairKind::Shortcut => "shortcut",
            PairKind::Slipped => "slipped",
            PairKind::CheckRight => "check-right",
            PairKind::CheckSlip => "check-slip",
        }
    }
}

/// One warm-start pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftPair {
    pub prompt: String,
    pub completion: String,
    pub kind: PairKind,
}

/// The pair for `problem`: a trace with probability `trace_share`, else its solution as the
/// (possibly noisy) teacher writes it.
pub fn sft_pair(
    problem: &ArithProblem,
    template: &PromptTemplate,
    guides: &[String],
    trace_share: f64,
    noise: TeacherNoise,
    rng: &mut impl Rng,
) -> SftPair {
    if guides.is_empty() || !rng.random_bool(trace_share) {
        // no draw at all without noise: the noiseless corpus is what it always was
        let u = if noise.shortcut + noise.slip > 0.0 {
            rng.random::<f64>()
        } else {
            1.0
        };
        let (completion, kind) = if u < noise.shortcut {
            (format!("\\boxed{{{}}}", problem.answer), PairKind::Shortcut)
        } else if u < noise.shortcut + noise.slip {
            (Attempt::slipped(problem, rng).text(), PairKind::Slipped)
        } else {
            (problem.solution(), PairKind::Solution)
        };
        return SftPair {
            prompt: template.render(&problem.question),
            completion,
            kind,
        };
    }
    let slipped = rng.random_bool(0.5);
    let attempt = if slipped {
        Attempt::slipped(problem, rng)
    } else {
        Attempt::right(problem)
    };
    let guide = &guides[rng.random_range(0..guides.len())];
    SftPair {
        prompt: template.render_layer2(&problem.question, &attempt.text(), guide),
        completion: check_text(problem, &attempt),
        kind: if slipped {
            PairKind::CheckSlip
        } else {
            PairKind::CheckRight
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::arith::{ArithConfig, ArithTask};
    use crate::text::template::PAPER_GUIDE_PHRASES;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A trace's prompt is exactly the layer-2 query built from its attempt, so the warm start
    /// teaches the continuation MGRPO's layer 2 and the turn-2 evaluation ask for.
    #[test]
    fn a_trace_continues_the_layer2_query() {
        let template = PromptTemplate::builtin("chatml").unwrap();
        let guides: Vec<String> = PAPER_GUIDE_PHRASES.iter().map(|s| s.to_string()).collect();
        let mut task = ArithTask::new(ArithConfig::default(), 1).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut n = 0;
        while n < 20 {
            let p = task.sample();
            let pair = sft_pair(
                &p,
                &template,
                &guides,
                1.0,
                TeacherNoise::default(),
                &mut rng,
            );
            let rendered = template.render(&p.question);
            let rest = pair.prompt.strip_prefix(&rendered).unwrap();
            let guide = guides.iter().find(|g| rest.ends_with(g.as_str())).unwrap();
            let attempt = rest.strip_suffix(guide.as_str()).unwrap();
            let attempt = attempt.strip_suffix("\n\n").unwrap();
            assert_eq!(
                template.render_layer2(&p.question, attempt, guide),
                pair.prompt
            );
            assert!(pair.completion.starts_with("\nCheck:"));
            n += 1;
        }
    }
}
