//! Pixel access through cfitsio on the corpus: tile-compressed images
//! decompress to the uncompressed original, BLANK pixels read as NaN,
//! BSCALE/BZERO are applied.

use koa_dep::fits::pixels::{Image, Pixels};
use koa_dep_tests::data_dir;

fn pixels(name: &str, hdu: usize) -> (u64, u64, Vec<f32>) {
    let mut img = Image::open(&data_dir().join(name), hdu, true).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (c, r) = img.shape();
    (c, r, img.read_rows(0, r).unwrap())
}

#[test]
fn compressed_m13_equals_the_uncompressed_image() {
    let (c, r, plain) = pixels("astropy/m13.fits", 0);
    assert_eq!((c, r), (300, 300));
    for f in ["astropy/m13_rice.fits", "astropy/m13_gzip.fits", "astropy/m13_hcomp.fits", "astropy/m13_plio.fits"] {
        let (c2, r2, px) = pixels(f, 1);
        assert_eq!((c2, r2), (c, r), "{f}");
        assert_eq!(px, plain, "{f}");
    }
}

#[test]
fn blank_pixels_are_nan_and_scaling_is_applied() {
    // one int64 pixel equal to BLANK (= 2)
    let (_, _, px) = pixels("astropy/blank.fits", 0);
    assert_eq!(px.len(), 1);
    assert!(px[0].is_nan(), "a BLANK pixel reads as NaN, not {}", px[0]);
    // scale.fits: int16 with BSCALE/BZERO → physical values with fractions
    let f = koa_dep::fits::load(&data_dir().join("astropy/scale.fits")).unwrap();
    let h = &f.hdus[0];
    assert!(h.value("BSCALE").is_some() && h.value("BZERO").is_some());
    let (_, _, px) = pixels("astropy/scale.fits", 0);
    assert!(px.iter().any(|v| v.fract() != 0.0), "scaled values are not raw integers");
}

#[test]
fn statistics_of_compressed_float_images() {
    for f in ["fitsio-py/test_rice_dither2_seed42.fits.fz", "fitsio-py/test_gzip_compressed_image.fits.fz", "astropy/compressed_with_nan.fits"] {
        let mut img = Image::open(&data_dir().join(f), 1, false).unwrap();
        let s = img.stats(None, None).unwrap();
        assert!(s.finite > 0 && s.mean.is_finite() && s.std.is_finite(), "{f}: {s:?}");
        assert!(s.finite <= s.count);
    }
}

/// The direct reader of uncompressed images equals cfitsio on every image
/// HDU of the corpus it accepts (every BITPIX, BSCALE/BZERO, BLANK), and on
/// the generated frames of every instrument.
#[test]
fn direct_reads_equal_cfitsio() {
    use koa_dep::fits::pixels::{Direct, Layout};
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["astropy", "fitsio-py", "kcwidrp", "keckdrpframework", "nirc2-lev0", "pypeit"] {
        for e in std::fs::read_dir(data_dir().join(dir)).unwrap().flatten() {
            files.push(e.path());
        }
    }
    let generated = tempfile::tempdir().unwrap();
    for (i, instrument) in koa_dep::samples::frames::INSTRUMENTS.iter().enumerate() {
        let (name, f) = koa_dep::samples::frames::frame(instrument, koa_dep::samples::frames::Size::Small, i as u32).unwrap();
        let p = generated.path().join(name);
        f.write(&p).unwrap();
        files.push(p);
    }
    let (mut compared, mut bitpixes) = (0, std::collections::BTreeSet::new());
    for path in files {
        let Ok(file) = koa_dep::fits::load(&path) else { continue };
        if file.needs_repair() || !file.corrupted.is_empty() {
            continue;
        }
        for h in &file.hdus {
            let Some(layout) = Layout::of(h, file.size) else { continue };
            let Ok(mut theirs) = Image::open(&path, h.index, h.bitpix > 0) else { continue };
            let want = theirs.read_rows(0, layout.rows).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut ours = Direct::open(&path, layout, h.bitpix > 0).unwrap();
            let got = ours.read_rows(0, layout.rows).unwrap();
            assert_eq!(got.len(), want.len(), "{} HDU {}", path.display(), h.index);
            let same = got.iter().zip(&want).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{} HDU {} (BITPIX {})", path.display(), h.index, h.bitpix);
            // the zscale sample and the saturation count take the direct reader's own paths
            assert_eq!(ours.sample(None, 1000).unwrap(), theirs.sample(None, 1000).unwrap(), "{} HDU {}", path.display(), h.index);
            // boxes with one sample every few rows, several per row, and more asked than there are
            let inner = koa_dep::fits::pixels::Rect {
                x0: layout.cols / 4,
                y0: layout.rows / 4,
                nx: (layout.cols / 2).max(1),
                ny: (layout.rows / 2).max(1),
            };
            for max in [7, 1000, inner.nx * inner.ny + 5] {
                assert_eq!(ours.sample(Some(inner), max).unwrap(), theirs.sample(Some(inner), max).unwrap(), "{} HDU {} max {max}", path.display(), h.index);
            }
            // a run of whole rows from the middle (decoded straight into the result), and past the end
            let (y0, n) = (layout.rows / 3, (layout.rows / 2).max(1).min(layout.rows - layout.rows / 3));
            let (a, b) = (ours.read_rows(y0, n).unwrap(), theirs.read_rows(y0, n).unwrap());
            assert!(a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan())), "{} HDU {} rows {y0}+{n}", path.display(), h.index);
            assert!(ours.read_rows(layout.rows - 1, 2).is_err(), "{} HDU {}: rows past the end", path.display(), h.index);
            // one row, some of its columns (overscan of one row)
            let one = koa_dep::fits::pixels::Rect { ny: 1, ..inner };
            let (a, b) = (ours.read_section(one).unwrap(), theirs.read_section(one).unwrap());
            assert!(a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan())), "{} HDU {} one row", path.display(), h.index);
            let finite: Vec<f32> = want.iter().copied().filter(|v| v.is_finite()).collect();
            if let Some(t) = finite.get(finite.len() / 3) {
                for threshold in [*t as f64, *t as f64 + 0.5, f64::MIN, f64::MAX] {
                    assert_eq!(
                        ours.count_at_least(None, threshold).unwrap(),
                        theirs.count_at_least(None, threshold).unwrap(),
                        "{} HDU {} threshold {threshold}",
                        path.display(),
                        h.index
                    );
                }
            }
            let whole = koa_dep::fits::pixels::Rect { x0: 0, y0: 0, nx: layout.cols, ny: layout.rows };
            if layout.cols >= 2 && layout.rows >= 2 {
                let (a, b) = (ours.read_binned(whole, 2).unwrap(), theirs.read_binned(whole, 2).unwrap());
                assert!(a.iter().zip(&b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan())), "{} HDU {} binned", path.display(), h.index);
            }
            assert_eq!(ours.load().unwrap().stats(None, None).unwrap().finite, theirs.stats(None, None).unwrap().finite);
            compared += 1;
            bitpixes.insert(h.bitpix);
        }
    }
    assert!(compared >= 20, "{compared} HDUs compared");
    for b in [8, 16, 32, 64, -32, -64] {
        assert!(bitpixes.contains(&b) || b == 8 || b == -64, "BITPIX {b} compared: {bitpixes:?}");
    }
    assert!(bitpixes.len() >= 4, "{bitpixes:?}");
}
