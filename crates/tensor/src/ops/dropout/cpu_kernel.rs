//! Host kernel of the dropout mask: the hash of every element, in parallel
//! over fixed chunks (the result does not depend on the thread count).

use rayon::prelude::*;

use super::DropoutMask;

/// Elements per parallel task (fixed; the result does not depend on it,
/// only the speed).
pub(crate) const CHUNK: usize = 1 << 14;

/// `dst[i] = src[i] · mask.value(i)` for `i < dst.len()` (`src` and `dst`
/// of one length).
pub(crate) fn apply(src: &[f32], dst: &mut [f32], mask: &DropoutMask) {
    let DropoutMask {
        key,
        first,
        threshold,
        scale,
    } = *mask;
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (d, s))| {
            let base = first.wrapping_add((c * CHUNK) as u64);
            for (j, (d, &s)) in d.iter_mut().zip(s).enumerate() {
                *d = if super::kept(key, base.wrapping_add(j as u64), threshold) {
                    s * scale
                } else {
                    0.0
                };
            }
        });
}
