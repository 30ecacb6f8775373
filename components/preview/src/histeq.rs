//! Histogram equalisation as scikit-image's `equalize_hist` followed by
//! matplotlib's linear normalisation: integer data get one bin per integer
//! value between min and max, float data 256 equal bins; each value maps to
//! the normalised CDF (interpolated at bin centres), rescaled from its own
//! minimum to its maximum.

/// Integer ranges wider than this fall back to 256 bins (memory bound).
const MAX_INT_BINS: u64 = 1 << 22;

#[derive(Clone, Debug)]
pub struct Equalizer {
    lo: f64,
    width: f64,
    integer: bool,
    /// Bins of the histogram; `hist` has one more, where the four-lane
    /// loops drop non-finite values (never read).
    nbins: usize,
    hist: Vec<u64>,
    cdf: Vec<f64>,
    out_lo: f64,
    out_hi: f64,
    /// Integer data: the grey level of each bin (filled by `finish`).
    lut: Vec<u8>,
}

impl Equalizer {
    /// Prepare bins for values in [lo, hi].
    pub fn new(lo: f32, hi: f32, integer: bool) -> Self {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo as f64, hi as f64) } else { (0.0, 0.0) };
        let int_bins = (hi - lo) as u64 + 1;
        let integer = integer && int_bins <= MAX_INT_BINS;
        let nbins = if integer { int_bins as usize } else { 256 };
        let width = if integer { 1.0 } else { ((hi - lo) / 256.0).max(f64::MIN_POSITIVE) };
        Equalizer { lo, width, integer, nbins, hist: vec![0; nbins + 1], cdf: Vec::new(), out_lo: 0.0, out_hi: 1.0, lut: Vec::new() }
    }

    fn bin(&self, v: f64) -> usize {
        // integer bins: round(v − lo), as floor(x + 0.5) — the same for every
        // x ≥ 0 made of f32 values (exact in f64), and both clamp below 0;
        // `round` is a libm call on wasm, `floor` one instruction
        let i = if self.integer { (v - self.lo + 0.5).floor() } else { ((v - self.lo) / self.width).floor() };
        (i.max(0.0) as usize).min(self.nbins - 1)
    }

    /// Count a row of values (minus `bias`); integer bins four at a time.
    pub fn add_row(&mut self, row: &[f32], bias: f32) {
        if !self.integer {
            for v in row {
                self.add(*v - bias);
            }
            return;
        }
        // the padding of the last group (NaN) lands in the extra bin
        let (last, trash) = (self.nbins as u32 - 1, self.nbins as u32);
        let (lo, hist) = (self.lo, &mut self.hist);
        crate::lanes::for_fours(row, |x| {
            for b in crate::lanes::int_bins(x.map(|v| v - bias), lo, last, trash) {
                hist[b as usize] += 1;
            }
        });
    }

    pub fn add(&mut self, v: f32) {
        if v.is_finite() {
            let b = self.bin(v as f64);
            self.hist[b] += 1;
        }
    }

    /// Build the CDF once every value was added.
    pub fn finish(&mut self) {
        let counted = &self.hist[..self.nbins];
        let total: u64 = counted.iter().sum();
        let mut run = 0u64;
        self.cdf = counted
            .iter()
            .map(|h| {
                run += h;
                if total == 0 { 0.0 } else { run as f64 / total as f64 }
            })
            .collect();
        // the equalised image's own range: values at the data min and max
        self.out_lo = self.cdf.first().copied().unwrap_or(0.0);
        self.out_hi = self.cdf.last().copied().unwrap_or(1.0);
        if self.integer {
            // one grey level per integer bin: a lookup per pixel instead of the CDF arithmetic
            // and black in the extra bin of the non-finite values
            self.lut = self.cdf.iter().map(|c| self.grey_of_cdf(*c)).chain([0]).collect();
        }
    }

    fn center(&self, i: usize) -> f64 {
        if self.integer { self.lo + i as f64 } else { self.lo + (i as f64 + 0.5) * self.width }
    }

    /// CDF value of `v` (numpy `interp` at bin centres).
    pub fn cdf(&self, v: f64) -> f64 {
        if self.integer {
            return self.cdf[self.bin(v)];
        }
        let pos = (v - self.lo) / self.width - 0.5;
        if pos <= 0.0 {
            return self.cdf[0];
        }
        let i = pos.floor() as usize;
        if i + 1 >= self.cdf.len() {
            return *self.cdf.last().unwrap_or(&1.0);
        }
        let t = (v - self.center(i)) / self.width;
        self.cdf[i] + t * (self.cdf[i + 1] - self.cdf[i])
    }

    /// Map a row of values (minus `bias`) to grey levels.
    pub fn map_row(&self, src: &[f32], bias: f32, out: &mut [u8]) {
        if self.lut.is_empty() {
            for (o, v) in out.iter_mut().zip(src) {
                *o = self.grey(*v - bias);
            }
            return;
        }
        let (last, trash) = (self.nbins as u32 - 1, self.nbins as u32);
        crate::lanes::map_fours(src, out, |x| {
            crate::lanes::int_bins(x.map(|v| v - bias), self.lo, last, trash).map(|b| self.lut[b as usize])
        });
    }

    #[inline]
    pub fn grey(&self, v: f32) -> u8 {
        if !v.is_finite() {
            return 0;
        }
        self.grey_of_cdf(self.cdf(v as f64))
    }

    /// The grey level of a CDF value: rescaled from the image's own range.
    fn grey_of_cdf(&self, c: f64) -> u8 {
        let span = self.out_hi - self.out_lo;
        if span <= 0.0 {
            return 0;
        }
        let y = (c - self.out_lo) / span;
        (y * 256.0).floor().clamp(0.0, 255.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_integers_map_linearly() {
        let mut e = Equalizer::new(0.0, 255.0, true);
        for v in 0..256 {
            e.add(v as f32);
        }
        e.finish();
        assert_eq!(e.grey(0.0), 0);
        assert_eq!(e.grey(255.0), 255);
        let mid = e.grey(128.0) as i32;
        assert!((mid - 128).abs() <= 1, "{mid}");
    }

    #[test]
    fn skewed_data_is_spread() {
        // 90% of pixels near 100, a few bright ones: equalisation gives the
        // crowded values most of the grey range.
        let mut e = Equalizer::new(100.0, 10000.0, true);
        let mut vals = Vec::new();
        for i in 0..900 {
            vals.push(100.0 + (i % 50) as f32);
        }
        for i in 0..100 {
            vals.push(1000.0 + i as f32 * 90.0);
        }
        for v in &vals {
            e.add(*v);
        }
        e.finish();
        assert!(e.grey(125.0) > 100, "{}", e.grey(125.0));
        assert_eq!(e.grey(10000.0), 255);
    }

    #[test]
    fn the_integer_lookup_equals_the_cdf_arithmetic() {
        let mut e = Equalizer::new(-40.0, 3000.0, true);
        let vals: Vec<f32> = (0..20_000).map(|i| -40.0 + ((i * 7919) % 3041) as f32 * ((i % 3) as f32 * 0.5 + 0.2)).collect();
        for v in &vals {
            e.add(*v);
        }
        e.finish();
        assert!(!e.lut.is_empty());
        let mut row = vals.clone();
        row.extend([f32::NAN, f32::INFINITY, -1e9, 1e9, 2999.5, -40.5]);
        let mut out = vec![0u8; row.len()];
        e.map_row(&row, 2.5, &mut out);
        for (v, g) in row.iter().zip(&out) {
            assert_eq!(*g, e.grey(*v - 2.5), "{v}");
        }
    }

    #[test]
    fn counting_rows_equals_counting_values() {
        for integer in [true, false] {
            let row: Vec<f32> = (0..1003).map(|i| if i % 97 == 0 { f32::NAN } else { ((i * 31) % 509) as f32 * 0.5 }).collect();
            let (mut a, mut b) = (Equalizer::new(-3.0, 260.0, integer), Equalizer::new(-3.0, 260.0, integer));
            a.add_row(&row, 1.5);
            for v in &row {
                b.add(*v - 1.5);
            }
            // the extra bin collects the non-finite values and is never read
            assert_eq!(a.hist[..a.nbins], b.hist[..b.nbins], "integer {integer}");
        }
    }

    #[test]
    fn float_bins_interpolate() {
        let mut e = Equalizer::new(0.0, 1.0, false);
        for i in 0..1000 {
            e.add(i as f32 / 999.0);
        }
        e.finish();
        let g = e.grey(0.5) as i32;
        assert!((g - 128).abs() <= 2, "{g}");
    }
}
