//! Value → grey through normalisation between limits and a stretch (astropy
//! `AsinhStretch(a)` or `SqrtStretch`), as matplotlib's grey map quantises it:
//! grey = min(255, floor(y·256)), clamped outside [0, 1].
//! The mapping is precomputed as 255 data-space thresholds, so each pixel
//! costs a binary search instead of an asinh.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stretch {
    Asinh(f64),
    Sqrt,
    Linear,
}

impl Stretch {
    /// y for normalised x in [0, 1].
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Stretch::Asinh(a) => (x / a).asinh() / (1.0 / a).asinh(),
            Stretch::Sqrt => x.max(0.0).sqrt(),
            Stretch::Linear => x,
        }
    }

    /// x for y in [0, 1].
    pub fn inverse(self, y: f64) -> f64 {
        match self {
            Stretch::Asinh(a) => a * (y * (1.0 / a).asinh()).sinh(),
            Stretch::Sqrt => y * y,
            Stretch::Linear => y,
        }
    }
}

/// Bins of the lookup table between the limits (small enough to stay in
/// the L1 cache: a random-access 512 KiB table was slower than the search).
const LUT_BINS: usize = 1 << 14;

/// Precomputed grey mapping between two limits.
#[derive(Clone, Debug)]
pub struct StretchMap {
    /// thresholds[k] = smallest data value with grey ≥ k+1.
    thresholds: Vec<f32>,
    lo: f32,
    scale: f32,
    /// Per bin of [lo, hi]: the grey at the bin's start and at its end; a
    /// bin whose two agree maps directly, the others search the thresholds;
    /// then white (above the range) and black (below, or NaN).
    lut: Vec<(u8, u8)>,
}

impl StretchMap {
    pub fn new(vmin: f64, vmax: f64, stretch: Stretch) -> Self {
        let span = vmax - vmin;
        let thresholds = (1..256)
            .map(|k| {
                if !(span > 0.0) {
                    // degenerate limits: matplotlib draws everything black
                    return f32::INFINITY;
                }
                (vmin + stretch.inverse(k as f64 / 256.0) * span) as f32
            })
            .collect::<Vec<f32>>();
        let exact = |v: f32| thresholds.partition_point(|t| *t <= v) as u8;
        let spanf = span as f32;
        let (lo, scale, lut) = if spanf > 0.0 && spanf.is_finite() {
            let scale = LUT_BINS as f32 / spanf;
            let edge = |b: usize| vmin as f32 + b as f32 / scale;
            let lut = (0..LUT_BINS).map(|b| (exact(edge(b)), exact(edge(b + 1)))).chain([(255, 255), (0, 0)]).collect();
            (vmin as f32, scale, lut)
        } else {
            (0.0, 0.0, Vec::new())
        };
        StretchMap { thresholds, lo, scale, lut }
    }

    /// Map a row of values (minus `bias`) to grey levels. Kept out of line:
    /// inlined into the renderer its loop lost its registers to spills.
    #[inline(never)]
    pub fn map_row(&self, src: &[f32], bias: f32, out: &mut [u8]) {
        if self.lut.is_empty() {
            for (o, v) in out.iter_mut().zip(src) {
                *o = self.grey(*v - bias);
            }
            return;
        }
        let (lo, scale) = (self.lo + bias, self.scale);
        // bins four at a time; the two extra bins are "at or above the upper
        // limit" (white) and "below the lower limit, or NaN" (black)
        let lut: &[(u8, u8); LUT_BINS + 2] = self.lut[..].try_into().expect("LUT size");
        let top = LUT_BINS as f32;
        let (above, below) = (LUT_BINS as u32, LUT_BINS as u32 + 1);
        let n = src.len().min(out.len());
        let whole = n / 4 * 4;
        for (o, c) in out[..whole].chunks_exact_mut(4).zip(src[..whole].chunks_exact(4)) {
            let b = crate::lanes::lut_bins([c[0], c[1], c[2], c[3]], lo, scale, top, above, below);
            for k in 0..4 {
                let (g0, g1) = lut[b[k] as usize];
                o[k] = if g0 == g1 { g0 } else { self.grey(c[k] - bias) };
            }
        }
        for (o, v) in out[whole..n].iter_mut().zip(&src[whole..n]) {
            let pos = (*v - lo) * scale;
            *o = if pos >= 0.0 && pos < top {
                let (a, b) = lut[pos as usize];
                if a == b { a } else { self.grey(*v - bias) }
            } else if pos >= top {
                255
            } else {
                0
            };
        }
    }

    /// Grey level of a value (NaN → 0).
    #[inline]
    pub fn grey(&self, v: f32) -> u8 {
        if v.is_nan() {
            return 0;
        }
        self.thresholds.partition_point(|t| *t <= v) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(v: f64, lo: f64, hi: f64, s: Stretch) -> u8 {
        let x = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        (s.apply(x) * 256.0).floor().min(255.0) as u8
    }

    #[test]
    fn thresholds_agree_with_direct_formula() {
        for s in [Stretch::Asinh(0.1), Stretch::Sqrt, Stretch::Linear] {
            let m = StretchMap::new(100.0, 1100.0, s);
            let mut off = 0;
            for i in 0..20000 {
                let v = 50.0 + i as f64 * 0.06;
                let (a, b) = (m.grey(v as f32), direct(v, 100.0, 1100.0, s));
                assert!((a as i32 - b as i32).abs() <= 1, "{s:?} {v}: {a} vs {b}");
                off += (a != b) as u32;
            }
            assert!(off < 40, "{s:?}: {off} values off by one");
        }
    }

    #[test]
    fn row_mapping_equals_the_exact_search() {
        for s in [Stretch::Asinh(0.1), Stretch::Sqrt] {
            let m = StretchMap::new(-50.0, 950.0, s);
            let mut src: Vec<f32> = (0..100_000).map(|i| -100.0 + i as f32 * 0.0111).collect();
            // non-finite values inside the four-lane groups and in the tail
            src.splice(8..8, [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2e30]);
            src.extend([f32::NAN, 949.0, 1e9]);
            let mut out = vec![0u8; src.len()];
            m.map_row(&src, 3.0, &mut out);
            for (v, g) in src.iter().zip(&out) {
                assert_eq!(*g, m.grey(*v - 3.0), "{s:?} {v}");
            }
        }
    }

    #[test]
    fn clamps_and_nan() {
        let m = StretchMap::new(0.0, 1.0, Stretch::Asinh(0.1));
        assert_eq!(m.grey(-5.0), 0);
        assert_eq!(m.grey(5.0), 255);
        assert_eq!(m.grey(f32::NAN), 0);
        assert_eq!(m.grey(0.1), 75); // asinh(1)/asinh(10) = 0.294: faint values lifted
    }
}
