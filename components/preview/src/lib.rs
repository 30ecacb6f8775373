//! koa-preview — the pure-Rust preview core used by the thumbnail component.
//!
//! A [`Plan`] places HDUs (tiles) on a canvas; [`render`] streams each tile's
//! rows from a [`Source`], removes per-row bias, bins by block averaging,
//! maps values to grey through zscale + asinh/sqrt or histogram equalisation,
//! applies flips, rotation and the `origin='lower'` flip, optionally resizes
//! to a width, and encodes a grey JPEG. Memory: one u8 canvas plus a chunk of
//! rows; the pixels themselves stay with the source (the host).

mod encoder;
mod histeq;
mod lanes;
pub mod jpeg;
mod resample;
mod stretch;
pub mod zscale;

pub use histeq::Equalizer;
pub use stretch::{Stretch, StretchMap};
pub use zscale::zscale;

/// A rectangle: columns [x0, x0+nx), rows [y0, y0+ny), array order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x0: u32,
    pub y0: u32,
    pub nx: u32,
    pub ny: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    ZscaleAsinh,
    ZscaleSqrt,
    HistogramEqualize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    None,
    Cw90,
    Ccw90,
    HalfTurn,
}

/// One HDU on the canvas.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// Part of the source kept.
    pub crop: Region,
    /// Region for the zscale limits (defaults to the crop).
    pub limits_box: Option<Region>,
    /// Overscan columns (x0, nx) whose per-row median (truncated) is subtracted.
    pub bias: Option<(u32, u32)>,
    pub flip_x: bool,
    pub flip_y: bool,
    /// Canvas position (array order, before rotation).
    pub x: u32,
    pub y: u32,
}

/// What to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub tiles: Vec<Tile>,
    pub per_tile_limits: bool,
    pub nonnegative: bool,
    pub scaling: Scaling,
    pub rotate: Rotation,
    pub origin_lower: bool,
    pub bin: u32,
    pub width: Option<u32>,
    /// With `width`: the exact output height (none keeps the aspect).
    pub height: Option<u32>,
    pub quality: u8,
}

impl Plan {
    /// One whole image, full size, origin lower.
    pub fn single(cols: u32, rows: u32, scaling: Scaling, quality: u8) -> Plan {
        Plan {
            tiles: vec![Tile {
                crop: Region { x0: 0, y0: 0, nx: cols, ny: rows },
                limits_box: None,
                bias: None,
                flip_x: false,
                flip_y: false,
                x: 0,
                y: 0,
            }],
            per_tile_limits: false,
            nonnegative: false,
            scaling,
            rotate: Rotation::None,
            origin_lower: true,
            bin: 1,
            width: None,
            height: None,
            quality,
        }
    }
}

/// Pixels of one HDU, owned elsewhere.
pub trait Source {
    /// (columns, rows)
    fn shape(&self) -> (u32, u32);
    fn is_integer(&self) -> bool;
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String>;
    fn read_section(&self, r: Region) -> Result<Vec<f32>, String>;
    /// zscale sample of the finite pixels of `r`: (row, value) pairs.
    fn sample(&self, r: Option<Region>, max: u32) -> Result<Vec<(u32, f32)>, String>;
    /// Means of the finite pixels of `factor`×`factor` blocks of `r` (NaN
    /// where a block has none), (nx/factor)×(ny/factor) values, row-major.
    /// The host computes these natively; this default is the reference.
    fn read_binned(&self, r: Region, factor: u32) -> Result<Vec<f32>, String> {
        let f = factor.max(1);
        let (ox, oy) = (r.nx / f, r.ny / f);
        let data = self.read_section(Region { x0: r.x0, y0: r.y0, nx: ox * f, ny: oy * f })?;
        let w = (ox * f) as usize;
        let mut out = Vec::with_capacity((ox * oy) as usize);
        for by in 0..oy as usize {
            for bx in 0..ox as usize {
                let (mut sum, mut n) = (0f32, 0u32);
                for dy in 0..f as usize {
                    let row = &data[(by * f as usize + dy) * w..][..w];
                    for v in &row[bx * f as usize..(bx + 1) * f as usize] {
                        if v.is_finite() {
                            sum += *v;
                            n += 1;
                        }
                    }
                }
                out.push(if n == 0 { f32::NAN } else { sum / n as f32 });
            }
        }
        Ok(out)
    }
}

/// A grey image, row-major, row 0 at the top of the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Grey {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Rows read per source call.
const CHUNK_ROWS: u32 = 64;

/// numpy median of the finite values, truncated to an integer; `buf` is
/// scratch space reused between rows.
fn median_trunc(values: &[f32], buf: &mut Vec<f32>) -> f32 {
    buf.clear();
    buf.extend(values.iter().copied().filter(|x| x.is_finite()));
    if buf.is_empty() {
        return f32::NAN;
    }
    let n = buf.len();
    // numpy median by selection (no full sort): the upper middle value,
    // and for an even count the largest value below it
    let (below, upper, _) = buf.select_nth_unstable_by(n / 2, f32::total_cmp);
    let upper = *upper as f64;
    let m = if n % 2 == 1 { upper } else { (below.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64 + upper) / 2.0 };
    m.trunc() as f32
}

/// Per-row bias of a tile (0 when it has none), indexed by source row;
/// with `only`, computed for those rows alone (the others are 0).
fn row_bias(tile: &Tile, src: &dyn Source, only: Option<&[bool]>) -> Result<Vec<f32>, String> {
    let (_, rows) = src.shape();
    let Some((x0, nx)) = tile.bias else { return Ok(vec![0.0; rows as usize]) };
    if nx == 0 {
        return Ok(vec![0.0; rows as usize]);
    }
    let mut buf = Vec::with_capacity(nx as usize);
    let Some(only) = only else {
        let strip = src.read_section(Region { x0, y0: 0, nx, ny: rows })?;
        return Ok(strip.chunks(nx as usize).map(|r| median_trunc(r, &mut buf)).collect());
    };
    // the wanted rows only, one read per run of consecutive rows
    let mut out = vec![0.0; rows as usize];
    let mut y = 0;
    while y < rows {
        if !only.get(y as usize).copied().unwrap_or(false) {
            y += 1;
            continue;
        }
        let run = (y..rows).take_while(|r| only.get(*r as usize).copied().unwrap_or(false)).count() as u32;
        let strip = src.read_section(Region { x0, y0: y, nx, ny: run })?;
        for (k, r) in strip.chunks(nx as usize).enumerate() {
            out[y as usize + k] = median_trunc(r, &mut buf);
        }
        y += run;
    }
    Ok(out)
}

fn check_region(r: &Region, shape: (u32, u32), what: &str) -> Result<(), String> {
    if r.nx == 0 || r.ny == 0 || r.x0 + r.nx > shape.0 || r.y0 + r.ny > shape.1 {
        return Err(format!("{what} {r:?} outside image {}x{}", shape.0, shape.1));
    }
    Ok(())
}

/// The value → grey mapping of a plan.
enum Mapper {
    Stretch(StretchMap),
    Equalize(Equalizer),
}

impl Mapper {
    fn map_row(&self, src: &[f32], bias: f32, out: &mut [u8]) {
        match self {
            Mapper::Stretch(m) => m.map_row(src, bias, out),
            Mapper::Equalize(e) => e.map_row(src, bias, out),
        }
    }
}

/// The zscale sample of each tile's limits box: (source row, value).
fn tile_samples(plan: &Plan, sources: &[&dyn Source]) -> Result<Vec<Vec<(u32, f32)>>, String> {
    plan.tiles
        .iter()
        .zip(sources)
        .map(|(tile, src)| src.sample(Some(tile.limits_box.unwrap_or(tile.crop)), zscale::N_SAMPLES as u32))
        .collect()
}

/// Stretch limits of the samples, each minus its row's bias.
fn limits(plan: &Plan, samples: &[Vec<(u32, f32)>], biases: &[Vec<f32>]) -> (f64, f64) {
    let mut per_tile = Vec::new();
    let mut pooled: Vec<f32> = Vec::new();
    for (i, tile_samples) in samples.iter().enumerate() {
        let samples: Vec<f32> = tile_samples.iter().map(|&(row, v)| v - biases[i].get(row as usize).copied().unwrap_or(0.0)).collect();
        if plan.per_tile_limits {
            per_tile.push(zscale(&samples));
        } else {
            pooled.extend(samples);
        }
    }
    let limits = if plan.per_tile_limits {
        let lo = per_tile.iter().map(|l| l.0).fold(f64::INFINITY, f64::min);
        let hi = per_tile.iter().map(|l| l.1).fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    } else {
        zscale(&pooled)
    };
    clamped(plan, limits)
}

/// Limits with the lower one clamped at zero when the plan asks for it.
fn clamped(plan: &Plan, (mut lo, mut hi): (f64, f64)) -> (f64, f64) {
    if plan.nonnegative {
        lo = lo.max(0.0);
        hi = hi.max(lo);
    }
    (lo, hi)
}

/// The zscale plan's grey mapping between `limits` (clamped as the plan says).
fn stretch_map(plan: &Plan, limits: (f64, f64)) -> StretchMap {
    let (lo, hi) = clamped(plan, limits);
    let stretch = if plan.scaling == Scaling::ZscaleAsinh { Stretch::Asinh(0.1) } else { Stretch::Sqrt };
    StretchMap::new(lo, hi, stretch)
}

/// Stream the kept part of every row of every tile, with the row's bias, to `f`.
fn for_each_row(
    plan: &Plan,
    sources: &[&dyn Source],
    biases: &[Vec<f32>],
    mut f: impl FnMut(&[f32], f32),
) -> Result<(), String> {
    for (i, tile) in plan.tiles.iter().enumerate() {
        let c = tile.crop;
        let (cols, _) = sources[i].shape();
        let mut y = c.y0;
        while y < c.y0 + c.ny {
            let n = CHUNK_ROWS.min(c.y0 + c.ny - y);
            let rows = sources[i].read_rows(y, n)?;
            for r in 0..n {
                let row = &rows[(r * cols) as usize..((r + 1) * cols) as usize];
                f(&row[c.x0 as usize..(c.x0 + c.nx) as usize], biases[i][(y + r) as usize]);
            }
            y += n;
        }
    }
    Ok(())
}

fn mapper(plan: &Plan, sources: &[&dyn Source], biases: &[Vec<f32>]) -> Result<Mapper, String> {
    match plan.scaling {
        Scaling::ZscaleAsinh | Scaling::ZscaleSqrt => {
            Ok(Mapper::Stretch(stretch_map(plan, limits(plan, &tile_samples(plan, sources)?, biases))))
        }
        Scaling::HistogramEqualize => {
            let integer = sources.iter().all(|s| s.is_integer());
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for_each_row(plan, sources, biases, |row, b| {
                // f32 subtraction is monotonic: the extremes of v − b are those of v, minus b
                let (l, h) = lanes::finite_min_max(row);
                if l <= h && (l - b).is_finite() && (h - b).is_finite() {
                    lo = lo.min(l - b);
                    hi = hi.max(h - b);
                }
            })?;
            let mut eq = Equalizer::new(lo, hi, integer);
            for_each_row(plan, sources, biases, |row, b| eq.add_row(row, b))?;
            eq.finish();
            Ok(Mapper::Equalize(eq))
        }
    }
}

/// Size of a plan's picture (after binning and rotation, before any resize)
/// and its stretch limits: what a host needs to render it in strips.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// (vmin, vmax) of a zscale plan; None for histogram equalisation.
    pub limits: Option<(f64, f64)>,
}

/// Part of the canvas (array order, binned): rows or columns [a, b).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Band {
    Rows(u32, u32),
    Cols(u32, u32),
}

fn validate(plan: &Plan, sources: &[&dyn Source]) -> Result<(), String> {
    if plan.tiles.is_empty() {
        return Err("preview plan has no tiles".into());
    }
    if plan.tiles.len() != sources.len() {
        return Err(format!("{} tiles but {} images", plan.tiles.len(), sources.len()));
    }
    let bin = plan.bin.max(1);
    for (t, s) in plan.tiles.iter().zip(sources) {
        check_region(&t.crop, s.shape(), "crop")?;
        if let Some(b) = t.limits_box {
            check_region(&b, s.shape(), "limits box")?;
        }
        if let Some((x0, nx)) = t.bias {
            check_region(&Region { x0, y0: 0, nx, ny: 1 }, s.shape(), "overscan")?;
        }
        if t.crop.nx / bin == 0 || t.crop.ny / bin == 0 {
            return Err(format!("crop {:?} smaller than the bin factor {bin}", t.crop));
        }
    }
    Ok(())
}

/// (width, height) of the binned canvas, before rotation.
fn canvas_size(plan: &Plan) -> (u32, u32) {
    canvas_size_of(plan.bin, plan.tiles.iter().map(|t| (t.x, t.y, t.crop.nx, t.crop.ny)))
}

/// (width, height) of the canvas of tiles placed at (x, y) with crops of
/// nx × ny pixels, binned by `bin` (for hosts holding plans in other types).
pub fn canvas_size_of(bin: u32, tiles: impl Iterator<Item = (u32, u32, u32, u32)> + Clone) -> (u32, u32) {
    let bin = bin.max(1);
    let w = tiles.clone().map(|(x, _, nx, _)| x / bin + nx / bin).max().unwrap_or(0);
    let h = tiles.map(|(_, y, _, ny)| y / bin + ny / bin).max().unwrap_or(0);
    (w, h)
}

fn rotated_size(plan: &Plan) -> (u32, u32) {
    let (w, h) = canvas_size(plan);
    match plan.rotate {
        Rotation::None | Rotation::HalfTurn => (w, h),
        Rotation::Cw90 | Rotation::Ccw90 => (h, w),
    }
}

/// The canvas band that becomes picture rows [first, first + count) once
/// rotated and (origin lower) flipped.
fn band_of_rows(plan: &Plan, first: u32, count: u32) -> Band {
    let (cw, ch) = canvas_size(plan);
    let (_, hr) = rotated_size(plan);
    let (a, b) = if plan.origin_lower { (hr - first - count, hr - first) } else { (first, first + count) };
    match plan.rotate {
        Rotation::None => Band::Rows(a, b),
        Rotation::HalfTurn => Band::Rows(ch - b, ch - a),
        Rotation::Cw90 => Band::Cols(a, b),
        Rotation::Ccw90 => Band::Cols(cw - b, cw - a),
    }
}

/// The picture's size and limits.
pub fn layout(plan: &Plan, sources: &[&dyn Source]) -> Result<Layout, String> {
    validate(plan, sources)?;
    let (width, height) = rotated_size(plan);
    let limits = match plan.scaling {
        Scaling::HistogramEqualize => None,
        Scaling::ZscaleAsinh | Scaling::ZscaleSqrt => {
            // the biases of the sampled rows only (a strip computes its own)
            let samples = tile_samples(plan, sources)?;
            let biases: Vec<Vec<f32>> = plan
                .tiles
                .iter()
                .zip(sources)
                .zip(&samples)
                .map(|((t, src), smp)| {
                    let mut rows = vec![false; src.shape().1 as usize];
                    for &(r, _) in smp {
                        if let Some(b) = rows.get_mut(r as usize) {
                            *b = true;
                        }
                    }
                    row_bias(t, *src, Some(&rows))
                })
                .collect::<Result<_, _>>()?;
            Some(limits(plan, &samples, &biases))
        }
    };
    Ok(Layout { width, height, limits })
}

/// Per-row biases of the tiles (empty for tiles outside `band`).
fn all_biases(plan: &Plan, sources: &[&dyn Source], band: Option<Band>) -> Result<Vec<Vec<f32>>, String> {
    plan.tiles
        .iter()
        .zip(sources)
        .map(|(t, s)| if band.is_none_or(|b| tile_span(plan, t, b).is_some()) { row_bias(t, *s, None) } else { Ok(Vec::new()) })
        .collect()
}

/// The part of a tile inside a band: its output rows [r0, r1) (tile
/// order, before flips) and binned columns [s0, s1) (source order).
fn tile_span(plan: &Plan, t: &Tile, band: Band) -> Option<((u32, u32), (u32, u32))> {
    let bin = plan.bin.max(1);
    let (tx, ty, nxb, nyb) = (t.x / bin, t.y / bin, t.crop.nx / bin, t.crop.ny / bin);
    // canvas range [lo, hi) of a tile extent [p, p+n) → tile indices, then flipped
    let clip = |p: u32, n: u32, lo: u32, hi: u32, flip: bool| -> Option<(u32, u32)> {
        let (i0, i1) = (lo.max(p) - p, hi.min(p + n).saturating_sub(p));
        if lo.max(p) >= hi.min(p + n) {
            return None;
        }
        Some(if flip { (n - i1, n - i0) } else { (i0, i1) })
    };
    match band {
        Band::Rows(a, b) => Some((clip(ty, nyb, a, b, t.flip_y)?, (0, nxb))),
        Band::Cols(a, b) => Some(((0, nyb), clip(tx, nxb, a, b, t.flip_x)?)),
    }
}

/// Draw the tiles' pixels inside `band` onto a canvas of that band.
fn draw_band(plan: &Plan, sources: &[&dyn Source], map: &Mapper, biases: &[Vec<f32>], band: Band) -> Result<Grey, String> {
    let bin = plan.bin.max(1);
    let (cw, ch) = canvas_size(plan);
    let (bx0, by0, w, h) = match band {
        Band::Rows(a, b) => (0, a, cw, b - a),
        Band::Cols(a, b) => (a, 0, b - a, ch),
    };
    let mut canvas = vec![0u8; w as usize * h as usize];
    let mut line = Vec::new();
    for (i, tile) in plan.tiles.iter().enumerate() {
        let Some(((r0, r1), (s0, s1))) = tile_span(plan, tile, band) else { continue };
        let c = tile.crop;
        let (cols, _) = sources[i].shape();
        let (nxb, nyb) = (c.nx / bin, c.ny / bin);
        // canvas column of the first drawn pixel: the span's left edge
        let left = tile.x / bin + if tile.flip_x { nxb - s1 } else { s0 };
        let span = (s1 - s0) as usize;
        line.resize(span, 0u8);
        let rows_per_read = (CHUNK_ROWS / bin).max(1);
        let mut oy = r0;
        while oy < r1 {
            let out_rows = rows_per_read.min(r1 - oy);
            let y = c.y0 + oy * bin;
            let (data, binned) = if bin == 1 {
                (sources[i].read_rows(y, out_rows)?, Vec::new())
            } else {
                let r = Region { x0: c.x0 + s0 * bin, y0: y, nx: span as u32 * bin, ny: out_rows * bin };
                (Vec::new(), sources[i].read_binned(r, bin)?)
            };
            for r in 0..out_rows {
                let row_out = oy + r;
                let cy = tile.y / bin + if tile.flip_y { nyb - 1 - row_out } else { row_out };
                if bin == 1 {
                    // one output pixel per data pixel: map directly
                    let b = biases[i][(y + r) as usize];
                    let row = &data[(r * cols) as usize..((r + 1) * cols) as usize];
                    map.map_row(&row[(c.x0 + s0) as usize..(c.x0 + s1) as usize], b, &mut line);
                } else {
                    // the host averaged the blocks (one value per output
                    // pixel crosses the boundary); the block's bias is the
                    // mean of its rows' biases
                    let b = (0..bin).map(|k| biases[i][(y + r * bin + k) as usize]).sum::<f32>() / bin as f32;
                    map.map_row(&binned[r as usize * span..(r as usize + 1) * span], b, &mut line);
                }
                if tile.flip_x {
                    line.reverse();
                }
                let base = (cy - by0) as usize * w as usize + (left - bx0) as usize;
                canvas[base..base + span].copy_from_slice(&line);
            }
            oy += out_rows;
        }
    }
    let mut img = Grey { width: w, height: h, pixels: canvas };
    img = rotate(img, plan.rotate);
    if plan.origin_lower {
        flip_rows(&mut img);
    }
    Ok(img)
}

/// Render a plan to a grey image (before JPEG encoding).
pub fn render_grey(plan: &Plan, sources: &[&dyn Source]) -> Result<Grey, String> {
    validate(plan, sources)?;
    let biases = all_biases(plan, sources, None)?;
    let map = mapper(plan, sources, &biases)?;
    let (_, ch) = canvas_size(plan);
    let mut img = draw_band(plan, sources, &map, &biases, Band::Rows(0, ch))?;
    match (plan.width.filter(|&wd| wd > 0), plan.height.filter(|&ht| ht > 0)) {
        (Some(w), Some(h)) if (w, h) != (img.width, img.height) => img = resample::resize(&img, w, h),
        (Some(w), None) if w != img.width => img = resample::resize_to_width(&img, w),
        _ => {}
    }
    Ok(img)
}

/// Render a plan to JPEG bytes.
pub fn render(plan: &Plan, sources: &[&dyn Source]) -> Result<Vec<u8>, String> {
    let img = render_grey(plan, sources)?;
    encode_jpeg(&img, plan.quality)
}

/// Picture rows [first, first + count) of a zscale plan drawn with the
/// given limits (a histogram-equalised plan ignores them: every strip
/// equalises over all the pixels), as grey pixels. Strips of one plan rendered separately
/// (in parallel, by separate instances) are exactly the rows of
/// [`render_grey`] with the same limits.
pub fn render_strip_grey(plan: &Plan, sources: &[&dyn Source], limits: (f64, f64), first: u32, count: u32) -> Result<Grey, String> {
    validate(plan, sources)?;
    let (w, h) = rotated_size(plan);
    if plan.width.is_some_and(|wd| wd > 0 && (wd != w || plan.height.is_some_and(|ht| ht > 0 && ht != h))) {
        return Err("resized previews are rendered whole".into());
    }
    if count == 0 || first.checked_add(count).is_none_or(|end| end > h) {
        return Err(format!("rows {first}+{count} outside the {w}x{h} picture"));
    }
    let band = band_of_rows(plan, first, count);
    if plan.scaling == Scaling::HistogramEqualize {
        // the equalisation is over every pixel: each strip counts them all
        // (the same histogram, so the same mapping), then draws its band
        let biases = all_biases(plan, sources, None)?;
        return draw_band(plan, sources, &mapper(plan, sources, &biases)?, &biases, band);
    }
    let biases = all_biases(plan, sources, Some(band))?;
    draw_band(plan, sources, &Mapper::Stretch(stretch_map(plan, limits)), &biases, band)
}

/// [`render_strip_grey`] as a JPEG strip for [`jpeg::join`]: a restart
/// marker after every row of 8×8 blocks, so strips cut at multiples of 8
/// rows join into the JPEG of the whole picture.
pub fn render_strip(plan: &Plan, sources: &[&dyn Source], limits: (f64, f64), first: u32, count: u32) -> Result<Vec<u8>, String> {
    if first % 8 != 0 {
        return Err(format!("a strip starts at a multiple of 8 rows, not {first}"));
    }
    let img = render_strip_grey(plan, sources, limits, first, count)?;
    let (_, h) = rotated_size(plan);
    if first + count < h && count % 8 != 0 {
        return Err(format!("a strip other than the last is a multiple of 8 rows, not {count}"));
    }
    jpeg::encode_strip(&img, plan.quality)
}

/// Grey JPEG encoding (baseline, no restart markers).
pub fn encode_jpeg(img: &Grey, quality: u8) -> Result<Vec<u8>, String> {
    encoder::encode(img, quality, false)
}

/// Rotate like numpy's `rot90` (Cw90 = `rot90(a, -1)`).
pub fn rotate(img: Grey, rot: Rotation) -> Grey {
    let (w, h) = (img.width as usize, img.height as usize);
    let src = &img.pixels;
    match rot {
        Rotation::None => img,
        Rotation::HalfTurn => Grey { width: img.width, height: img.height, pixels: src.iter().rev().copied().collect() },
        Rotation::Cw90 => {
            // new[r][c] = old[h-1-c][r], new shape (w rows, h cols)
            let mut out = vec![0u8; w * h];
            transpose_blocks(w, h, |r, c| out[r * h + c] = src[(h - 1 - c) * w + r]);
            Grey { width: img.height, height: img.width, pixels: out }
        }
        Rotation::Ccw90 => {
            // new[r][c] = old[c][w-1-r]
            let mut out = vec![0u8; w * h];
            transpose_blocks(w, h, |r, c| out[r * h + c] = src[c * w + (w - 1 - r)]);
            Grey { width: img.height, height: img.width, pixels: out }
        }
    }
}

/// Visit every (r, c) of a w×h result in 64×64 blocks, so a transposing
/// copy touches both images a cache-friendly block at a time.
fn transpose_blocks(w: usize, h: usize, mut f: impl FnMut(usize, usize)) {
    const B: usize = 64;
    for r0 in (0..w).step_by(B) {
        for c0 in (0..h).step_by(B) {
            for r in r0..(r0 + B).min(w) {
                for c in c0..(c0 + B).min(h) {
                    f(r, c);
                }
            }
        }
    }
}

/// Put row 0 at the bottom.
pub fn flip_rows(img: &mut Grey) {
    let w = img.width as usize;
    let h = img.height as usize;
    for r in 0..h / 2 {
        let (top, bottom) = img.pixels.split_at_mut((h - 1 - r) * w);
        top[r * w..(r + 1) * w].swap_with_slice(&mut bottom[..w]);
    }
}

#[cfg(test)]
mod tests;
