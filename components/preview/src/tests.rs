use super::*;

/// An in-memory source.
pub struct Mem {
    pub cols: u32,
    pub rows: u32,
    pub data: Vec<f32>,
    pub integer: bool,
}

impl Source for Mem {
    fn shape(&self) -> (u32, u32) {
        (self.cols, self.rows)
    }
    fn is_integer(&self) -> bool {
        self.integer
    }
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String> {
        Ok(self.data[(y0 * self.cols) as usize..((y0 + n) * self.cols) as usize].to_vec())
    }
    fn read_section(&self, r: Region) -> Result<Vec<f32>, String> {
        let mut out = Vec::new();
        for y in r.y0..r.y0 + r.ny {
            out.extend_from_slice(&self.data[(y * self.cols + r.x0) as usize..(y * self.cols + r.x0 + r.nx) as usize]);
        }
        Ok(out)
    }
    fn sample(&self, r: Option<Region>, max: u32) -> Result<Vec<(u32, f32)>, String> {
        let r = r.unwrap_or(Region { x0: 0, y0: 0, nx: self.cols, ny: self.rows });
        let mut finite = Vec::new();
        for y in r.y0..r.y0 + r.ny {
            for x in r.x0..r.x0 + r.nx {
                let v = self.data[(y * self.cols + x) as usize];
                if v.is_finite() {
                    finite.push((y, v));
                }
            }
        }
        let stride = ((finite.len() as f64 / max as f64).max(1.0)) as usize;
        Ok(finite.into_iter().step_by(stride).take(max as usize).collect())
    }
}

fn ramp(cols: u32, rows: u32) -> Mem {
    // value = row index: row 0 dark, last row bright
    let data = (0..rows).flat_map(|r| std::iter::repeat_n(r as f32, cols as usize)).collect();
    Mem { cols, rows, data, integer: true }
}

#[test]
fn origin_lower_puts_row_zero_at_the_bottom() {
    let src = ramp(8, 100);
    let plan = Plan::single(8, 100, Scaling::ZscaleAsinh, 92);
    let img = render_grey(&plan, &[&src]).unwrap();
    assert_eq!((img.width, img.height), (8, 100));
    // top row of the picture is the last data row (brightest)
    assert!(img.pixels[0] > img.pixels[(99 * 8) as usize]);
    assert_eq!(img.pixels[(99 * 8) as usize], 0);
}

#[test]
fn jpeg_has_the_data_dimensions() {
    let src = ramp(40, 30);
    let bytes = render(&Plan::single(40, 30, Scaling::ZscaleAsinh, 92), &[&src]).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    // SOF0 marker holds height then width
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let h = u16::from_be_bytes([bytes[sof + 5], bytes[sof + 6]]);
    let w = u16::from_be_bytes([bytes[sof + 7], bytes[sof + 8]]);
    assert_eq!((w, h), (40, 30));
}

#[test]
fn binning_averages_blocks() {
    let src = ramp(8, 100);
    let mut plan = Plan::single(8, 100, Scaling::ZscaleAsinh, 92);
    plan.bin = 2;
    plan.origin_lower = false;
    let img = render_grey(&plan, &[&src]).unwrap();
    assert_eq!((img.width, img.height), (4, 50));
    assert!(img.pixels[0] < img.pixels[49 * 4]);
}

#[test]
fn rotation_matches_numpy_rot90() {
    let g = Grey { width: 3, height: 2, pixels: vec![1, 2, 3, 4, 5, 6] };
    // np.rot90([[1,2,3],[4,5,6]], -1) == [[4,1],[5,2],[6,3]]
    assert_eq!(rotate(g.clone(), Rotation::Cw90).pixels, vec![4, 1, 5, 2, 6, 3]);
    // np.rot90([[1,2,3],[4,5,6]]) == [[3,6],[2,5],[1,4]]
    assert_eq!(rotate(g.clone(), Rotation::Ccw90).pixels, vec![3, 6, 2, 5, 1, 4]);
    assert_eq!(rotate(g, Rotation::HalfTurn).pixels, vec![6, 5, 4, 3, 2, 1]);
}

#[test]
fn mosaic_places_flips_and_removes_bias() {
    // two 4x4 tiles with a 2-column overscan at value 1000; data = 1000 + k
    let mk = |k: f32| Mem {
        cols: 6,
        rows: 4,
        data: (0..4).flat_map(|_| [1000.0 + k, 1000.0 + k, 1000.0 + k, 1000.0 + k + 10.0, 1000.0, 1000.0]).collect(),
        integer: true,
    };
    let (a, b) = (mk(0.0), mk(100.0));
    let tile = |x, flip_x| Tile {
        crop: Region { x0: 0, y0: 0, nx: 4, ny: 4 },
        limits_box: None,
        bias: Some((4, 2)),
        flip_x,
        flip_y: false,
        x,
        y: 0,
    };
    let plan = Plan {
        tiles: vec![tile(0, false), tile(4, true)],
        per_tile_limits: true,
        nonnegative: true,
        scaling: Scaling::ZscaleAsinh,
        rotate: Rotation::None,
        origin_lower: false,
        bin: 1,
        width: None,
        height: None,
        quality: 92,
    };
    let img = render_grey(&plan, &[&a, &b]).unwrap();
    assert_eq!((img.width, img.height), (8, 4));
    let row = &img.pixels[0..8];
    // tile a: bias removed → 0,0,0,10: last column brighter
    assert!(row[3] > row[0]);
    // tile b flipped: its bright column (value 110) lands at canvas x = 4
    assert!(row[4] >= row[7]);
    assert_eq!(row[5], row[6]);
}

#[test]
fn histogram_equalisation_renders() {
    let src = ramp(16, 64);
    let plan = Plan::single(16, 64, Scaling::HistogramEqualize, 92);
    let img = render_grey(&plan, &[&src]).unwrap();
    assert_eq!(img.pixels[0], 255);
    assert_eq!(img.pixels[(63 * 16) as usize], 0);
}

#[test]
fn resize_keeps_aspect() {
    let src = ramp(100, 40);
    let mut plan = Plan::single(100, 40, Scaling::ZscaleAsinh, 75);
    plan.width = Some(50);
    let img = render_grey(&plan, &[&src]).unwrap();
    assert_eq!((img.width, img.height), (50, 20));
}

#[test]
fn a_height_with_the_width_fixes_the_size() {
    // 100 x 41 to width 50 keeps the aspect as int(41 / 2) = 20 rows; an
    // instrument that rounds otherwise (SCALES: Pillow's thumbnail) says 21
    let src = ramp(100, 41);
    let mut plan = Plan::single(100, 41, Scaling::ZscaleAsinh, 75);
    plan.width = Some(50);
    assert_eq!(render_grey(&plan, &[&src]).unwrap().height, 20);
    plan.height = Some(21);
    let img = render_grey(&plan, &[&src]).unwrap();
    assert_eq!((img.width, img.height), (50, 21));
    assert!(render_strip_grey(&plan, &[&src], (0.0, 40.0), 0, 8).is_err(), "resized previews are rendered whole");
}

#[test]
fn bad_plans_are_errors_not_panics() {
    let src = ramp(8, 8);
    let mut plan = Plan::single(9, 8, Scaling::ZscaleAsinh, 92);
    assert!(render(&plan, &[&src]).is_err());
    plan = Plan::single(8, 8, Scaling::ZscaleAsinh, 92);
    assert!(render(&plan, &[]).is_err());
    plan.bin = 16;
    assert!(render(&plan, &[&src]).is_err());
}

#[test]
fn binned_tiles_with_bias_equal_binning_the_bias_free_pixels() {
    // per-row bias in 2 overscan columns; data = bias + a smooth pattern;
    // a few NaNs (blank pixels). Binning on the host side (block means
    // minus the rows' mean bias) must give what binning the bias-free
    // pixels gives.
    let (cols, rows) = (34u32, 24u32);
    let mut data = Vec::new();
    let mut clean = Vec::new();
    for y in 0..rows {
        let bias = 1000.0 + (y % 5) as f32 * 3.0;
        for x in 0..cols {
            let v = ((x * 7 + y * 3) % 50) as f32;
            if x >= 32 {
                data.push(bias);
            } else {
                data.push(bias + v);
                clean.push(v);
            }
        }
    }
    let src = Mem { cols, rows, data, integer: true };
    let flat = Mem { cols: 32, rows, data: clean, integer: true };
    let tile = |bias| Tile { crop: Region { x0: 0, y0: 0, nx: 32, ny: rows }, limits_box: None, bias, flip_x: true, flip_y: false, x: 0, y: 0 };
    let plan = |bias| Plan {
        tiles: vec![tile(bias)],
        per_tile_limits: true,
        nonnegative: false,
        scaling: Scaling::ZscaleAsinh,
        rotate: Rotation::Cw90,
        origin_lower: true,
        bin: 2,
        width: None,
        height: None,
        quality: 92,
    };
    let ours = render_grey(&plan(Some((32, 2))), &[&src]).unwrap();
    let want = render_grey(&plan(None), &[&flat]).unwrap();
    assert_eq!((ours.width, ours.height), (12, 16));
    let worst = ours.pixels.iter().zip(&want.pixels).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(worst <= 1, "grey levels differ by {worst}");
    // the default block mean skips NaNs and gives NaN for an all-blank block
    let mut holes = Mem { cols: 4, rows: 2, data: vec![1.0, f32::NAN, f32::NAN, f32::NAN, 3.0, f32::NAN, f32::NAN, f32::NAN], integer: false };
    assert_eq!(holes.read_binned(Region { x0: 0, y0: 0, nx: 4, ny: 2 }, 2).unwrap()[0], 2.0);
    assert!(holes.read_binned(Region { x0: 0, y0: 0, nx: 4, ny: 2 }, 2).unwrap()[1].is_nan());
    holes.data[2] = 5.0;
    assert_eq!(holes.read_binned(Region { x0: 0, y0: 0, nx: 4, ny: 2 }, 2).unwrap()[1], 5.0);
}

#[test]
fn blocked_rotation_equals_the_plain_one() {
    let (w, h) = (131usize, 70usize);
    let g = Grey { width: w as u32, height: h as u32, pixels: (0..w * h).map(|i| (i * 31 % 251) as u8).collect() };
    let cw = rotate(g.clone(), Rotation::Cw90);
    let ccw = rotate(g.clone(), Rotation::Ccw90);
    for r in 0..w {
        for c in 0..h {
            assert_eq!(cw.pixels[r * h + c], g.pixels[(h - 1 - c) * w + r]);
            assert_eq!(ccw.pixels[r * h + c], g.pixels[c * w + (w - 1 - r)]);
        }
    }
}

#[test]
fn row_bias_is_the_truncated_numpy_median() {
    for n in [1usize, 2, 3, 8, 51, 100] {
        let mut v: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32) * 1.5 + 0.25).collect();
        v.push(f32::NAN);
        let mut sorted: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        let m = sorted.len();
        let want = if m % 2 == 1 { sorted[m / 2] as f64 } else { (sorted[m / 2 - 1] as f64 + sorted[m / 2] as f64) / 2.0 };
        assert_eq!(median_trunc(&v, &mut Vec::new()), want.trunc() as f32, "n={n}");
    }
    assert!(median_trunc(&[f32::NAN], &mut Vec::new()).is_nan());
}

/// A 2×2 mosaic of tiles with overscan, flips and a per-row bias: the
/// layout that strips must reproduce (DEIMOS-like, small).
fn strip_mosaic(rotate: Rotation, origin_lower: bool, bin: u32) -> (Plan, Vec<Mem>) {
    let (cols, rows) = (45u32, 61u32);
    let mk = |k: u32| {
        let mut data = Vec::new();
        for y in 0..rows {
            let bias = 500.0 + ((y * 7 + k) % 11) as f32;
            for x in 0..cols {
                data.push(if x >= 40 { bias } else { bias + ((x * 13 + y * 29 + k * 101) % 997) as f32 });
            }
        }
        Mem { cols, rows, data, integer: true }
    };
    let srcs: Vec<Mem> = (0..4).map(mk).collect();
    let tile = |i: u32| Tile {
        crop: Region { x0: 1, y0: 2, nx: 38, ny: 58 },
        limits_box: Some(Region { x0: 4, y0: 6, nx: 30, ny: 50 }),
        bias: Some((40, 4)),
        flip_x: i % 2 == 1,
        flip_y: i >= 2,
        x: (i % 2) * 38,
        y: (i / 2) * 58,
    };
    let plan = Plan {
        tiles: (0..4).map(tile).collect(),
        per_tile_limits: true,
        nonnegative: true,
        scaling: Scaling::ZscaleAsinh,
        rotate,
        origin_lower,
        bin,
        width: None,
        height: None,
        quality: 92,
    };
    (plan, srcs)
}

#[test]
fn strips_are_the_rows_of_the_whole_picture() {
    for rotate in [Rotation::None, Rotation::Cw90, Rotation::Ccw90, Rotation::HalfTurn] {
        for origin_lower in [false, true] {
            for bin in [1, 2] {
                let (plan, srcs) = strip_mosaic(rotate, origin_lower, bin);
                let refs: Vec<&dyn Source> = srcs.iter().map(|s| s as &dyn Source).collect();
                let whole = render_grey(&plan, &refs).unwrap();
                let lay = layout(&plan, &refs).unwrap();
                assert_eq!((lay.width, lay.height), (whole.width, whole.height));
                let limits = lay.limits.unwrap();
                let case = format!("{rotate:?} lower={origin_lower} bin={bin}");
                // any cut, including ones through a tile and at tile edges
                for cut in [1, 8, 29, whole.height / 2, whole.height - 1] {
                    let top = render_strip_grey(&plan, &refs, limits, 0, cut).unwrap();
                    let bottom = render_strip_grey(&plan, &refs, limits, cut, whole.height - cut).unwrap();
                    assert_eq!((top.width, top.height), (whole.width, cut), "{case}");
                    let w = whole.width as usize;
                    assert_eq!(top.pixels, whole.pixels[..cut as usize * w], "{case} cut {cut}: top");
                    assert_eq!(bottom.pixels, whole.pixels[cut as usize * w..], "{case} cut {cut}: bottom");
                }
                // JPEG strips joined = the whole picture encoded with the same restarts
                let want = jpeg::encode_strip(&whole, plan.quality).unwrap();
                for cuts in [vec![16], vec![8, 24], vec![whole.height / 16 * 8]] {
                    let mut bounds = vec![0];
                    bounds.extend(cuts);
                    bounds.push(whole.height);
                    let strips: Vec<Vec<u8>> = bounds
                        .windows(2)
                        .map(|b| render_strip(&plan, &refs, limits, b[0], b[1] - b[0]).unwrap())
                        .collect();
                    assert_eq!(jpeg::join(&strips).unwrap(), want, "{case} bounds {bounds:?}");
                }
            }
        }
    }
}

#[test]
fn histogram_equalised_strips_are_the_rows_of_the_whole_picture() {
    for rotate in [Rotation::None, Rotation::Cw90] {
        for origin_lower in [false, true] {
            let (mut plan, srcs) = strip_mosaic(rotate, origin_lower, 1);
            plan.scaling = Scaling::HistogramEqualize;
            let refs: Vec<&dyn Source> = srcs.iter().map(|s| s as &dyn Source).collect();
            let whole = render_grey(&plan, &refs).unwrap();
            let lay = layout(&plan, &refs).unwrap();
            assert_eq!(lay.limits, None);
            let w = whole.width as usize;
            let cut = whole.height / 16 * 8;
            // the limits are ignored: every strip equalises over all the pixels
            let top = render_strip_grey(&plan, &refs, (0.0, 0.0), 0, cut).unwrap();
            let bottom = render_strip_grey(&plan, &refs, (5.0, 9.0), cut, whole.height - cut).unwrap();
            assert_eq!(top.pixels, whole.pixels[..cut as usize * w], "{rotate:?} {origin_lower}");
            assert_eq!(bottom.pixels, whole.pixels[cut as usize * w..], "{rotate:?} {origin_lower}");
            let strips = [
                render_strip(&plan, &refs, (0.0, 0.0), 0, cut).unwrap(),
                render_strip(&plan, &refs, (0.0, 0.0), cut, whole.height - cut).unwrap(),
            ];
            assert_eq!(jpeg::join(&strips).unwrap(), jpeg::encode_strip(&whole, plan.quality).unwrap());
        }
    }
}

#[test]
fn joined_jpeg_spans_restart_marker_cycles() {
    // 20 strips of 8 rows: more than one RST0…RST7 cycle across the seams
    let g = Grey { width: 70, height: 163, pixels: (0..70 * 163).map(|i| ((i * 37) % 256) as u8).collect() };
    let want = jpeg::encode_strip(&g, 85).unwrap();
    let strips: Vec<Vec<u8>> = (0..g.height)
        .step_by(8)
        .map(|y0| {
            let n = 8.min(g.height - y0);
            let part = Grey { width: 70, height: n, pixels: g.pixels[(y0 * 70) as usize..((y0 + n) * 70) as usize].to_vec() };
            jpeg::encode_strip(&part, 85).unwrap()
        })
        .collect();
    assert_eq!(jpeg::join(&strips).unwrap(), want);
}

#[test]
fn strips_that_do_not_belong_together_are_refused() {
    let g = |q| {
        let img = Grey { width: 24, height: 16, pixels: (0..24 * 16).map(|i| (i % 200) as u8).collect() };
        jpeg::encode_strip(&img, q).unwrap()
    };
    assert!(jpeg::join(&[g(92), g(80)]).unwrap_err().contains("other settings"));
    let odd = jpeg::encode_strip(&Grey { width: 24, height: 12, pixels: vec![7; 24 * 12] }, 92).unwrap();
    assert!(jpeg::join(&[odd.clone(), g(92)]).unwrap_err().contains("multiple of 8"));
    // no restart markers: not a strip
    let plain = encode_jpeg(&Grey { width: 24, height: 16, pixels: vec![9; 24 * 16] }, 92).unwrap();
    assert!(jpeg::join(&[plain, g(92)]).unwrap_err().contains("restart interval"));
    assert!(jpeg::join(&[b"not a jpeg".to_vec()]).is_err());
    assert!(jpeg::join(&[]).is_err());
    // the guest refuses strips that cannot be joined
    let (plan, srcs) = strip_mosaic(Rotation::Cw90, true, 2);
    let refs: Vec<&dyn Source> = srcs.iter().map(|s| s as &dyn Source).collect();
    let limits = layout(&plan, &refs).unwrap().limits.unwrap();
    assert!(render_strip(&plan, &refs, limits, 4, 8).is_err());
    assert!(render_strip(&plan, &refs, limits, 0, 12).is_err());
    assert!(render_strip(&plan, &refs, limits, 0, 10_000).is_err());
    // histogram-equalised plans render in strips too (issue 19), with the same cut rules
    let eq = Plan { scaling: Scaling::HistogramEqualize, ..plan.clone() };
    assert!(render_strip(&eq, &refs, limits, 0, 8).is_ok());
    assert!(render_strip(&eq, &refs, limits, 4, 8).is_err());
    assert_eq!(layout(&eq, &refs).unwrap().limits, None);
}
