//! Pixel access through cfitsio (the `fitsio` crate's vendored build): every
//! BITPIX, BSCALE/BZERO scaling, BLANK pixels as NaN, tile-compressed images.
//! Files are opened with `fits_open_diskfile` so that no part of a path is
//! taken for cfitsio's extended file-name syntax. Images are read in row
//! chunks; statistics stream with bounded memory.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

use fitsio::sys;

/// A cfitsio failure.
#[derive(Debug, thiserror::Error)]
#[error("cfitsio status {status} ({text}) reading {path}: {context}")]
pub struct PixelError {
    pub status: i32,
    pub text: String,
    pub path: PathBuf,
    pub context: String,
}

fn status_text(status: i32) -> String {
    let mut buf = [0 as std::os::raw::c_char; 32];
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// An open cfitsio file handle.
pub struct Reader {
    fptr: *mut sys::fitsfile,
    path: PathBuf,
}

// cfitsio is built reentrant; a handle is used by one thread at a time.
unsafe impl Send for Reader {}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut status = 0;
        unsafe { sys::ffclos(self.fptr, &mut status) };
    }
}

/// Geometry of an image HDU as cfitsio sees it (decompressed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub cols: u64,
    pub rows: u64,
    /// Product of the axes beyond the second (cubes): plane 0 unless a
    /// plane is asked for ([`Image::load_plane`]).
    pub planes: u64,
    pub bitpix: i32,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, PixelError> {
        let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| PixelError {
            status: 0,
            text: "path contains NUL".into(),
            path: path.into(),
            context: "open".into(),
        })?;
        let mut fptr = std::ptr::null_mut();
        let mut status = 0;
        unsafe { sys::ffdkopn(&mut fptr, c.as_ptr(), 0, &mut status) };
        if status != 0 || fptr.is_null() {
            return Err(PixelError { status, text: status_text(status), path: path.into(), context: "open".into() });
        }
        Ok(Reader { fptr, path: path.into() })
    }

    fn err(&self, status: i32, context: String) -> PixelError {
        PixelError { status, text: status_text(status), path: self.path.clone(), context }
    }

    /// Number of HDUs cfitsio finds.
    pub fn count(&mut self) -> Result<usize, PixelError> {
        let mut n = 0;
        let mut status = 0;
        unsafe { sys::ffthdu(self.fptr, &mut n, &mut status) };
        if status != 0 {
            return Err(self.err(status, "count HDUs".into()));
        }
        Ok(n as usize)
    }

    /// Where cfitsio finds each HDU's data: (data start, data end) in bytes,
    /// the end including the block padding. An independent parse of the
    /// header structure, to cross-check the card layer's.
    pub fn data_units(&mut self) -> Result<Vec<(u64, u64)>, PixelError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            self.select(i)?;
            let (mut head, mut data, mut end) = (0i64, 0i64, 0i64);
            let mut status = 0;
            unsafe { sys::ffghadll(self.fptr, &mut head, &mut data, &mut end, &mut status) };
            if status != 0 {
                return Err(self.err(status, format!("offsets of HDU {i}")));
            }
            out.push((data.max(0) as u64, end.max(0) as u64));
        }
        Ok(out)
    }

    fn select(&mut self, hdu: usize) -> Result<(), PixelError> {
        let mut t = 0;
        let mut status = 0;
        unsafe { sys::ffmahd(self.fptr, hdu as i32 + 1, &mut t, &mut status) };
        if status != 0 {
            return Err(self.err(status, format!("move to HDU {hdu}")));
        }
        Ok(())
    }

    /// The image geometry of an HDU.
    pub fn geometry(&mut self, hdu: usize) -> Result<Geometry, PixelError> {
        self.select(hdu)?;
        let mut bitpix = 0;
        let mut naxis = 0;
        let mut naxes = [0i64; 9];
        let mut status = 0;
        unsafe { sys::ffgiprll(self.fptr, 9, &mut bitpix, &mut naxis, naxes.as_mut_ptr(), &mut status) };
        if status != 0 {
            return Err(self.err(status, format!("image parameters of HDU {hdu}")));
        }
        if naxis == 0 {
            return Ok(Geometry { cols: 0, rows: 0, planes: 0, bitpix });
        }
        let cols = naxes[0].max(0) as u64;
        let rows = if naxis >= 2 { naxes[1].max(0) as u64 } else { 1 };
        let planes = if naxis > 2 { naxes[2..naxis.min(9) as usize].iter().map(|n| (*n).max(0) as u64).product::<u64>() } else { 1 };
        Ok(Geometry { cols, rows, planes, bitpix })
    }

    /// Read `out.len()` pixels starting at 0-based element `first` as f32
    /// (scaled; BLANK/undefined → NaN).
    pub fn read_f32(&mut self, hdu: usize, first: u64, out: &mut [f32]) -> Result<(), PixelError> {
        self.select(hdu)?;
        let mut anynul = 0;
        let mut status = 0;
        unsafe {
            sys::ffgpve(self.fptr, 1, first as i64 + 1, out.len() as i64, f32::NAN, out.as_mut_ptr(), &mut anynul, &mut status)
        };
        if status != 0 {
            return Err(self.err(status, format!("read {} pixels of HDU {hdu} at {first}", out.len())));
        }
        Ok(())
    }

    /// Same as [`Reader::read_f32`] in double precision.
    pub fn read_f64(&mut self, hdu: usize, first: u64, out: &mut [f64]) -> Result<(), PixelError> {
        self.select(hdu)?;
        let mut anynul = 0;
        let mut status = 0;
        unsafe {
            sys::ffgpvd(self.fptr, 1, first as i64 + 1, out.len() as i64, f64::NAN, out.as_mut_ptr(), &mut anynul, &mut status)
        };
        if status != 0 {
            return Err(self.err(status, format!("read {} pixels of HDU {hdu} at {first}", out.len())));
        }
        Ok(())
    }
}

/// A rectangle in array order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: u64,
    pub y0: u64,
    pub nx: u64,
    pub ny: u64,
}

/// Statistics of an image section (see the `stats` record of the WIT).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub finite: u64,
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub saturated: u64,
}

/// Pixels handed to at most this many values are collected for an exact median;
/// beyond, a histogram narrows the median down first.
const COLLECT_LIMIT: u64 = 8 << 20;
const ROWS_PER_READ: u64 = 256;

/// Read access to the pixels of one image HDU (first plane), row by row.
/// Statistics, samples and sections are built on [`Pixels::for_rows`].
pub trait Pixels: Send {
    /// (columns, rows)
    fn shape(&self) -> (u64, u64);
    /// Whether every value is an integer.
    fn is_integer(&self) -> bool;
    /// Call `f` with each row of `r` (columns cut to the rectangle).
    fn for_rows(&mut self, r: Rect, f: &mut dyn FnMut(&[f32])) -> Result<(), PixelError>;
    /// Report a rectangle outside the image.
    fn out_of_range(&self, r: &Rect) -> PixelError;
    /// The pixels of `r` as one slice, when they are in memory and contiguous
    /// (whole rows); lets statistics skip copying.
    fn contiguous(&self, _r: &Rect) -> Option<&[f32]> {
        None
    }

    fn check(&self, r: &Rect) -> Result<(), PixelError> {
        let (c, rows) = self.shape();
        if r.x0 + r.nx > c || r.y0 + r.ny > rows {
            return Err(self.out_of_range(r));
        }
        Ok(())
    }

    fn whole(&self) -> Rect {
        let (c, r) = self.shape();
        Rect { x0: 0, y0: 0, nx: c, ny: r }
    }

    /// Rows [y0, y0+n), row-major.
    fn read_rows(&mut self, y0: u64, n: u64) -> Result<Vec<f32>, PixelError> {
        let cols = self.shape().0;
        self.read_section(Rect { x0: 0, y0, nx: cols, ny: n })
    }

    /// A rectangle, row-major.
    fn read_section(&mut self, r: Rect) -> Result<Vec<f32>, PixelError> {
        self.check(&r)?;
        let mut out = Vec::with_capacity((r.nx * r.ny) as usize);
        self.for_rows(r, &mut |row| out.extend_from_slice(row))?;
        Ok(out)
    }

    /// Row-major stride sample of the finite pixels of `r` (astropy zscale):
    /// every max(1, N/max)-th finite value, at most `max`, with its row.
    fn sample(&mut self, r: Option<Rect>, max: u64) -> Result<Vec<(u64, f32)>, PixelError> {
        let r = r.unwrap_or_else(|| self.whole());
        self.check(&r)?;
        if let Some(data) = self.contiguous(&r).filter(|d| d.iter().all(|v| v.is_finite())) {
            // every value finite: the sample is plain stride indexing
            let n = data.len() as u64;
            let stride = ((n as f64 / max.max(1) as f64).max(1.0)) as u64;
            let cols = r.nx.max(1);
            return Ok((0..n).step_by(stride as usize).take(max as usize).map(|i| (r.y0 + i / cols, data[i as usize])).collect());
        }
        sample_streamed(self, r, max)
    }

    /// Block means of the finite pixels of `r` in `f`×`f` blocks (NaN where a
    /// block has none): (nx/f)×(ny/f) values, row-major.
    fn read_binned(&mut self, r: Rect, f: u64) -> Result<Vec<f32>, PixelError> {
        binned_streamed(self, r, f)
    }

    /// Number of finite pixels ≥ `threshold` in `r`.
    fn count_at_least(&mut self, r: Option<Rect>, threshold: f64) -> Result<u64, PixelError> {
        let r = r.unwrap_or_else(|| self.whole());
        let mut n = 0u64;
        self.for_rows(r, &mut |row| n += row.iter().filter(|v| **v as f64 >= threshold).count() as u64)?;
        Ok(n)
    }

    /// Mean, population standard deviation, median, extremes and the count of
    /// pixels ≥ `saturate` over `r` (the whole first plane when none).
    fn stats(&mut self, r: Option<Rect>, saturate: Option<f64>) -> Result<Stats, PixelError> {
        let r = r.unwrap_or_else(|| self.whole());
        self.check(&r)?;
        let count = r.nx * r.ny;
        if let Some(data) = self.contiguous(&r) {
            return Ok(slice_stats(data, saturate));
        }
        let collect = count <= COLLECT_LIMIT;
        let mut values: Vec<f32> = Vec::new();
        if collect {
            values.reserve(count as usize);
        }
        // chunk moments combined pairwise: stable for large images
        let (mut n, mut mean, mut m2) = (0u64, 0f64, 0f64);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut sat = 0u64;
        self.for_rows(r, &mut |row| {
            let (mut cn, mut csum) = (0u64, 0f64);
            for v in row {
                if v.is_finite() {
                    let x = *v as f64;
                    cn += 1;
                    csum += x;
                    lo = lo.min(x);
                    hi = hi.max(x);
                    if saturate.is_some_and(|s| x >= s) {
                        sat += 1;
                    }
                    if collect {
                        values.push(*v);
                    }
                }
            }
            if cn == 0 {
                return;
            }
            let cmean = csum / cn as f64;
            let cm2: f64 = row.iter().filter(|v| v.is_finite()).map(|v| (*v as f64 - cmean).powi(2)).sum();
            let tot = n + cn;
            let delta = cmean - mean;
            mean += delta * cn as f64 / tot as f64;
            m2 += cm2 + delta * delta * (n as f64) * (cn as f64) / tot as f64;
            n = tot;
        })?;
        if n == 0 {
            let nan = f64::NAN;
            return Ok(Stats { count, finite: 0, mean: nan, median: nan, std: nan, min: nan, max: nan, saturated: sat });
        }
        let median = if collect { median_of(&mut values) } else { median_by_histogram(self, r, n, lo, hi)? };
        Ok(Stats { count, finite: n, mean, median, std: (m2 / n as f64).sqrt(), min: lo, max: hi, saturated: sat })
    }
}

/// Block means of the finite pixels, row by row.
fn binned_streamed<P: Pixels + ?Sized>(p: &mut P, r: Rect, f: u64) -> Result<Vec<f32>, PixelError> {
    p.check(&r)?;
    let f = f.max(1);
    let (ox, oy) = ((r.nx / f) as usize, (r.ny / f) as usize);
    let mut out = Vec::with_capacity(ox * oy);
    let mut sum = vec![0f32; ox];
    let mut cnt = vec![0u32; ox];
    let mut k = 0u64;
    let used = Rect { x0: r.x0, y0: r.y0, nx: ox as u64 * f, ny: oy as u64 * f };
    p.for_rows(used, &mut |row| {
        for (i, block) in row.chunks_exact(f as usize).enumerate() {
            for v in block {
                if v.is_finite() {
                    sum[i] += *v;
                    cnt[i] += 1;
                }
            }
        }
        k += 1;
        if k % f == 0 {
            for i in 0..ox {
                out.push(if cnt[i] == 0 { f32::NAN } else { sum[i] / cnt[i] as f32 });
                sum[i] = 0.0;
                cnt[i] = 0;
            }
        }
    })?;
    Ok(out)
}

/// The zscale sample by two passes over the rows: count the finite values,
/// then take every stride-th one.
fn sample_streamed<P: Pixels + ?Sized>(p: &mut P, r: Rect, max: u64) -> Result<Vec<(u64, f32)>, PixelError> {
    let mut finite = 0u64;
    p.for_rows(r, &mut |row| finite += row.iter().filter(|v| v.is_finite()).count() as u64)?;
    let stride = ((finite as f64 / max.max(1) as f64).max(1.0)) as u64;
    let mut out = Vec::with_capacity(max.min(finite) as usize);
    // `skip` counts down the finite values until the next one taken
    // (every stride-th, starting with the first)
    let (mut skip, mut y) = (0u64, r.y0);
    p.for_rows(r, &mut |row| {
        if out.len() as u64 >= max {
            return;
        }
        for v in row {
            if v.is_finite() {
                if skip == 0 {
                    if (out.len() as u64) < max {
                        out.push((y, *v));
                    }
                    skip = stride;
                }
                skip -= 1;
            }
        }
        y += 1;
    })?;
    Ok(out)
}

/// Statistics of pixels held in memory: one pass for the moments (chunk
/// moments combined pairwise, as for streamed images), the median by radix
/// selection on the data itself when every value is finite (no copy).
fn slice_stats(data: &[f32], saturate: Option<f64>) -> Stats {
    const CHUNK: usize = 4096;
    let (mut n, mut mean, mut m2) = (0u64, 0f64, 0f64);
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    let mut sat = 0u64;
    for chunk in data.chunks(CHUNK) {
        let all_finite = chunk.iter().all(|v| v.is_finite());
        let (cn, csum) = if all_finite {
            (chunk.len() as u64, lanes_sum(chunk, |v| v as f64))
        } else {
            chunk.iter().filter(|v| v.is_finite()).fold((0u64, 0f64), |(c, s), v| (c + 1, s + *v as f64))
        };
        if cn == 0 {
            continue;
        }
        let cmean = csum / cn as f64;
        let cm2: f64 = if all_finite {
            lanes_sum(chunk, |v| (v as f64 - cmean) * (v as f64 - cmean))
        } else {
            chunk.iter().filter(|v| v.is_finite()).map(|v| (*v as f64 - cmean) * (*v as f64 - cmean)).sum()
        };
        let (clo, chi) = if all_finite {
            lanes_min_max(chunk)
        } else {
            chunk.iter().filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)))
        };
        lo = lo.min(clo);
        hi = hi.max(chi);
        if let Some(t) = saturate {
            sat += chunk.iter().filter(|v| v.is_finite() && **v as f64 >= t).count() as u64;
        }
        let tot = n + cn;
        let delta = cmean - mean;
        mean += delta * cn as f64 / tot as f64;
        m2 += cm2 + delta * delta * (n as f64) * (cn as f64) / tot as f64;
        n = tot;
    }
    let count = data.len() as u64;
    if n == 0 {
        let nan = f64::NAN;
        return Stats { count, finite: 0, mean: nan, median: nan, std: nan, min: nan, max: nan, saturated: sat };
    }
    let median = if n == count {
        median_in_place_free(data)
    } else {
        let mut finite: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
        median_of(&mut finite)
    };
    Stats { count, finite: n, mean, median, std: (m2 / n as f64).sqrt(), min: lo as f64, max: hi as f64, saturated: sat }
}

/// Sum of `f(v)` over finite values with eight independent accumulators
/// (no loop-carried dependency, so the compiler vectorises it).
#[inline]
fn lanes_sum(c: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let mut blocks = c.chunks_exact(8);
    for b in &mut blocks {
        for i in 0..8 {
            acc[i] += f(b[i]);
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for v in blocks.remainder() {
        s += f(*v);
    }
    s
}

/// Minimum and maximum of finite values, eight lanes at a time.
#[inline]
fn lanes_min_max(c: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::INFINITY; 8], [f32::NEG_INFINITY; 8]);
    let mut blocks = c.chunks_exact(8);
    for b in &mut blocks {
        for i in 0..8 {
            lo[i] = if b[i] < lo[i] { b[i] } else { lo[i] };
            hi[i] = if b[i] > hi[i] { b[i] } else { hi[i] };
        }
    }
    let mut l = lo.iter().copied().fold(f32::INFINITY, f32::min);
    let mut h = hi.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in blocks.remainder() {
        l = l.min(*v);
        h = h.max(*v);
    }
    (l, h)
}

/// numpy `median` of finite values without modifying or copying them all.
fn median_in_place_free(values: &[f32]) -> f64 {
    let n = values.len();
    if n < 4096 {
        return median_of(&mut values.to_vec());
    }
    let k = if n % 2 == 1 { n / 2 } else { n / 2 - 1 };
    let (a, b) = kth_pair_by_sample(values, k).unwrap_or_else(|| kth_pair(values, k));
    if n % 2 == 1 { a as f64 } else { (a as f64 + b as f64) / 2.0 }
}

/// The k-th and (k+1)-th smallest values (0-based) of finite values, by a
/// sorted sample that brackets rank k: one counting pass (vectorised) and a
/// selection among the few values inside the bracket. None when the bracket
/// missed (then the radix selection decides).
fn kth_pair_by_sample(values: &[f32], k: usize) -> Option<(f32, f32)> {
    let n = values.len();
    // a golden-ratio stride scatters the sample over the image: a plain
    // stride can fall on the same few columns of every row and mislead
    let m = n.min(4096);
    let g = ((n as f64 * 0.618_033_988_75) as u64) | 1;
    let mut s: Vec<f32> = (0..m as u64).map(|j| values[((j * g) % n as u64) as usize]).collect();
    s.sort_unstable_by(f32::total_cmp);
    let at = (k as f64 / n as f64 * m as f64) as usize;
    // the sample's rank-k estimate has a spread of about √m / 2 ranks: a
    // bracket of ±2.5√m misses rarely (then the radix selection decides)
    let margin = 5 * (m as f64).sqrt() as usize / 2 + 4;
    let lo = if at > margin { s[at - margin] } else { f32::NEG_INFINITY };
    let hi = if at + margin + 1 < m { s[at + margin] } else { f32::INFINITY };
    // one branch-free counting pass, then a branch-free compaction of the
    // values inside the bracket
    let (mut below, mut within) = (0usize, 0usize);
    for v in values {
        below += (*v < lo) as usize;
        within += (*v >= lo && *v <= hi) as usize;
    }
    let k1 = (k + 1).min(n - 1);
    if k < below || k1 >= below + within {
        return None;
    }
    let mut inside = vec![0f32; within + 1];
    let mut j = 0;
    for v in values {
        inside[j] = *v;
        j += (*v >= lo && *v <= hi) as usize;
    }
    inside.truncate(within);
    let (_, a, rest) = inside.select_nth_unstable_by(k - below, f32::total_cmp);
    let a = *a;
    if k1 == k {
        return Some((a, a));
    }
    Some((a, rest.iter().copied().fold(f32::INFINITY, f32::min)))
}

/// The k-th and (k+1)-th smallest values (0-based) in one radix pass: a
/// histogram of the high 16 bits of the order-preserving key, then a
/// selection among the values of the bucket(s) holding those ranks.
fn kth_pair(values: &[f32], k: usize) -> (f32, f32) {
    let mut hist = vec![0u32; 1 << 16];
    for v in values {
        hist[(key(*v) >> 16) as usize] += 1;
    }
    let k1 = (k + 1).min(values.len() - 1);
    let (mut below, mut acc) = (0usize, 0usize);
    let (mut first, mut last) = (None, 0usize);
    for (i, c) in hist.iter().enumerate() {
        let next = acc + *c as usize;
        if first.is_none() && k < next {
            first = Some(i);
            below = acc;
        }
        if k1 < next {
            last = i;
            break;
        }
        acc = next;
    }
    let first = first.unwrap_or(0);
    let (lo, hi) = (first as u32, last as u32);
    let mut inside: Vec<f32> = values
        .iter()
        .copied()
        .filter(|v| {
            let b = key(*v) >> 16;
            b >= lo && b <= hi
        })
        .collect();
    let (_, a, rest) = inside.select_nth_unstable_by(k - below, f32::total_cmp);
    let a = *a;
    if k1 == k {
        return (a, a);
    }
    let b = rest.iter().copied().fold(f32::INFINITY, f32::min);
    (a, b)
}

/// Exact median of many pixels with bounded memory: a histogram locates the
/// bins holding the middle ranks, a second pass collects those values.
fn median_by_histogram<P: Pixels + ?Sized>(p: &mut P, r: Rect, n: u64, lo: f64, hi: f64) -> Result<f64, PixelError> {
    if lo == hi {
        return Ok(lo);
    }
    const BINS: usize = 1 << 20;
    let width = (hi - lo) / BINS as f64;
    let bin = |x: f64| (((x - lo) / width) as usize).min(BINS - 1);
    let mut hist = vec![0u32; BINS];
    p.for_rows(r, &mut |row| {
        for v in row.iter().filter(|v| v.is_finite()) {
            hist[bin(*v as f64)] += 1;
        }
    })?;
    let ranks = if n % 2 == 1 { (n / 2, n / 2) } else { (n / 2 - 1, n / 2) };
    let (mut acc, mut b_lo, mut b_hi, mut below) = (0u64, None, None, 0u64);
    for (i, c) in hist.iter().enumerate() {
        let next = acc + *c as u64;
        if b_lo.is_none() && ranks.0 < next {
            b_lo = Some(i);
            below = acc;
        }
        if ranks.1 < next {
            b_hi = Some(i);
            break;
        }
        acc = next;
    }
    let (b_lo, b_hi) = (b_lo.unwrap_or(0), b_hi.unwrap_or(BINS - 1));
    let mut picked: Vec<f32> = Vec::new();
    p.for_rows(r, &mut |row| {
        for v in row.iter().filter(|v| v.is_finite()) {
            let b = bin(*v as f64);
            if b >= b_lo && b <= b_hi {
                picked.push(*v);
            }
        }
    })?;
    picked.sort_by(f32::total_cmp);
    let a = picked[(ranks.0 - below) as usize] as f64;
    let b = picked[(ranks.1 - below) as usize] as f64;
    Ok((a + b) / 2.0)
}

/// Where and how an uncompressed image's pixels are stored, for reading
/// them without cfitsio (`Direct`). Built from the card layer's HDU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// Byte offset of the data unit.
    pub offset: u64,
    pub bitpix: i32,
    pub cols: u64,
    pub rows: u64,
    pub bscale: f64,
    pub bzero: f64,
    /// BLANK (integer images only): stored value of undefined pixels.
    pub blank: Option<i64>,
}

impl Layout {
    /// The layout of an uncompressed image HDU whose data are complete in a
    /// file of `file_size` bytes; None for anything else (cfitsio reads those).
    pub fn of(h: &super::Hdu, file_size: u64) -> Option<Layout> {
        use super::{HValue, HduKind};
        if !matches!(h.kind, HduKind::Primary | HduKind::Image) || !h.has_image() {
            return None;
        }
        if !matches!(h.bitpix, 8 | 16 | 32 | 64 | -32 | -64) || h.data_start + h.data_len > file_size {
            return None;
        }
        let num = |k: &str, d: f64| match h.value(k) {
            None => Some(d),
            Some(HValue::Int(i)) => Some(*i as f64),
            Some(HValue::Float(f)) => Some(*f),
            // a scaling cfitsio would read differently (text, undefined): leave it to cfitsio
            Some(_) => None,
        };
        let blank = match (h.bitpix > 0, h.value("BLANK")) {
            (true, Some(HValue::Int(b))) => Some(*b),
            (_, None) | (false, _) => None,
            (true, Some(_)) => return None,
        };
        let cols = h.shape[0];
        let rows = h.shape.get(1).copied().unwrap_or(1);
        Some(Layout { offset: h.data_start, bitpix: h.bitpix, cols, rows, bscale: num("BSCALE", 1.0)?, bzero: num("BZERO", 0.0)?, blank })
    }

    fn bytes_per_pixel(&self) -> u64 {
        (self.bitpix.unsigned_abs() / 8) as u64
    }
}

/// An uncompressed image HDU read straight from the file: big-endian
/// values converted as cfitsio converts them (value × BSCALE + BZERO in
/// double precision, then single; BLANK → NaN). Much faster than cfitsio's
/// element loops for the large integer mosaics (DEIMOS: 74 Mpixel).
pub struct Direct {
    file: std::fs::File,
    path: PathBuf,
    layout: Layout,
    integer: bool,
    buf: Vec<u8>,
}

impl Direct {
    pub fn open(path: &Path, layout: Layout, integer: bool) -> Result<Direct, PixelError> {
        let file = std::fs::File::open(path).map_err(|e| PixelError { status: 0, text: e.to_string(), path: path.into(), context: "open".into() })?;
        Ok(Direct { file, path: path.into(), layout, integer, buf: Vec::new() })
    }

    /// Read the stored bytes of rows [y0, y0+n) into the buffer.
    fn read_raw(&mut self, y0: u64, n: u64) -> Result<(), PixelError> {
        let l = self.layout;
        let bpp = l.bytes_per_pixel();
        self.read_bytes(y0 * l.cols * bpp, n * l.cols * bpp, || format!("read rows {y0}..{} of {}x{}", y0 + n, l.cols, l.rows))
    }

    /// `len` stored bytes from `at` (relative to the data start) into the buffer.
    fn read_bytes(&mut self, at: u64, len: u64, context: impl FnOnce() -> String) -> Result<(), PixelError> {
        use std::os::unix::fs::FileExt;
        self.buf.resize(len as usize, 0);
        self.file.read_exact_at(&mut self.buf, self.layout.offset + at).map_err(|e| PixelError {
            status: 0,
            text: e.to_string(),
            path: self.path.clone(),
            context: context(),
        })
    }

    /// Rows [y0, y0+n), columns [x0, x0+nx), converted into `out`.
    fn read_rows_into(&mut self, y0: u64, n: u64, out: &mut Vec<f32>) -> Result<(), PixelError> {
        let cols = self.layout.cols;
        self.read_cols_into(y0, n, 0, cols, out)
    }

    fn read_cols_into(&mut self, y0: u64, n: u64, x0: u64, nx: u64, out: &mut Vec<f32>) -> Result<(), PixelError> {
        if n == 1 && nx < self.layout.cols {
            // one row: only its columns (zscale samples, overscan of one row)
            let l = self.layout;
            let bpp = l.bytes_per_pixel();
            self.read_bytes((y0 * l.cols + x0) * bpp, nx * bpp, || format!("read row {y0} columns {x0}..{} of {}x{}", x0 + nx, l.cols, l.rows))?;
            out.clear();
            convert(&self.buf, &l, out);
            return Ok(());
        }
        self.read_raw(y0, n)?;
        out.clear();
        out.reserve((n * nx) as usize);
        let l = self.layout;
        let bpp = l.bytes_per_pixel() as usize;
        let row_bytes = l.cols as usize * bpp;
        for r in 0..n as usize {
            let bytes = &self.buf[r * row_bytes + x0 as usize * bpp..r * row_bytes + (x0 + nx) as usize * bpp];
            convert(bytes, &l, out);
        }
        Ok(())
    }

    /// The whole first plane in memory.
    pub fn load(mut self) -> Result<Loaded, PixelError> {
        let (cols, rows) = (self.layout.cols, self.layout.rows);
        let mut data = Vec::new();
        self.read_rows_into(0, rows, &mut data)?;
        Ok(Loaded { cols, rows, integer: self.integer, data: std::sync::Arc::new(data) })
    }
}

/// Append the physical values of big-endian stored pixels to `out`, as
/// cfitsio computes them: stored × BSCALE + BZERO in double precision, then
/// single; a stored BLANK → NaN. Separate loops per case so each one is a
/// plain, vectorisable conversion.
fn convert(bytes: &[u8], l: &Layout, out: &mut Vec<f32>) {
    let (scale, zero) = (l.bscale, l.bzero);
    let plain = scale == 1.0 && zero == 0.0;
    macro_rules! ints {
        ($t:ty, $n:expr) => {{
            let it = bytes.chunks_exact($n).map(|b| <$t>::from_be_bytes(b.try_into().unwrap()));
            match l.blank {
                Some(blank) => out.extend(it.map(|v| if v as i64 == blank { f32::NAN } else { (v as f64 * scale + zero) as f32 })),
                None if plain => out.extend(it.map(|v| v as f32)),
                None => out.extend(it.map(|v| (v as f64 * scale + zero) as f32)),
            }
        }};
    }
    match l.bitpix {
        8 => match l.blank {
            Some(blank) => out.extend(bytes.iter().map(|v| if *v as i64 == blank { f32::NAN } else { (*v as f64 * scale + zero) as f32 })),
            None => out.extend(bytes.iter().map(|v| (*v as f64 * scale + zero) as f32)),
        },
        16 => ints!(i16, 2),
        32 => ints!(i32, 4),
        64 => ints!(i64, 8),
        -32 => {
            let it = bytes.chunks_exact(4).map(|b| f32::from_be_bytes(b.try_into().unwrap()));
            if plain { out.extend(it) } else { out.extend(it.map(|v| (v as f64 * scale + zero) as f32)) }
        }
        _ => out.extend(bytes.chunks_exact(8).map(|b| (f64::from_be_bytes(b.try_into().unwrap()) * scale + zero) as f32)),
    }
}

impl Pixels for Direct {
    fn shape(&self) -> (u64, u64) {
        (self.layout.cols, self.layout.rows)
    }

    /// Whole rows decoded straight into the buffer handed to the caller (the
    /// guest's `read-rows`): no row-by-row copy in between.
    fn read_rows(&mut self, y0: u64, n: u64) -> Result<Vec<f32>, PixelError> {
        self.check(&Rect { x0: 0, y0, nx: self.layout.cols, ny: n })?;
        let mut out = Vec::new();
        if n > 0 {
            self.read_rows_into(y0, n, &mut out)?;
        }
        Ok(out)
    }

    /// Integer data without BLANK: every pixel is finite, so the zscale
    /// sample is plain stride arithmetic and only the sampled rows are read.
    fn sample(&mut self, r: Option<Rect>, max: u64) -> Result<Vec<(u64, f32)>, PixelError> {
        let r = r.unwrap_or_else(|| self.whole());
        self.check(&r)?;
        let l = self.layout;
        let all_finite = l.bitpix > 0 && l.blank.is_none();
        if !all_finite {
            return sample_streamed(self, r, max);
        }
        let n = r.nx * r.ny;
        let stride = ((n as f64 / max.max(1) as f64).max(1.0)) as u64;
        let mut out = Vec::with_capacity(max.min(n) as usize);
        let mut span = Vec::new();
        let mut k = 0;
        // per sampled row, one read of the columns from its first to its last sample
        while k < n && (out.len() as u64) < max {
            let y = r.y0 + k / r.nx;
            let row_end = (k / r.nx + 1) * r.nx;
            let taken = ((row_end - k).div_ceil(stride)).min(max - out.len() as u64);
            let (x0, x1) = (k % r.nx, (k + (taken - 1) * stride) % r.nx);
            self.read_cols_into(y, 1, r.x0 + x0, x1 - x0 + 1, &mut span)?;
            out.extend((0..taken).map(|i| (y, span[(i * stride) as usize])));
            k += taken * stride;
        }
        Ok(out)
    }

    /// Block means; for integer data without BLANK (every pixel finite, sums
    /// exact in single precision) without the per-pixel finiteness tests.
    fn read_binned(&mut self, r: Rect, f: u64) -> Result<Vec<f32>, PixelError> {
        self.check(&r)?;
        let l = self.layout;
        let f = f.max(1);
        // block sums exact in single precision: integer values small enough
        let bound = (l.bscale.abs() * 32768.0 + l.bzero.abs()) * (f * f) as f64;
        let integral = l.bscale.fract() == 0.0 && l.bzero.fract() == 0.0;
        if !(integral && l.bitpix > 0 && l.bitpix <= 16 && l.blank.is_none() && bound < 16_777_216.0) {
            return binned_streamed(self, r, f);
        }
        let (ox, oy) = ((r.nx / f) as usize, (r.ny / f) as usize);
        let mut out = Vec::with_capacity(ox * oy);
        let mut acc = vec![0f32; ox];
        let mut k = 0u64;
        let used = Rect { x0: r.x0, y0: r.y0, nx: ox as u64 * f, ny: oy as u64 * f };
        let d = (f * f) as f32;
        self.for_rows(used, &mut |row| {
            for (a, block) in acc.iter_mut().zip(row.chunks_exact(f as usize)) {
                *a += block.iter().sum::<f32>();
            }
            k += 1;
            if k % f == 0 {
                out.extend(acc.iter().map(|s| s / d));
                acc.fill(0.0);
            }
        })?;
        Ok(out)
    }

    /// Pixels ≥ threshold counted on the stored integers when the data are
    /// integers (no conversion), else on the converted values.
    fn count_at_least(&mut self, r: Option<Rect>, threshold: f64) -> Result<u64, PixelError> {
        let r = r.unwrap_or_else(|| self.whole());
        self.check(&r)?;
        let l = self.layout;
        if !(l.bitpix == 16 && l.bscale > 0.0) {
            let mut n = 0u64;
            self.for_rows(r, &mut |row| n += row.iter().filter(|v| **v as f64 >= threshold).count() as u64)?;
            return Ok(n);
        }
        // stored s counts when (s·BSCALE + BZERO) as f32 ≥ threshold; since
        // that is monotonic in s, find the smallest such stored value
        let phys = |s: i64| (s as f64 * l.bscale + l.bzero) as f32 as f64;
        let mut lo = i16::MIN as i64;
        let mut hi = i16::MAX as i64 + 1; // first value known to count (or past the end)
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if phys(mid) >= threshold { hi = mid } else { lo = mid + 1 }
        }
        let first = lo;
        let blank = l.blank;
        let mut n = 0u64;
        let mut y = r.y0;
        while y < r.y0 + r.ny {
            let rows = ROWS_PER_READ.min(r.y0 + r.ny - y);
            self.read_raw(y, rows)?;
            let row_bytes = (l.cols * 2) as usize;
            for row in self.buf.chunks_exact(row_bytes) {
                let cells = &row[(r.x0 * 2) as usize..((r.x0 + r.nx) * 2) as usize];
                n += cells
                    .chunks_exact(2)
                    .map(|b| i16::from_be_bytes([b[0], b[1]]) as i64)
                    .filter(|s| *s >= first && blank != Some(*s))
                    .count() as u64;
            }
            y += rows;
        }
        Ok(n)
    }

    fn is_integer(&self) -> bool {
        self.integer
    }

    fn out_of_range(&self, r: &Rect) -> PixelError {
        PixelError {
            status: 0,
            text: "out of range".into(),
            path: self.path.clone(),
            context: format!("{r:?} outside {}x{}", self.layout.cols, self.layout.rows),
        }
    }

    fn for_rows(&mut self, r: Rect, f: &mut dyn FnMut(&[f32])) -> Result<(), PixelError> {
        self.check(&r)?;
        let mut rows = Vec::new();
        let mut y = r.y0;
        while y < r.y0 + r.ny {
            let n = ROWS_PER_READ.min(r.y0 + r.ny - y);
            // only the rectangle's columns are converted
            self.read_cols_into(y, n, r.x0, r.nx, &mut rows)?;
            for row in rows.chunks(r.nx.max(1) as usize) {
                f(row);
            }
            y += n;
        }
        Ok(())
    }
}

/// One image HDU streamed from disk through cfitsio.
pub struct Image {
    reader: Reader,
    hdu: usize,
    pub geometry: Geometry,
    integer: bool,
}

impl Image {
    /// Open an image HDU. `integer` tells whether scaled values are integers.
    pub fn open(path: &Path, hdu: usize, integer: bool) -> Result<Image, PixelError> {
        let mut reader = Reader::open(path)?;
        let geometry = reader.geometry(hdu)?;
        Ok(Image { reader, hdu, geometry, integer })
    }

    /// Read the whole first plane into memory.
    pub fn load(self) -> Result<Loaded, PixelError> {
        self.load_plane(0)
    }

    fn check_plane(&self, k: u64) -> Result<(), PixelError> {
        if k < self.geometry.planes.max(1) {
            return Ok(());
        }
        Err(PixelError {
            status: 0,
            text: format!("no plane {k}"),
            path: self.reader.path.clone(),
            context: format!("HDU {} has {} plane(s)", self.hdu, self.geometry.planes),
        })
    }

    /// Read plane `k` (NAXIS3.. flattened, counted from 0) into memory.
    pub fn load_plane(mut self, k: u64) -> Result<Loaded, PixelError> {
        self.check_plane(k)?;
        let g = self.geometry;
        let n = g.cols * g.rows;
        let mut data = vec![0f32; n as usize];
        self.reader.read_f32(self.hdu, k * n, &mut data)?;
        Ok(Loaded { cols: g.cols, rows: g.rows, integer: self.integer, data: std::sync::Arc::new(data) })
    }

    /// Plane `a` minus plane `b`, both read in double precision and
    /// subtracted before the result is narrowed to f32, so unsigned data
    /// never wraps (SCALES defect S4) and 32-bit values keep their digits.
    pub fn plane_difference(mut self, a: u64, b: u64) -> Result<Loaded, PixelError> {
        self.check_plane(a)?;
        self.check_plane(b)?;
        let g = self.geometry;
        let n = g.cols * g.rows;
        let (mut x, mut y) = (vec![0f64; n as usize], vec![0f64; n as usize]);
        self.reader.read_f64(self.hdu, a * n, &mut x)?;
        self.reader.read_f64(self.hdu, b * n, &mut y)?;
        let data = x.iter().zip(&y).map(|(p, q)| (p - q) as f32).collect();
        Ok(Loaded { cols: g.cols, rows: g.rows, integer: self.integer, data: std::sync::Arc::new(data) })
    }
}

impl Pixels for Image {
    fn shape(&self) -> (u64, u64) {
        (self.geometry.cols, self.geometry.rows)
    }

    fn is_integer(&self) -> bool {
        self.integer
    }

    fn out_of_range(&self, r: &Rect) -> PixelError {
        PixelError {
            status: 0,
            text: "out of range".into(),
            path: self.reader.path.clone(),
            context: format!("{r:?} outside {}x{}", self.geometry.cols, self.geometry.rows),
        }
    }

    fn for_rows(&mut self, r: Rect, f: &mut dyn FnMut(&[f32])) -> Result<(), PixelError> {
        self.check(&r)?;
        let cols = self.geometry.cols;
        let mut y = r.y0;
        let mut buf = Vec::new();
        while y < r.y0 + r.ny {
            let n = ROWS_PER_READ.min(r.y0 + r.ny - y);
            buf.resize((n * cols) as usize, 0.0);
            self.reader.read_f32(self.hdu, y * cols, &mut buf)?;
            for row in buf.chunks(cols as usize) {
                f(&row[r.x0 as usize..(r.x0 + r.nx) as usize]);
            }
            y += n;
        }
        Ok(())
    }
}

/// An image HDU held in memory (shared between statistics and previews).
#[derive(Clone)]
pub struct Loaded {
    cols: u64,
    rows: u64,
    integer: bool,
    data: std::sync::Arc<Vec<f32>>,
}

impl Pixels for Loaded {
    fn shape(&self) -> (u64, u64) {
        (self.cols, self.rows)
    }

    fn is_integer(&self) -> bool {
        self.integer
    }

    fn out_of_range(&self, r: &Rect) -> PixelError {
        PixelError { status: 0, text: "out of range".into(), path: PathBuf::new(), context: format!("{r:?} outside {}x{}", self.cols, self.rows) }
    }

    fn contiguous(&self, r: &Rect) -> Option<&[f32]> {
        (r.x0 == 0 && r.nx == self.cols && r.y0 + r.ny <= self.rows)
            .then(|| &self.data[(r.y0 * self.cols) as usize..((r.y0 + r.ny) * self.cols) as usize])
    }

    fn for_rows(&mut self, r: Rect, f: &mut dyn FnMut(&[f32])) -> Result<(), PixelError> {
        self.check(&r)?;
        for y in r.y0..r.y0 + r.ny {
            let start = (y * self.cols + r.x0) as usize;
            f(&self.data[start..start + r.nx as usize]);
        }
        Ok(())
    }
}

/// Order-preserving key of a finite f32 (sorts like the value).
#[inline]
fn key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 { !b } else { b | 0x8000_0000 }
}

/// numpy `median` of finite values (mean of the two middle values).
pub fn median_of(values: &mut [f32]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n < 4096 {
        let (_, m, _) = values.select_nth_unstable_by(n / 2, f32::total_cmp);
        let upper = *m as f64;
        if n % 2 == 1 {
            return upper;
        }
        let lower = values[..n / 2].iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        return (lower + upper) / 2.0;
    }
    // both middle values from one bracketing pass (or one radix pass)
    median_in_place_free(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(cols: u64, rows: u64, data: Vec<f32>) -> Loaded {
        Loaded { cols, rows, integer: false, data: std::sync::Arc::new(data) }
    }

    /// The same pixels streamed row by row (the path without `contiguous`).
    struct Streamed(Loaded);
    impl Pixels for Streamed {
        fn shape(&self) -> (u64, u64) {
            self.0.shape()
        }
        fn is_integer(&self) -> bool {
            false
        }
        fn for_rows(&mut self, r: Rect, f: &mut dyn FnMut(&[f32])) -> Result<(), PixelError> {
            self.0.for_rows(r, f)
        }
        fn out_of_range(&self, r: &Rect) -> PixelError {
            self.0.out_of_range(r)
        }
    }

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s % 50_000) as f32) * 0.25 - 900.0
            })
            .collect()
    }

    #[test]
    fn in_memory_statistics_equal_the_streamed_ones() {
        for (cols, rows) in [(300u64, 200u64), (301, 201), (40, 30)] {
            let mut data = noise((cols * rows) as usize, cols);
            let a = loaded(cols, rows, data.clone()).stats(None, Some(10_000.0)).unwrap();
            let b = Streamed(loaded(cols, rows, data.clone())).stats(None, Some(10_000.0)).unwrap();
            assert_eq!((a.count, a.finite, a.saturated, a.min, a.max), (b.count, b.finite, b.saturated, b.min, b.max));
            assert_eq!(a.median, b.median, "{cols}x{rows}");
            assert!((a.mean - b.mean).abs() < 1e-9 && (a.std - b.std).abs() < 1e-9);
            let mut sorted = data.clone();
            sorted.sort_by(f32::total_cmp);
            let n = sorted.len();
            let want = if n % 2 == 1 { sorted[n / 2] as f64 } else { (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0 };
            assert_eq!(a.median, want);
            // with NaNs (blank pixels) the finite values count
            data[7] = f32::NAN;
            data[(cols * rows) as usize - 1] = f32::NAN;
            let a = loaded(cols, rows, data.clone()).stats(None, None).unwrap();
            let b = Streamed(loaded(cols, rows, data)).stats(None, None).unwrap();
            assert_eq!((a.finite, a.median, a.min, a.max), (b.finite, b.median, b.min, b.max));
            assert_eq!(a.finite, cols * rows - 2);
        }
    }

    #[test]
    fn zscale_sample_takes_every_stride_th_finite_value() {
        let mut data = noise(1000, 3);
        data[0] = f32::NAN;
        data[5] = f32::INFINITY;
        let finite: Vec<(u64, f32)> =
            data.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| (i as u64 / 50, *v)).collect();
        let s = loaded(50, 20, data.clone()).sample(None, 100).unwrap();
        let stride = finite.len() / 100; // 998 finite → every 9th
        let want: Vec<(u64, f32)> = finite.iter().copied().step_by(stride).take(100).collect();
        assert_eq!(s, want);
        // all finite (the in-memory fast path) equals the streamed path
        data[0] = 1.0;
        data[5] = 2.0;
        let fast = loaded(50, 20, data.clone()).sample(None, 100).unwrap();
        let slow = Streamed(loaded(50, 20, data)).sample(None, 100).unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast.len(), 100);
        assert_eq!(fast[1].0, 0, "row of the 11th value");
    }

    #[test]
    fn sampled_and_radix_selection_agree_with_sorting() {
        let mut seed = 11u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // smooth, clumped, constant and adversarially sorted data
        let sets: Vec<Vec<f32>> = vec![
            (0..200_001).map(|_| (next() % 10_000) as f32 * 0.1).collect(),
            (0..100_000).map(|i| if i % 3 == 0 { 5.0 } else { (next() % 7) as f32 }).collect(),
            vec![42.0; 50_000],
            (0..60_000).map(|i| i as f32).collect(),
            (0..60_000).rev().map(|i| -(i as f32)).collect(),
        ];
        for v in sets {
            let n = v.len();
            let mut sorted = v.clone();
            sorted.sort_by(f32::total_cmp);
            for k in [0, n / 4, n / 2 - 1, n / 2, n - 2] {
                let want = (sorted[k], sorted[k + 1]);
                if let Some(got) = kth_pair_by_sample(&v, k) {
                    assert_eq!(got, want, "n={n} k={k}");
                }
                assert_eq!(kth_pair(&v, k), want, "n={n} k={k}");
            }
            let want = if n % 2 == 1 { sorted[n / 2] as f64 } else { (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0 };
            assert_eq!(median_in_place_free(&v), want);
        }
    }

    #[test]
    fn the_bracketing_sample_is_not_fooled_by_columns() {
        // a spectrum-like frame: the value follows the column, 2048 columns
        // (a plain stride of n/4096 = 512 would sample the same 4 columns of every row)
        let (cols, rows) = (2048usize, 1024usize);
        let v: Vec<f32> = (0..cols * rows).map(|i| ((i % cols) % 512) as f32 * 10.0 + ((i / cols) % 7) as f32 * 0.1).collect();
        let n = v.len();
        let k = n / 2 - 1;
        let mut sorted = v.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(kth_pair_by_sample(&v, k), Some((sorted[k], sorted[k + 1])), "the bracket must hold rank k");
    }

    #[test]
    fn radix_median_equals_sorting() {
        let mut seed = 7u64;
        let mut vals: Vec<f32> = (0..100_001)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed % 20_000) as f32 - 10_000.0) * 0.37
            })
            .collect();
        for n in [100_001usize, 100_000, 5000, 7] {
            let v = &mut vals[..n];
            let mut sorted = v.to_vec();
            sorted.sort_by(f32::total_cmp);
            let want = if n % 2 == 1 { sorted[n / 2] as f64 } else { (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0 };
            assert_eq!(median_of(v), want, "n={n}");
        }
    }
}
