//! Random numbers.
//!
//! [`RandomState`] is NumPy's legacy generator, bit for bit: MT19937 seeded
//! by `init_genrand` from one 32-bit integer (`np.random.seed(n)`), doubles
//! from two 32-bit outputs `a`, `b` as `((a >> 5) * 2^26 + (b >> 6)) / 2^53`
//! (`np.random.random_sample`), and standard normals by the polar
//! Box–Muller method that caches its second value (`np.random.randn`). The
//! lecture seeds it with `np.random.seed(612)` for its initial weights, so
//! hebb reproduces its numbers from the same seed.
//!
//! Everything else in hebb that is random (shuffling, initialisers, RReLU
//! slopes) uses [`ChaCha8Rng`] from `rand_chacha`, always seeded.
//!
//! ```
//! use hebb_tensor::random::RandomState;
//! let mut rng = RandomState::new(0);
//! assert_eq!(rng.randn(), 1.764052345967664);
//! ```

use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

use crate::{Result, Tensor};

const N: usize = 624;
const M: usize = 397;

/// NumPy's legacy `RandomState` (MT19937 + polar Box–Muller).
#[derive(Clone)]
pub struct RandomState {
    key: [u32; N],
    pos: usize,
    gauss: Option<f64>,
}

impl std::fmt::Debug for RandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RandomState")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl RandomState {
    /// A generator in the state `np.random.seed(seed)` leaves NumPy's in.
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (pos, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(pos as u32 + 1);
        }
        Self {
            key,
            pos: N,
            gauss: None,
        }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// The next raw 32-bit output of MT19937 (tempered).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A double uniform on `[0, 1)` with 53 random bits (`np.random.random_sample()`).
    pub fn random_sample(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }

    /// A standard normal draw (`np.random.randn()`), by the polar method;
    /// every other call returns the value cached by the previous one.
    pub fn randn(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `n` standard normal draws in order (`np.random.randn(n)`), as `f64`.
    pub fn randn_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.randn()).collect()
    }

    /// A tensor of standard normal draws, filled in row-major order and
    /// rounded to `f32`: `tf.Variable(np.random.randn(*shape), dtype=tf.float32)`.
    ///
    /// # Errors
    /// [`Error::ElementCount`](crate::Error::ElementCount) if the element count overflows `usize`.
    pub fn randn_tensor(&mut self, shape: &[usize]) -> Result<Tensor> {
        let n = crate::tensor::element_count(shape).ok_or_else(|| crate::Error::ElementCount {
            op: "randn_tensor",
            shape: shape.to_vec(),
            len: 0,
        })?;
        Tensor::from_f64(&self.randn_vec(n), shape)
    }
}

/// A ChaCha8 generator seeded from a `u64`, hebb's default source of randomness.
pub fn chacha(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by NumPy: `np.random.seed(612); np.random.randn(4, 3)`.
    #[test]
    fn randn_matches_numpy_seed_612() {
        let expected = [
            [-0.01337706, -1.16289877, -0.22487308],
            [1.11562916, 0.5083097, -0.1479853],
            [0.2678837, -0.67999971, -0.29333966],
            [-0.38372966, -1.28429187, 1.40817726],
        ];
        let mut rng = RandomState::new(612);
        for row in expected {
            for want in row {
                let got = rng.randn();
                assert!((got - want).abs() < 5e-9, "{got} vs {want}");
            }
        }
    }

    /// `np.random.seed(0); np.random.randn(3)`, to the last bit.
    #[test]
    fn randn_matches_numpy_seed_0_exactly() {
        let mut rng = RandomState::new(0);
        assert_eq!(
            rng.randn_vec(3),
            vec![1.764052345967664, 0.4001572083672233, 0.9787379841057392]
        );
    }

    /// `np.random.seed(612); np.random.random_sample(3)`, to the last bit.
    #[test]
    fn random_sample_matches_numpy() {
        let mut rng = RandomState::new(612);
        let got: Vec<f64> = (0..3).map(|_| rng.random_sample()).collect();
        assert_eq!(
            got,
            vec![0.1434716297030787, 0.4958987806024705, 0.9545458695288016]
        );
    }

    #[test]
    fn tensor_is_row_major_and_f32() {
        let t = RandomState::new(612).randn_tensor(&[4, 3]).unwrap();
        assert_eq!(t.shape(), &[4, 3]);
        assert_eq!(t.to_vec()[3], 1.115_629_2_f32);
    }
}
