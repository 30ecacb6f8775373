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
