//! What reasonable graders disagree on, as named options with documented defaults. Set them
//! with `mgrpo verify --policy KEY=VALUE` or a run config's `[reward]` table.

use serde::{Deserialize, Serialize};

use super::extract::Extraction;
use crate::error::{Error, Result};

/// How `%` relates to a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PercentPolicy {
    /// `50\%` equals both `50` and `1/2` (default: the question decides which is meant).
    Either,
    /// `50\%` equals `50` only (the percent sign is a unit).
    Ignore,
    /// `50\%` equals `1/2` only.
    Fraction,
}

/// The grader's options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// `percent`: see [`PercentPolicy`]. Default `either`.
    pub percent: PercentPolicy,
    /// `decimal_approximations`: accept a decimal that the exact answer rounds to (`1.5708`
    /// for `\frac{\pi}{2}`, `0.33` for `\frac13`). Default `false`: an exact answer wants an
    /// exact value (exact decimals such as `0.5` for `\frac12` are always accepted).
    pub decimal_approximations: bool,
    /// `require_reduced_fractions`: reject `\frac{2}{4}` for `\frac12`. Default `false`.
    pub require_reduced_fractions: bool,
    /// `strip_assignment`: `x = 5` answers `5`. Default `true`.
    pub strip_assignment: bool,
    /// `ordered_lists`: a bare comma list must be in the gold order. Default `false` (lists
    /// of solutions are sets; tuples in parentheses are always ordered).
    pub ordered_lists: bool,
    /// `extraction`: where to look for an answer without a marker ([`Extraction`]). Unset: the
    /// dataset format's default (`last_number` for GSM8K, else `anchored`); `mgrpo verify
    /// --input` uses `last_math`. A training run writes the one it uses into
    /// `config.resolved.toml`.
    pub extraction: Option<Extraction>,
    /// `decimal_comma`: in numbers written in text (`last_number`, `last_math`, prose after a
    /// marker, a GSM8K gold), a comma before a group of other than three digits is a decimal
    /// comma (`1,22` = 1.22, `0,111` = 0.111, `1000,99` = 1000.99). Default `true`; `false`:
    /// such a comma separates list items (`1,22` = the list 1, 22). A comma before groups of
    /// three digits always separates thousands (`7,425,000`), and `1.000,5` is 1000.5 either way.
    pub decimal_comma: bool,
    /// `time_budget_ms`: the most one verdict may take; past it the answer is graded wrong
    /// with the reason `time budget exceeded` (fails closed). Default 1000 — real answers
    /// take microseconds, every input is capped in size, so only a pathological one meets it.
    pub time_budget_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            percent: PercentPolicy::Either,
            decimal_approximations: false,
            require_reduced_fractions: false,
            strip_assignment: true,
            ordered_lists: false,
            extraction: None,
            decimal_comma: true,
            time_budget_ms: 1000,
        }
    }
}

/// The option names, for help texts and errors.
pub const KEYS: &[&str] = &[
    "percent",
    "decimal_approximations",
    "require_reduced_fractions",
    "strip_assignment",
    "ordered_lists",
    "extraction",
    "decimal_comma",
    "time_budget_ms",
];

fn boolean(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Error::Invalid(format!(
            "policy `{key}`: expected true or false, got `{v}`"
        ))),
    }
}

impl Policy {
    /// Set one option from `key=value` text.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "percent" => {
                self.percent = match value {
                    "either" => PercentPolicy::Either,
                    "ignore" => PercentPolicy::Ignore,
                    "fraction" => PercentPolicy::Fraction,
                    _ => {
                        return Err(Error::Invalid(format!(
                            "policy `percent`: expected either, ignore or fraction, got `{value}`"
                        )))
                    }
                }
            }
            "decimal_approximations" => self.decimal_approximations = boolean(key, value)?,
            "require_reduced_fractions" => self.require_reduced_fractions = boolean(key, value)?,
            "strip_assignment" => self.strip_assignment = boolean(key, value)?,
            "ordered_lists" => self.ordered_lists = boolean(key, value)?,
            "decimal_comma" => self.decimal_comma = boolean(key, value)?,
            "extraction" => {
                self.extraction = Some(
                    value
                        .parse()
                        .map_err(|e| Error::Invalid(format!("policy `extraction`: {e}")))?,
                )
            }
            "time_budget_ms" => {
                self.time_budget_ms = value.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "policy `time_budget_ms`: expected a whole number of milliseconds, got `{value}`"
                    ))
                })?
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown policy `{key}` (known: {})",
                    KEYS.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// Apply `KEY=VALUE` settings in order.
    pub fn with_settings(mut self, settings: &[String]) -> Result<Self> {
        for s in settings {
            let (k, v) = s.split_once('=').ok_or_else(|| {
                Error::Invalid(format!("policy setting `{s}`: expected KEY=VALUE"))
            })?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(self)
    }
}
