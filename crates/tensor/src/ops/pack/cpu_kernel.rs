//! Host kernel of `pack_scaled` and `unpack_scaled`.

/// `dst[i] = scale * src[i]` (`dst` and `src` of one length).
pub(crate) fn scale_copy(dst: &mut [f32], src: &[f32], scale: f32) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = scale * s;
    }
}
