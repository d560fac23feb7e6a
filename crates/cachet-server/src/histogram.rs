//! A latency histogram with fixed buckets, as plain data: a tier's per-operation latency is
//! copied out of its lock into a [`crate::storage::TierReport`], averaged for `/stats` and
//! encoded for `/metrics` (by [`crate::metrics`], which owns the exposition format). A leaf
//! module, so the storage layer can record latency without importing the metrics layer above it.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last bucket, `+Inf`, is implicit).
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// Samples per bucket (not cumulative; the last slot counts samples above every bound), their
/// count and their sum.
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS.len() + 1],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Records one sample.
    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        self.count += 1;
        self.sum += secs;
        let slot = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[slot] += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the samples, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, samples in that bucket alone)` for every bucket; the last bound is
    /// `f64::INFINITY` (`+Inf`).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sample_lands_in_one_bucket() {
        let mut h = Histogram::default();
        for ms in [0, 2, 2, 40_000] {
            h.observe(Duration::from_millis(ms));
        }
        let b = h.buckets();
        assert_eq!(b[0], (0.0005, 1));
        assert_eq!(b[2], (0.0025, 2));
        assert_eq!(b[BUCKETS.len()], (f64::INFINITY, 1));
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), h.count());
        assert!((h.sum() - 40.004).abs() < 1e-9);
    }
}
