//! A log-linear latency histogram (HDR-like): values below 128 ns are kept exactly, above that
//! each power of two is split into 64 buckets, so a reported percentile is at most 1/64
//! (≈ 1.6 %) above the true value. Fixed size (3,776 counters), O(1) record, mergeable, so each
//! caller keeps its own and the harness merges them at the end — no shared state on the hot path.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 6;
/// Values below this are their own bucket.
const LINEAR: u64 = 1 << (SUB_BITS + 1);
/// Buckets: the linear range, then 64 per power of two from 2^7 to 2^63.
const BUCKETS: usize = LINEAR as usize + (63 - SUB_BITS as usize) * (1 << SUB_BITS);

/// Latencies in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        // INVARIANT: v < 128, so it fits and is its own bucket.
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ SUB_BITS + 1
    let shift = exp - SUB_BITS; // ≥ 1
    let top = (v >> shift) as usize; // in 64..128
    LINEAR as usize + (shift as usize - 1) * (1 << SUB_BITS) + (top - (1 << SUB_BITS))
}

/// The highest value that lands in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let rel = i - LINEAR as usize;
    let shift = (rel >> SUB_BITS) as u32 + 1;
    let top = (rel & ((1 << SUB_BITS) - 1)) as u64 + (1 << SUB_BITS);
    ((top + 1) << shift).wrapping_sub(1).max(top << shift)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(ns)) {
            *c += 1;
        }
        self.count += 1;
        self.sum += u128::from(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Records one duration (saturating at `u64::MAX` ns, ≈ 584 years).
    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value `v` such that at least `q` of the values are ≤ `v` (within the bucket
    /// resolution, never above the recorded maximum); 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            1.0
        };
        // The rank is at most `count`, which fits a u64; the float product is rounded up.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Count, mean, p50 / p95 / p99 / p99.9 and extremes, in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let us = |ns: u64| ns as f64 / 1000.0;
        let mean = if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64 / 1000.0
        };
        LatencySummary {
            count: self.count,
            min_us: if self.count == 0 { 0.0 } else { us(self.min) },
            mean_us: mean,
            p50_us: us(self.quantile_ns(0.50)),
            p95_us: us(self.quantile_ns(0.95)),
            p99_us: us(self.quantile_ns(0.99)),
            p999_us: us(self.quantile_ns(0.999)),
            max_us: us(self.max),
        }
    }
}

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_us: f64,
    /// Mean (exact).
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest (exact).
    pub max_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for v in (0..5000).chain([1 << 20, (1 << 20) + 12_345, u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            assert!(
                bucket_high(b) >= v,
                "{v} above its bucket's high {}",
                bucket_high(b)
            );
            if v < 5000 {
                assert!(b >= last);
                last = b;
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_high(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn quantiles_are_within_the_bucket_resolution() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record_ns(v * 10);
        }
        for (q, exact) in [(0.5, 500_000.0), (0.95, 950_000.0), (0.99, 990_000.0)] {
            let got = h.quantile_ns(q) as f64;
            assert!(
                got >= exact && got <= exact * (1.0 + 1.0 / 64.0),
                "q{q}: {got}"
            );
        }
        assert_eq!(h.quantile_ns(1.0), 1_000_000);
        assert_eq!(h.quantile_ns(0.0), 10);
        let s = h.summary();
        assert_eq!(s.count, 100_000);
        assert!((s.mean_us - 500.005).abs() < 1e-9, "{}", s.mean_us);
        assert_eq!((s.min_us, s.max_us), (0.01, 1000.0));
    }

    #[test]
    fn small_values_are_exact_and_merge_adds_up() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in [3, 3, 7] {
            a.record_ns(v);
        }
        b.record(Duration::from_nanos(100));
        a.merge(&b);
        assert_eq!(a.count(), 4);
        assert_eq!(a.quantile_ns(0.5), 3);
        assert_eq!(a.quantile_ns(0.75), 7);
        assert_eq!(a.quantile_ns(1.0), 100);
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        assert_eq!(Histogram::new().summary(), LatencySummary::default());
        assert_eq!(Histogram::new().quantile_ns(0.99), 0);
    }
}
