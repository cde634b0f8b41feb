//! `pgpool bench --sweep`: one bench per pool size, a plot of throughput and p99 against size,
//! and a recommendation next to the rule of thumb `cores × 2 + spindles`.
//!
//! The recommendation is the smallest size whose throughput is within [`WITHIN`] of the best
//! size's: past that point more connections only add server processes, memory and contention.

use std::time::Duration;

use serde_json::{json, Value};

use crate::bench::BenchResult;
use crate::plot;
use crate::util::fmt_us;

/// A size is "as good as the best" when its throughput is at least this fraction below it.
pub(crate) const WITHIN: f64 = 0.05;
/// Most sizes one sweep may try.
const MAX_SIZES: usize = 32;
/// Width of each bar series in the plot.
const BAR_WIDTH: usize = 28;

/// The pool sizes to try, ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SweepSpec(Vec<u32>);

impl SweepSpec {
    pub(crate) fn sizes(&self) -> Vec<u32> {
        self.0.clone()
    }
}

/// Parses `1,2,4,8` or `A..B` (A, doubling, then B), sizes 1 to 1000, at most 32 of them.
pub(crate) fn parse_spec(s: &str) -> Result<SweepSpec, String> {
    let size = |t: &str| -> Result<u32, String> {
        t.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| format!("'{t}' in '{s}' is not a pool size (1 to 1000)"))
    };
    let mut sizes = if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (size(a)?, size(b.trim_start_matches('='))?);
        if a > b {
            return Err(format!("'{s}': the range must go up (A..B with A ≤ B)"));
        }
        let mut sizes = Vec::new();
        let mut n = a;
        while n < b {
            sizes.push(n);
            n = n.saturating_mul(2);
        }
        sizes.push(b);
        sizes
    } else {
        s.split(',').map(size).collect::<Result<Vec<_>, _>>()?
    };
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() > MAX_SIZES {
        return Err(format!("'{s}': at most {MAX_SIZES} sizes"));
    }
    Ok(SweepSpec(sizes))
}

/// `cores × 2 + spindles`, with the cores this process may use.
pub(crate) struct RuleOfThumb {
    pub(crate) cores: u32,
    pub(crate) spindles: u32,
}

impl RuleOfThumb {
    pub(crate) fn here(spindles: u32) -> RuleOfThumb {
        let cores = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        RuleOfThumb { cores, spindles }
    }

    pub(crate) fn size(&self) -> u32 {
        self.cores.saturating_mul(2).saturating_add(self.spindles)
    }
}

/// The index of the smallest size within [`WITHIN`] of the best throughput.
pub(crate) fn recommend(rates: &[f64]) -> Option<usize> {
    let best = rates.iter().copied().fold(0.0, f64::max);
    if best <= 0.0 {
        return None;
    }
    rates.iter().position(|&r| r >= best * (1.0 - WITHIN))
}

/// A finished sweep.
pub(crate) struct Report {
    results: Vec<BenchResult>,
    rule: RuleOfThumb,
    duration: Duration,
    threads: u32,
}

impl Report {
    pub(crate) fn new(
        results: Vec<BenchResult>,
        spindles: u32,
        duration: Duration,
        threads: u32,
    ) -> Report {
        Report {
            results,
            rule: RuleOfThumb::here(spindles),
            duration,
            threads,
        }
    }

    pub(crate) fn results(&self) -> &[BenchResult] {
        &self.results
    }

    fn rates(&self) -> Vec<f64> {
        self.results.iter().map(BenchResult::rate).collect()
    }

    fn best(&self) -> Option<usize> {
        let rates = self.rates();
        (0..rates.len()).max_by(|&a, &b| rates[a].total_cmp(&rates[b]))
    }

    /// The plot, the recommendation and the rule of thumb.
    pub(crate) fn text(&self) -> String {
        let rates = self.rates();
        let recommended = recommend(&rates);
        let rule = self.rule.size();
        let rows: Vec<plot::Row> = self
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let p99 = r.total.value_at_quantile(0.99);
                let mut notes = Vec::new();
                if Some(i) == recommended {
                    notes.push("← recommended".to_string());
                }
                if r.pool_size == rule {
                    notes.push("← cores × 2 + spindles".to_string());
                }
                plot::Row {
                    label: r.pool_size.to_string(),
                    values: [
                        (r.rate(), format!("{:.0}", r.rate())),
                        (p99 as f64, fmt_us(p99)),
                    ],
                    note: notes.join(" "),
                }
            })
            .collect();
        let mut out = format!(
            "Sweep: {} threads, {:.1} s per size{}\n\n",
            self.threads,
            self.duration.as_secs_f64(),
            if self.results.iter().any(|r| r.interrupted) {
                " (interrupted)"
            } else {
                ""
            }
        );
        out.push_str(&plot::chart(
            "size",
            ["queries/s", "p99 (acquire + query)"],
            &rows,
            BAR_WIDTH,
        ));
        out.push('\n');
        match (recommended, self.best()) {
            (Some(i), Some(b)) => out.push_str(&format!(
                "recommended max_size: {} (the smallest size within {:.0}% of the best throughput, {:.0} q/s at size {})\n",
                self.results[i].pool_size,
                WITHIN * 100.0,
                rates[b],
                self.results[b].pool_size
            )),
            _ => out.push_str("recommended max_size: none (no size completed a query)\n"),
        }
        out.push_str(&format!(
            "rule of thumb: cores × 2 + spindles = {} × 2 + {} = {rule}{}\n",
            self.rule.cores,
            self.rule.spindles,
            if self.results.iter().any(|r| r.pool_size == rule) {
                ""
            } else {
                " (not swept)"
            }
        ));
        let errors: u64 = self.results.iter().map(|r| r.errors).sum();
        if errors > 0 {
            out.push_str(&format!("errors: {errors} in all\n"));
        }
        out
    }

    /// The sweep as one JSON object.
    pub(crate) fn json(&self, query: &str) -> Value {
        let recommended = recommend(&self.rates()).map(|i| self.results[i].pool_size);
        json!({
            "threads": self.threads,
            "duration_per_size_s": self.duration.as_secs_f64(),
            "query": query,
            "sweep": self.results.iter().map(|r| r.json(query)).collect::<Vec<_>>(),
            "best_size": self.best().map(|i| self.results[i].pool_size),
            "recommended_size": recommended,
            "within": WITHIN,
            "rule_of_thumb": {
                "cores": self.rule.cores,
                "spindles": self.rule.spindles,
                "size": self.rule.size(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!(parse_spec("1,2,4").unwrap().sizes(), [1, 2, 4]);
        assert_eq!(parse_spec("4, 1,2,2").unwrap().sizes(), [1, 2, 4]);
        assert_eq!(parse_spec("1..32").unwrap().sizes(), [1, 2, 4, 8, 16, 32]);
        assert_eq!(parse_spec("3..10").unwrap().sizes(), [3, 6, 10]);
        assert_eq!(parse_spec("5..5").unwrap().sizes(), [5]);
        assert!(parse_spec("8..2").is_err());
        assert!(parse_spec("0,1").is_err());
        assert!(parse_spec("a..b").is_err());
        assert!(parse_spec("1,2000").is_err());
    }

    #[test]
    fn recommends_the_smallest_size_near_the_best() {
        assert_eq!(recommend(&[100.0, 190.0, 200.0, 198.0]), Some(1));
        assert_eq!(recommend(&[100.0, 180.0, 200.0]), Some(2));
        assert_eq!(recommend(&[50.0]), Some(0));
        assert_eq!(recommend(&[0.0, 0.0]), None);
        assert_eq!(recommend(&[]), None);
    }

    #[test]
    fn rule_of_thumb_counts_cores_twice() {
        let rule = RuleOfThumb {
            cores: 4,
            spindles: 1,
        };
        assert_eq!(rule.size(), 9);
    }
}
