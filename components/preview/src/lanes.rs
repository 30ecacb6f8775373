//! Four-lane arithmetic for the preview's hot loops: wasm `simd128`
//! vectors when the target has them (the thumbnail component), and a twin of
//! plain arrays otherwise (native builds and tests) doing the same
//! operations in the same order, so both give the same results.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct F4(v128);

    impl F4 {
        #[inline(always)]
        pub fn splat(x: f32) -> F4 {
            F4(f32x4_splat(x))
        }
        pub fn from_array(a: [f32; 4]) -> F4 {
            F4(f32x4(a[0], a[1], a[2], a[3]))
        }
        #[inline(always)]
        pub fn add(self, o: F4) -> F4 {
            F4(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: F4) -> F4 {
            F4(f32x4_sub(self.0, o.0))
        }
        #[inline(always)]
        pub fn mul(self, o: F4) -> F4 {
            F4(f32x4_mul(self.0, o.0))
        }
        /// 8 grey pixels minus 128, as (columns 0–3, columns 4–7).
        #[inline(always)]
        pub fn load8(px: &[u8]) -> (F4, F4) {
            let b: [u8; 8] = px[..8].try_into().unwrap();
            let v = u64x2(u64::from_le_bytes(b), 0);
            let w = u16x8_extend_low_u8x16(v);
            let shift = f32x4_splat(128.0);
            let lo = f32x4_sub(f32x4_convert_u32x4(u32x4_extend_low_u16x8(w)), shift);
            let hi = f32x4_sub(f32x4_convert_u32x4(u32x4_extend_high_u16x8(w)), shift);
            (F4(lo), F4(hi))
        }
        /// Transpose the 4×4 matrix whose rows are `m`.
        #[inline(always)]
        pub fn transpose(m: [F4; 4]) -> [F4; 4] {
            let [a, b, c, d] = m.map(|v| v.0);
            let ab_lo = i32x4_shuffle::<0, 4, 1, 5>(a, b);
            let ab_hi = i32x4_shuffle::<2, 6, 3, 7>(a, b);
            let cd_lo = i32x4_shuffle::<0, 4, 1, 5>(c, d);
            let cd_hi = i32x4_shuffle::<2, 6, 3, 7>(c, d);
            [
                F4(i64x2_shuffle::<0, 2>(ab_lo, cd_lo)),
                F4(i64x2_shuffle::<1, 3>(ab_lo, cd_lo)),
                F4(i64x2_shuffle::<0, 2>(ab_hi, cd_hi)),
                F4(i64x2_shuffle::<1, 3>(ab_hi, cd_hi)),
            ]
        }
        /// Round two vectors to nearest (ties to even), clamp to ±1023, as eight integers.
        #[inline(always)]
        pub fn quantised_pair(a: F4, b: F4) -> [i16; 8] {
            let q = |v: v128| {
                let r = f32x4_nearest(v);
                i32x4_trunc_sat_f32x4(f32x4_max(f32x4_min(r, f32x4_splat(1023.0)), f32x4_splat(-1023.0)))
            };
            let n = i16x8_narrow_i32x4(q(a.0), q(b.0));
            let mut out = [0i16; 8];
            // SAFETY: 8 i16 are 16 writable bytes; the write is unaligned
            unsafe { core::ptr::write_unaligned(out.as_mut_ptr() as *mut v128, n) };
            out
        }
    }

    /// Bit k set where `c[k]` is not zero.
    #[inline(always)]
    pub fn nonzero(c: &[i16; 64]) -> u64 {
        let mut m = 0u64;
        for (k, chunk) in c.chunks_exact(8).enumerate() {
            // SAFETY: a chunk is 8 i16 = 16 readable bytes; the read is unaligned
            let v = unsafe { core::ptr::read_unaligned(chunk.as_ptr() as *const v128) };
            let z = i16x8_ne(v, i16x8_splat(0));
            m |= (i16x8_bitmask(z) as u64) << (8 * k);
        }
        m
    }

    /// The smallest and largest finite values ((+inf, −inf) when none):
    /// non-finite values count as +inf for the minimum and −inf for the
    /// maximum; `pmin`/`pmax` are single vector instructions.
    pub fn finite_min_max(row: &[f32]) -> (f32, f32) {
        let inf = f32x4_splat(f32::INFINITY);
        let ninf = f32x4_splat(f32::NEG_INFINITY);
        let (mut lo, mut hi) = (inf, ninf);
        let mut chunks = row.chunks_exact(4);
        for c in &mut chunks {
            let v = f32x4(c[0], c[1], c[2], c[3]);
            let finite = f32x4_lt(f32x4_abs(v), inf);
            lo = f32x4_pmin(lo, v128_bitselect(v, inf, finite));
            hi = f32x4_pmax(hi, v128_bitselect(v, ninf, finite));
        }
        let mut l = [f32x4_extract_lane::<0>(lo), f32x4_extract_lane::<1>(lo), f32x4_extract_lane::<2>(lo), f32x4_extract_lane::<3>(lo)];
        let mut h = [f32x4_extract_lane::<0>(hi), f32x4_extract_lane::<1>(hi), f32x4_extract_lane::<2>(hi), f32x4_extract_lane::<3>(hi)];
        super::fold_rest(chunks.remainder(), &mut l, &mut h)
    }

    /// Integer histogram bins of four values: floor((x − lo) + 0.5) in f64,
    /// clamped to [0, last]; non-finite values go to `trash`.
    #[inline(always)]
    pub fn int_bins(x: [f32; 4], lo: f64, last: u32, trash: u32) -> [u32; 4] {
        let v = f32x4(x[0], x[1], x[2], x[3]);
        let finite = f32x4_lt(f32x4_abs(v), f32x4_splat(f32::INFINITY));
        let half = |d: v128| {
            let y = f64x2_floor(f64x2_add(f64x2_sub(d, f64x2_splat(lo)), f64x2_splat(0.5)));
            let y = f64x2_pmin(f64x2_pmax(y, f64x2_splat(0.0)), f64x2_splat(last as f64));
            i32x4_trunc_sat_f64x2_zero(y)
        };
        let low = half(f64x2_promote_low_f32x4(v));
        let high = half(f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 2, 3>(v, v)));
        let idx = v128_bitselect(i32x4_shuffle::<0, 1, 4, 5>(low, high), u32x4_splat(trash), finite);
        [
            u32x4_extract_lane::<0>(idx),
            u32x4_extract_lane::<1>(idx),
            u32x4_extract_lane::<2>(idx),
            u32x4_extract_lane::<3>(idx),
        ]
    }

    /// Lookup-table bins of four values: pos = (x − lo) · scale in f32;
    /// [0, top) → the bin, ≥ top → `above`, below 0 or NaN → `below`.
    #[inline(always)]
    pub fn lut_bins(x: [f32; 4], lo: f32, scale: f32, top: f32, above: u32, below: u32) -> [u32; 4] {
        let v = f32x4(x[0], x[1], x[2], x[3]);
        let pos = f32x4_mul(f32x4_sub(v, f32x4_splat(lo)), f32x4_splat(scale));
        let t = f32x4_splat(top);
        let inside = v128_and(f32x4_ge(pos, f32x4_splat(0.0)), f32x4_lt(pos, t));
        let over = f32x4_ge(pos, t);
        let idx = i32x4_trunc_sat_f32x4(pos);
        let idx = v128_bitselect(idx, v128_bitselect(u32x4_splat(above), u32x4_splat(below), over), inside);
        [
            u32x4_extract_lane::<0>(idx),
            u32x4_extract_lane::<1>(idx),
            u32x4_extract_lane::<2>(idx),
            u32x4_extract_lane::<3>(idx),
        ]
    }
}

/// Four f32 lanes as an array (the same arithmetic, one lane at a time).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    #[derive(Clone, Copy)]
    pub struct F4([f32; 4]);

    impl F4 {
        #[inline(always)]
        pub fn splat(x: f32) -> F4 {
            F4([x; 4])
        }
        pub fn from_array(a: [f32; 4]) -> F4 {
            F4(a)
        }
        #[inline(always)]
        pub fn add(self, o: F4) -> F4 {
            F4(core::array::from_fn(|i| self.0[i] + o.0[i]))
        }
        #[inline(always)]
        pub fn sub(self, o: F4) -> F4 {
            F4(core::array::from_fn(|i| self.0[i] - o.0[i]))
        }
        #[inline(always)]
        pub fn mul(self, o: F4) -> F4 {
            F4(core::array::from_fn(|i| self.0[i] * o.0[i]))
        }
        #[inline(always)]
        pub fn load8(px: &[u8]) -> (F4, F4) {
            let f = |i: usize| px[i] as f32 - 128.0;
            (F4(core::array::from_fn(f)), F4(core::array::from_fn(|i| f(i + 4))))
        }
        #[inline(always)]
        pub fn transpose(m: [F4; 4]) -> [F4; 4] {
            core::array::from_fn(|r| F4(core::array::from_fn(|c| m[c].0[r])))
        }
        #[inline(always)]
        pub fn quantised_pair(a: F4, b: F4) -> [i16; 8] {
            let q = |x: f32| x.round_ties_even().clamp(-1023.0, 1023.0) as i16;
            core::array::from_fn(|i| if i < 4 { q(a.0[i]) } else { q(b.0[i - 4]) })
        }
    }

    #[inline(always)]
    pub fn nonzero(c: &[i16; 64]) -> u64 {
        c.iter().enumerate().fold(0, |m, (k, v)| m | (((*v != 0) as u64) << k))
    }

    pub fn finite_min_max(row: &[f32]) -> (f32, f32) {
        let (mut l, mut h) = ([f32::INFINITY; 4], [f32::NEG_INFINITY; 4]);
        let mut chunks = row.chunks_exact(4);
        for c in &mut chunks {
            for k in 0..4 {
                let finite = c[k].abs() < f32::INFINITY;
                l[k] = l[k].min(if finite { c[k] } else { f32::INFINITY });
                h[k] = h[k].max(if finite { c[k] } else { f32::NEG_INFINITY });
            }
        }
        super::fold_rest(chunks.remainder(), &mut l, &mut h)
    }

    #[inline(always)]
    pub fn int_bins(x: [f32; 4], lo: f64, last: u32, trash: u32) -> [u32; 4] {
        x.map(|v| {
            if !(v.abs() < f32::INFINITY) {
                return trash;
            }
            let y = ((v as f64 - lo) + 0.5).floor();
            y.clamp(0.0, last as f64) as u32
        })
    }

    #[inline(always)]
    pub fn lut_bins(x: [f32; 4], lo: f32, scale: f32, top: f32, above: u32, below: u32) -> [u32; 4] {
        x.map(|v| {
            let pos = (v - lo) * scale;
            if pos >= 0.0 && pos < top {
                pos as u32
            } else if pos >= top {
                above
            } else {
                below
            }
        })
    }
}

pub use imp::*;

/// Call `f` on `v` in groups of four, the last one padded with NaN (which
/// every bin function here sends to its bin for non-finite values). Plain
/// loops, not an iterator chain: Cranelift keeps these in registers.
#[inline(always)]
pub fn for_fours(v: &[f32], mut f: impl FnMut([f32; 4])) {
    let whole = v.chunks_exact(4);
    let rest = whole.remainder();
    for c in whole {
        f([c[0], c[1], c[2], c[3]]);
    }
    if !rest.is_empty() {
        f(core::array::from_fn(|i| rest.get(i).copied().unwrap_or(f32::NAN)));
    }
}

/// Map `src` to `out` (the shorter length) four values at a time, as [`for_fours`].
#[inline(always)]
pub fn map_fours(src: &[f32], out: &mut [u8], mut f: impl FnMut([f32; 4]) -> [u8; 4]) {
    let n = src.len().min(out.len());
    let whole = n / 4 * 4;
    for (o, c) in out[..whole].chunks_exact_mut(4).zip(src[..whole].chunks_exact(4)) {
        // a fixed-size store (a slice copy becomes a memcpy call on wasm)
        let o: &mut [u8; 4] = o.try_into().expect("chunks of four");
        *o = f([c[0], c[1], c[2], c[3]]);
    }
    if whole < n {
        let g = f(core::array::from_fn(|i| src[whole..n].get(i).copied().unwrap_or(f32::NAN)));
        out[whole..n].copy_from_slice(&g[..n - whole]);
    }
}

/// Fold the lanes and the values after the last whole group of four.
fn fold_rest(rest: &[f32], l: &mut [f32; 4], h: &mut [f32; 4]) -> (f32, f32) {
    for v in rest.iter().filter(|v| v.abs() < f32::INFINITY) {
        l[0] = l[0].min(*v);
        h[0] = h[0].max(*v);
    }
    (l.iter().copied().fold(f32::INFINITY, f32::min), h.iter().copied().fold(f32::NEG_INFINITY, f32::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_min_max_skips_nan_and_infinities() {
        let row = [3.0, f32::NAN, -2.0, f32::INFINITY, 7.5, f32::NEG_INFINITY, 1.0];
        assert_eq!(finite_min_max(&row), (-2.0, 7.5));
        assert_eq!(finite_min_max(&[f32::NAN; 9]), (f32::INFINITY, f32::NEG_INFINITY));
        assert_eq!(finite_min_max(&[]), (f32::INFINITY, f32::NEG_INFINITY));
        let long: Vec<f32> = (0..103).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        assert_eq!(finite_min_max(&long), (-50.0, 50.0));
    }

    #[test]
    fn groups_of_four_pad_the_last_with_nan() {
        let mut g: Vec<[f32; 4]> = Vec::new();
        for_fours(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], |x| g.push(x));
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(&g[1][..2], &[5.0, 6.0]);
        assert!(g[1][2].is_nan() && g[1][3].is_nan());
        for_fours(&[], |_| panic!("no groups in nothing"));
        let mut out = [9u8; 7];
        map_fours(&[1.0, 2.0, 3.0, 4.0, 5.0], &mut out, |x| x.map(|v| if v.is_nan() { 0 } else { v as u8 }));
        assert_eq!(out, [1, 2, 3, 4, 5, 9, 9], "only the shorter length is written");
    }

    #[test]
    fn lookup_bins_inside_above_below() {
        let b = lut_bins([10.0, 10.26, 19.99, 20.0], 10.0, 4.0, 40.0, 998, 999);
        assert_eq!(b, [0, 1, 39, 998]);
        assert_eq!(lut_bins([9.99, f32::NAN, f32::INFINITY, f32::NEG_INFINITY], 10.0, 4.0, 40.0, 998, 999), [999, 999, 998, 999]);
    }

    #[test]
    fn integer_bins_round_clamp_and_trash() {
        assert_eq!(int_bins([10.0, 10.49, 10.5, 11.7], 10.0, 100, 999), [0, 0, 1, 2]);
        assert_eq!(int_bins([-5.0, 500.0, f32::NAN, f32::INFINITY], 0.0, 100, 999), [0, 100, 999, 999]);
        assert_eq!(int_bins([f32::NEG_INFINITY, 0.0, 99.5, 2.25], -0.5, 100, 7), [7, 1, 100, 3]);
    }
}
