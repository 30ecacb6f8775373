//! IRAF zscale limits, computed as astropy's `ZScaleInterval` does (1000
//! samples, contrast 0.25, max reject 0.5, min 5 pixels, 2.5 sigma, 5
//! iterations). The caller provides the stride sample (the host draws it);
//! this module sorts it and runs the iterative line fit.

pub const N_SAMPLES: usize = 1000;
const CONTRAST: f64 = 0.25;
const MAX_REJECT: f64 = 0.5;
const MIN_NPIXELS: usize = 5;
const KREJ: f64 = 2.5;
const MAX_ITERATIONS: usize = 5;

/// The stride sample astropy takes from flattened values: finite values,
/// every max(1, N/1000)-th, at most 1000.
pub fn stride_sample(values: &[f32]) -> Vec<f32> {
    let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let stride = ((finite.len() as f64 / N_SAMPLES as f64).max(1.0)) as usize;
    finite.into_iter().step_by(stride).take(N_SAMPLES).collect()
}

/// zscale (vmin, vmax) of a sample (unsorted; non-finite values are dropped).
pub fn zscale(sample: &[f32]) -> (f64, f64) {
    let mut s: Vec<f64> = sample.iter().map(|v| *v as f64).filter(|v| v.is_finite()).collect();
    if s.is_empty() {
        return (0.0, 1.0);
    }
    s.sort_by(f64::total_cmp);
    let npix = s.len();
    let (mut vmin, mut vmax) = (s[0], s[npix - 1]);
    let minpix = MIN_NPIXELS.max((npix as f64 * MAX_REJECT) as usize);
    let ngrow = 1usize.max((npix as f64 * 0.01) as usize);
    let mut bad = vec![false; npix];
    let mut ngood = npix;
    let mut last_ngood = npix + 1;
    let mut slope = 0.0;
    for _ in 0..MAX_ITERATIONS {
        if ngood >= last_ngood || ngood < minpix {
            break;
        }
        let (b, a) = fit_line(&s, &bad);
        slope = b;
        let flat: Vec<f64> = s.iter().enumerate().map(|(i, y)| y - (a + b * i as f64)).collect();
        let good: Vec<f64> = flat.iter().zip(&bad).filter(|(_, b)| !**b).map(|(f, _)| *f).collect();
        let threshold = KREJ * pop_std(&good);
        for (i, f) in flat.iter().enumerate() {
            if *f < -threshold || *f > threshold {
                bad[i] = true;
            }
        }
        bad = dilate(&bad, ngrow);
        last_ngood = ngood;
        ngood = bad.iter().filter(|b| !**b).count();
    }
    if ngood >= minpix {
        let slope = slope / CONTRAST;
        let center = (npix - 1) / 2;
        let median = if npix % 2 == 1 { s[npix / 2] } else { (s[npix / 2 - 1] + s[npix / 2]) / 2.0 };
        vmin = vmin.max(median - (center as f64 - 1.0) * slope);
        vmax = vmax.min(median + (npix - center) as f64 * slope);
    }
    (vmin, vmax)
}

/// Least-squares line through the good points: (slope, intercept).
fn fit_line(y: &[f64], bad: &[bool]) -> (f64, f64) {
    let pts: Vec<(f64, f64)> = y.iter().enumerate().filter(|(i, _)| !bad[*i]).map(|(i, v)| (i as f64, *v)).collect();
    let n = pts.len() as f64;
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = if sxx == 0.0 { 0.0 } else { sxy / sxx };
    (b, my - b * mx)
}

fn pop_std(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt()
}

/// numpy `convolve(mask, ones(k), mode='same') != 0`: window [i − k/2, i − k/2 + k − 1].
fn dilate(mask: &[bool], k: usize) -> Vec<bool> {
    let n = mask.len() as isize;
    let left = (k / 2) as isize;
    (0..n)
        .map(|i| {
            let lo = (i - left).max(0);
            let hi = (i - left + k as isize - 1).min(n - 1);
            (lo..=hi).any(|j| mask[j as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ramp_limits() {
        // A clean ramp 0..999: the fitted slope is 1, limits clipped to data range.
        let v: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let (lo, hi) = zscale(&stride_sample(&v));
        // astropy: ZScaleInterval().get_limits(np.arange(1000.)) == (0.0, 999.0)
        assert_eq!((lo, hi), (0.0, 999.0));
    }

    #[test]
    fn outliers_are_rejected() {
        // flat field of 100 with a few hot pixels: limits stay near 100
        let mut v = vec![100.0f32; 10000];
        for i in (0..10000).step_by(97) {
            v[i] = 100.0 + (i % 7) as f32 * 0.1;
        }
        v[5000] = 60000.0;
        let (lo, hi) = zscale(&stride_sample(&v));
        assert!(lo >= 99.0 && hi <= 101.0, "{lo} {hi}");
    }

    #[test]
    fn stride_matches_astropy() {
        let v: Vec<f32> = (0..2500).map(|i| i as f32).collect();
        let s = stride_sample(&v);
        assert_eq!(s.len(), 1000);
        assert_eq!(s[1], 2.0);
        let v: Vec<f32> = (0..999).map(|i| i as f32).collect();
        assert_eq!(stride_sample(&v).len(), 999);
    }

    #[test]
    fn dilation_window() {
        let m = [false, false, false, true, false, false];
        assert_eq!(dilate(&m, 2), vec![false, false, false, true, true, false]);
        assert_eq!(dilate(&m, 3), vec![false, false, true, true, true, false]);
    }
}
