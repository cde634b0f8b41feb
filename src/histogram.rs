//! Latency histograms: a lock-free [`Recorder`] the hot paths add to, and the [`Histogram`]
//! snapshot [`Stats`](crate::Stats) carries.
//!
//! Log-linear buckets over nanoseconds: values below 8 ns have a bucket each; above, every
//! power of two is split into 8 equal buckets, so a bucket is at most 1/8 of its lower bound
//! wide and a quantile read at a bucket's midpoint is off by at most 6.25%. Values from
//! 2^42 ns (73 minutes) up share the last octave; the exact maximum is kept apart. 320
//! buckets, 2.5 KiB per histogram.
//!
//! Recording is two relaxed atomic additions (bucket and sum) and a maximum that is only
//! written when it grows; there is no lock and no allocation. A snapshot reads the buckets
//! one by one while others record, so its count and sum may disagree by the few values
//! recorded meanwhile. [`Counts`] is the same without atomics, for values recorded under a
//! lock taken anyway.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// The highest octave with buckets of its own (2^42 ns ≈ 73 min); larger values go there.
const TOP_EXP: u32 = 41;
/// Number of buckets.
pub(crate) const BUCKETS: usize = SUB + (TOP_EXP - SUB_BITS + 1) as usize * SUB;

/// The bucket of a value in nanoseconds.
#[inline]
fn index(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = (63 - ns.leading_zeros()).min(TOP_EXP);
    let sub = if exp == TOP_EXP && ns >> (TOP_EXP + 1) != 0 {
        SUB - 1
    } else {
        ((ns >> (exp - SUB_BITS)) as usize) & (SUB - 1)
    };
    SUB + (exp - SUB_BITS) as usize * SUB + sub
}

/// The smallest value of bucket `i` and its width, in nanoseconds.
fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let exp = (i - SUB) / SUB + SUB_BITS as usize;
    let sub = ((i - SUB) % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS as usize);
    ((SUB as u64 + sub) * width, width)
}

/// Where latencies are recorded: shared by every thread of a pool.
pub(crate) struct Recorder {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// Adds one value.
    #[inline]
    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[index(ns)].fetch_add(1, Relaxed);
        if ns > 0 {
            self.sum_ns.fetch_add(ns, Relaxed);
        }
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
    }

    /// A copy of what was recorded so far.
    pub(crate) fn snapshot(&self) -> Histogram {
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        Histogram {
            count: buckets.iter().sum(),
            buckets,
            sum_ns: self.sum_ns.load(Relaxed),
            max_ns: self.max_ns.load(Relaxed),
        }
    }
}

/// The same buckets without atomics, for a histogram recorded under a lock (hold times, under
/// the pool lock that release takes anyway).
pub(crate) struct Counts {
    buckets: Box<[u64]>,
    count: u64,
    sum_ns: u64,
    max_ns: u64,
}

impl Counts {
    pub(crate) fn new() -> Counts {
        Counts {
            buckets: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }

    #[inline]
    pub(crate) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[index(ns)] += 1;
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        Histogram {
            buckets: self.buckets.to_vec(),
            count: self.count,
            sum_ns: self.sum_ns,
            max_ns: self.max_ns,
        }
    }
}

/// A snapshot of one latency distribution (acquire wait, connect, query or hold time; see
/// [`Stats`](crate::Stats)): count, sum, maximum and quantiles within 6.25%.
///
/// ```
/// # fn main() -> Result<(), pgpool::Error> {
/// let pool = pgpool::Pool::builder().build("host=127.0.0.1 port=1 user=nobody")?;
/// let stats = pool.stats();
/// // Nothing was acquired yet: every quantile of an empty histogram is zero.
/// assert_eq!(stats.acquire_wait.count(), 0);
/// assert_eq!(stats.acquire_wait.p99(), std::time::Duration::ZERO);
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Histogram {
    /// Counts per bucket; empty when nothing was ever recorded by this snapshot's source.
    buckets: Vec<u64>,
    count: u64,
    sum_ns: u64,
    max_ns: u64,
}

impl Histogram {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values recorded.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// The largest value recorded (exact), zero when empty.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The mean, zero when empty.
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            n => Duration::from_nanos(self.sum_ns / n),
        }
    }

    /// The value below which a fraction `q` (0 to 1, clamped) of the recorded values lie:
    /// the midpoint of the bucket that holds it, never above [`max`](Self::max). Zero when
    /// empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // The rank of the wanted value, 1-based: at least the first, at most the last.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bounds(i);
                let mid = low.saturating_add(width / 2);
                return Duration::from_nanos(mid.min(self.max_ns));
            }
        }
        self.max()
    }

    /// Adds `n` values of zero (acquires that found an idle connection, which read no clock).
    pub(crate) fn add_zeros(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        self.buckets[0] += n;
        self.count += n;
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// The 90th percentile.
    pub fn p90(&self) -> Duration {
        self.quantile(0.90)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// Values at most `le` (Prometheus's cumulative `le` buckets): a bucket counts when its
    /// midpoint is at most `le`.
    pub fn count_at_most(&self, le: Duration) -> u64 {
        let le = u64::try_from(le.as_nanos()).unwrap_or(u64::MAX);
        self.buckets
            .iter()
            .enumerate()
            .take_while(|(i, _)| {
                let (low, width) = bounds(*i);
                low.saturating_add(width / 2) <= le
            })
            .map(|(_, n)| n)
            .sum()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("p50", &self.p50())
            .field("p90", &self.p90())
            .field("p99", &self.p99())
            .field("max", &self.max())
            .finish()
    }
}

impl std::fmt::Display for Histogram {
    /// `n=<count> p50=<ms> p90=<ms> p99=<ms> max=<ms>`, each in milliseconds (`0.081ms`, `12ms`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={} p90={} p99={} max={}",
            self.count,
            ms(self.p50()),
            ms(self.p90()),
            ms(self.p99()),
            ms(self.max())
        )
    }
}

/// A duration in milliseconds with two significant decimals for small values.
pub(crate) fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 1.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.3}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_tile_the_range() {
        let mut next = 0;
        for i in 0..BUCKETS - 1 {
            let (low, width) = bounds(i);
            assert_eq!(
                low,
                next,
                "bucket {i} starts where {} ends",
                i.wrapping_sub(1)
            );
            assert_eq!(index(low), i);
            assert_eq!(index(low + width - 1), i);
            next = low + width;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(index(next), BUCKETS - 1);
    }

    #[test]
    fn empty_histogram_reads_zero() {
        let h = Recorder::new().snapshot();
        assert_eq!(
            (h.count(), h.p99(), h.max(), h.mean()),
            (0, Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let r = Recorder::new();
        for us in 1..=1000u64 {
            r.record(Duration::from_micros(us));
        }
        let h = r.snapshot();
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max(), Duration::from_millis(1));
        assert_eq!(h.sum(), Duration::from_micros(500_500));
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = h.quantile(q).as_secs_f64() * 1e6;
            assert!((got - want).abs() / want <= 0.0625, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.count_at_most(Duration::from_secs(1)), 1000);
        let half = h.count_at_most(Duration::from_micros(500)) as f64;
        assert!((half - 500.0).abs() <= 500.0 * 0.0625, "{half}");
    }

    #[test]
    fn recording_from_many_threads_loses_nothing() {
        let r = std::sync::Arc::new(Recorder::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        r.record(Duration::from_nanos(i * 97 + t));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(r.snapshot().count(), 40_000);
    }

    proptest! {
        #[test]
        fn a_quantile_is_within_its_bucket(values in proptest::collection::vec(0u64..1u64 << 45, 1..200), q in 0.0f64..=1.0) {
            let r = Recorder::new();
            for &v in &values {
                r.record(Duration::from_nanos(v));
            }
            let h = r.snapshot();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            let exact = sorted[rank - 1];
            let got = u64::try_from(h.quantile(q).as_nanos()).unwrap();
            prop_assert!(got <= *sorted.last().unwrap());
            if exact < 1 << 42 {
                let tolerance = (exact / 16).max(1);
                prop_assert!(got.abs_diff(exact) <= tolerance, "{got} vs {exact}");
            }
        }
    }
}
