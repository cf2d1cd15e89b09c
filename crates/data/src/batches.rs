//! Mini-batches for the three gradient-descent variants of lecture 13.1
//! ("小批量梯度下降法"): one iterator for all of them.
//!
//! | variant | batch size `t` | steps per epoch (`n` samples) |
//! |---|---|---|
//! | batch gradient descent (BGD) | `n`, the whole set | 1 |
//! | stochastic gradient descent (SGD) | 1 | `n` |
//! | mini-batch gradient descent (MBGD) | `1 < t < n` | `⌈n / t⌉` (`⌊n / t⌋` with `drop_last`) |
//!
//! The batches are **index slices** into the data set, so nothing is copied
//! per epoch: the caller gathers the rows of one batch (e.g. with
//! [`Tensor::gather_rows`](hebb_tensor::Tensor::gather_rows)). One `Vec` of
//! `n` indices is allocated when the iterator is built and reused for every
//! epoch.
//!
//! Lecture 13.2 ("在每轮训练之前，打乱样本顺序"): shuffle the order before every
//! epoch, because consecutive samples of a data set are often correlated.
//! With [`MiniBatches::with_shuffle`], epoch `e`'s order is the identity
//! permutation shuffled (Fisher-Yates, `rand`'s `SliceRandom::shuffle`) by a
//! ChaCha8 generator seeded with `seed · 0x9E3779B97F4A7C15 ^ e`: it depends
//! on the seed and the epoch number only, not on the epochs before, so a
//! run can resume at any epoch. This is the same derivation as
//! `hebb_models::sequential::Sequential::fit` uses, so the same seed gives
//! the same batches there. Without shuffling every epoch is `0, 1, ..., n-1`.
//!
//! ```
//! use hebb_data::batches::{MiniBatches, Variant};
//!
//! // 10 samples in mini-batches of 4, reshuffled every epoch from seed 7.
//! let mut batches = MiniBatches::new(10, 4)?.with_shuffle(7);
//! assert_eq!(batches.variant(), Variant::MiniBatch);
//! let sizes: Vec<usize> = batches.epoch(0).map(|b| b.len()).collect();
//! assert_eq!(sizes, [4, 4, 2]); // the last, short batch is kept
//!
//! let mut seen: Vec<usize> = batches.epoch(1).flatten().copied().collect();
//! seen.sort_unstable();
//! assert_eq!(seen, (0..10).collect::<Vec<_>>()); // every sample once per epoch
//!
//! // BGD and SGD are the same iterator with t = n and t = 1.
//! assert_eq!(MiniBatches::full(10).epoch(0).len(), 1);
//! assert_eq!(MiniBatches::stochastic(10).epoch(0).len(), 10);
//! # Ok::<(), hebb_data::Error>(())
//! ```

use rand::seq::SliceRandom;

use crate::{Error, Result};

/// Which gradient-descent variant a [`MiniBatches`] configuration is
/// (lecture 13.1), judged by its batch size `t` against the number of
/// samples `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Batch gradient descent: `t >= n`, one batch of every sample.
    Batch,
    /// Stochastic gradient descent: `t = 1` (and `n > 1`).
    Stochastic,
    /// Mini-batch gradient descent: `1 < t < n`.
    MiniBatch,
}

impl Variant {
    /// The lecture's abbreviation: `"BGD"`, `"SGD"` or `"MBGD"`.
    pub fn abbreviation(self) -> &'static str {
        match self {
            Variant::Batch => "BGD",
            Variant::Stochastic => "SGD",
            Variant::MiniBatch => "MBGD",
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.abbreviation())
    }
}

/// The mini-batches of a data set of `n` samples, epoch after epoch: batch
/// size `t` (the whole set for BGD, 1 for SGD), optional reshuffling before
/// each epoch from a seed, and the last short batch kept (default, as
/// Keras' `fit`) or dropped. See the [module docs](self) for the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniBatches {
    batch_size: usize,
    shuffle: Option<u64>,
    drop_last: bool,
    /// The current epoch's order; the identity until the first shuffled epoch.
    order: Vec<usize>,
}

impl MiniBatches {
    /// Batches of `batch_size` samples out of `n_samples` (`batch_size >=
    /// n_samples` is batch gradient descent), in order, the last short batch
    /// kept. Add shuffling with [`with_shuffle`](Self::with_shuffle).
    ///
    /// # Errors
    /// [`Error::ZeroBatchSize`] if `batch_size` is 0.
    pub fn new(n_samples: usize, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::ZeroBatchSize { n_samples });
        }
        Ok(Self {
            batch_size,
            shuffle: None,
            drop_last: false,
            order: (0..n_samples).collect(),
        })
    }

    /// Batch gradient descent: one batch of all `n_samples` samples per epoch.
    pub fn full(n_samples: usize) -> Self {
        Self {
            batch_size: n_samples.max(1),
            shuffle: None,
            drop_last: false,
            order: (0..n_samples).collect(),
        }
    }

    /// Stochastic gradient descent: `n_samples` batches of one sample per epoch.
    pub fn stochastic(n_samples: usize) -> Self {
        Self {
            batch_size: 1,
            shuffle: None,
            drop_last: false,
            order: (0..n_samples).collect(),
        }
    }

    /// Reshuffles the samples before every epoch, epoch `e`'s order
    /// derived from `seed` and `e` only (see the [module docs](self)).
    pub fn with_shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Keeps the samples in their order `0..n` in every epoch (the default).
    pub fn without_shuffle(mut self) -> Self {
        self.shuffle = None;
        for (i, slot) in self.order.iter_mut().enumerate() {
            *slot = i;
        }
        self
    }

    /// Whether to drop the last batch of an epoch when it is shorter than
    /// the batch size (default `false`: kept, as Keras' `fit` keeps it).
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// `n`, the number of samples.
    pub fn n_samples(&self) -> usize {
        self.order.len()
    }

    /// The batch size `t` as configured (it may exceed `n`: then BGD).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The shuffling seed, if the order is reshuffled every epoch.
    pub fn shuffle_seed(&self) -> Option<u64> {
        self.shuffle
    }

    /// Whether a short last batch is dropped.
    pub fn drop_last(&self) -> bool {
        self.drop_last
    }

    /// BGD, SGD or MBGD, from `t` and `n`. A set of one sample is BGD.
    pub fn variant(&self) -> Variant {
        let n = self.n_samples();
        if self.batch_size >= n {
            Variant::Batch
        } else if self.batch_size == 1 {
            Variant::Stochastic
        } else {
            Variant::MiniBatch
        }
    }

    /// Number of batches (update steps) per epoch: `⌈n / t⌉`, or `⌊n / t⌋`
    /// when the short last batch is dropped.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.n_samples();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Number of samples used per epoch: `n`, less the dropped short batch.
    pub fn samples_per_epoch(&self) -> usize {
        if self.drop_last {
            self.batches_per_epoch() * self.batch_size
        } else {
            self.n_samples()
        }
    }

    /// The batches of epoch `epoch` (numbered from 0), in order, each a
    /// slice of sample indices. With shuffling, the order is recomputed
    /// in place from the seed and `epoch` (O(n), no allocation); without,
    /// it is `0..n`. Every sample appears exactly once per epoch, except
    /// those of a dropped short batch.
    pub fn epoch(&mut self, epoch: u64) -> Batches<'_> {
        if let Some(seed) = self.shuffle {
            for (i, slot) in self.order.iter_mut().enumerate() {
                *slot = i;
            }
            let mut rng = hebb_tensor::random::chacha(epoch_seed(seed, epoch));
            self.order.shuffle(&mut rng);
        }
        let remaining = self.batches_per_epoch();
        Batches {
            chunks: self.order.chunks(self.batch_size),
            remaining,
        }
    }

    /// The order of the epoch last asked for with [`epoch`](Self::epoch)
    /// (`0..n` before the first shuffled epoch).
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

/// The shuffling generator's seed of epoch `epoch`: the derivation
/// `Sequential::fit` uses (`seed · ⌊2⁶⁴/φ⌋ ^ epoch`, wrapping).
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch
}

/// The batches of one epoch, from [`MiniBatches::epoch`]: slices of sample
/// indices, at most `t` long (the last one shorter unless dropped).
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    chunks: std::slice::Chunks<'a, usize>,
    remaining: usize,
}

impl<'a> Iterator for Batches<'a> {
    type Item = &'a [usize];

    fn next(&mut self) -> Option<&'a [usize]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.chunks.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl std::iter::FusedIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(b: &mut MiniBatches, epoch: u64) -> Vec<usize> {
        b.epoch(epoch).map(<[usize]>::len).collect()
    }

    fn sorted_indices(b: &mut MiniBatches, epoch: u64) -> Vec<usize> {
        let mut all: Vec<usize> = b.epoch(epoch).flatten().copied().collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn batch_sizes_of_the_three_variants() {
        let mut bgd = MiniBatches::full(150);
        assert_eq!(bgd.variant(), Variant::Batch);
        assert_eq!(sizes(&mut bgd, 0), [150]);

        let mut sgd = MiniBatches::stochastic(150);
        assert_eq!(sgd.variant(), Variant::Stochastic);
        assert_eq!(sizes(&mut sgd, 0), vec![1; 150]);

        let mut mbgd = MiniBatches::new(150, 32).unwrap();
        assert_eq!(mbgd.variant(), Variant::MiniBatch);
        assert_eq!(sizes(&mut mbgd, 0), [32, 32, 32, 32, 22]);
        assert_eq!(mbgd.batches_per_epoch(), 5);
        assert_eq!(mbgd.samples_per_epoch(), 150);

        let mut dropped = MiniBatches::new(150, 32).unwrap().with_drop_last(true);
        assert_eq!(sizes(&mut dropped, 0), [32, 32, 32, 32]);
        assert_eq!(dropped.batches_per_epoch(), 4);
        assert_eq!(dropped.samples_per_epoch(), 128);

        // A batch larger than the set is BGD; an exact multiple has no short batch.
        let mut big = MiniBatches::new(10, 256).unwrap();
        assert_eq!(
            (big.variant(), sizes(&mut big, 0)),
            (Variant::Batch, vec![10])
        );
        let mut exact = MiniBatches::new(12, 4).unwrap().with_drop_last(true);
        assert_eq!(sizes(&mut exact, 3), [4, 4, 4]);
        // drop_last with t > n leaves nothing: that epoch has no step.
        let mut none = MiniBatches::new(10, 256).unwrap().with_drop_last(true);
        assert_eq!(none.epoch(0).len(), 0);
        assert_eq!(MiniBatches::new(0, 4).unwrap().epoch(0).count(), 0);
        assert_eq!(MiniBatches::full(0).epoch(0).count(), 0);
    }

    #[test]
    fn zero_batch_size_is_an_error() {
        let err = MiniBatches::new(5, 0).unwrap_err();
        assert!(matches!(err, Error::ZeroBatchSize { n_samples: 5 }));
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn unshuffled_epochs_are_in_order() {
        let mut b = MiniBatches::new(7, 3).unwrap();
        for epoch in 0..3 {
            let batches: Vec<&[usize]> = b.epoch(epoch).collect();
            assert_eq!(batches, [&[0, 1, 2][..], &[3, 4, 5], &[6]]);
        }
    }

    #[test]
    fn every_sample_exactly_once_per_epoch() {
        for (n, t) in [(150, 1), (150, 8), (150, 32), (150, 150), (97, 10), (1, 1)] {
            let mut b = MiniBatches::new(n, t).unwrap().with_shuffle(612);
            for epoch in 0..4 {
                assert_eq!(
                    sorted_indices(&mut b, epoch),
                    (0..n).collect::<Vec<_>>(),
                    "n={n} t={t} epoch={epoch}"
                );
            }
        }
    }

    #[test]
    fn reshuffles_differently_each_epoch_and_reproducibly() {
        let mut a = MiniBatches::new(150, 32).unwrap().with_shuffle(612);
        let orders: Vec<Vec<usize>> = (0..5)
            .map(|e| a.epoch(e).flatten().copied().collect())
            .collect();
        for i in 0..orders.len() {
            assert_ne!(
                orders[i],
                (0..150).collect::<Vec<_>>(),
                "epoch {i} unshuffled"
            );
            for j in 0..i {
                assert_ne!(orders[i], orders[j], "epochs {i} and {j}");
            }
        }
        // Same seed, same orders, whatever epochs came before.
        let mut b = MiniBatches::new(150, 32).unwrap().with_shuffle(612);
        assert_eq!(b.epoch(3).flatten().copied().collect::<Vec<_>>(), orders[3]);
        assert_eq!(b.epoch(0).flatten().copied().collect::<Vec<_>>(), orders[0]);
        assert_eq!(b.order(), orders[0].as_slice());
        // The order does not depend on the batch size; another seed differs.
        let mut sgd = MiniBatches::stochastic(150).with_shuffle(612);
        assert_eq!(
            sgd.epoch(2).flatten().copied().collect::<Vec<_>>(),
            orders[2]
        );
        let mut other = MiniBatches::new(150, 32).unwrap().with_shuffle(613);
        assert_ne!(
            other.epoch(0).flatten().copied().collect::<Vec<_>>(),
            orders[0]
        );
        // Turning shuffling off restores the natural order.
        let mut off = b.without_shuffle();
        assert_eq!(
            off.epoch(0).flatten().copied().collect::<Vec<_>>(),
            (0..150).collect::<Vec<_>>()
        );
    }

    #[test]
    fn matches_sequential_fit_derivation() {
        // Sequential::fit: order = 0..n, shuffled by chacha(seed * φ ^ epoch).
        let (seed, epoch) = (42u64, 5u64);
        let mut expected: Vec<usize> = (0..50).collect();
        let mut rng = hebb_tensor::random::chacha(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch);
        expected.shuffle(&mut rng);
        let mut b = MiniBatches::new(50, 7).unwrap().with_shuffle(seed);
        assert_eq!(
            b.epoch(epoch).flatten().copied().collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn variant_names() {
        assert_eq!(Variant::Batch.to_string(), "BGD");
        assert_eq!(Variant::Stochastic.abbreviation(), "SGD");
        assert_eq!(Variant::MiniBatch.abbreviation(), "MBGD");
        assert_eq!(MiniBatches::full(1).variant(), Variant::Batch);
    }
}
