//! Baseline grey JPEG encoder (ITU T.81): the Annex K luminance tables
//! scaled by quality as libjpeg scales them, the AAN floating-point forward
//! DCT, quantisation by reciprocal multiplication, and Huffman coding with
//! the Annex K luminance codes. Optionally a restart marker after every row
//! of 8×8 blocks (what [`crate::jpeg::join`] relies on).
//!
//! The DCT and quantisation work on four lanes at a time through
//! [`crate::lanes`], so the guest build runs them as wasm `simd128` vectors. Edges are padded by repeating the last column and row.

use crate::Grey;

use crate::lanes::{self, F4};

/// Annex K.1 luminance quantisation table, natural (row-major) order.
const LUMA_QUANT: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// Annex K.3 luminance DC code: number of codes of each length 1–16, then the symbols.
const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/// Annex K.3 luminance AC code.
const AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14,
    0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09,
    0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65,
    0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
    0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
    0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
    0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

/// Zig-zag position k → natural index (row · 8 + column), walking the diagonals.
const ZIGZAG: [u8; 64] = {
    let mut z = [0u8; 64];
    let (mut k, mut s) = (0, 0);
    while s < 15 {
        let lo = if s > 7 { s - 7 } else { 0 };
        let hi = if s < 7 { s } else { 7 };
        let mut i = 0;
        while i <= hi - lo {
            // even diagonals run bottom-left to top-right, odd ones the other way
            let row = if s % 2 == 0 { hi - i } else { lo + i };
            z[k] = (row * 8 + (s - row)) as u8;
            k += 1;
            i += 1;
        }
        s += 1;
    }
    z
};

/// AAN scale factors: cos(kπ/16)·√2 (1 for k = 0).
const AAN: [f32; 8] = [1.0, 1.387_039_8, 1.306_563, 1.175_875_6, 1.0, 0.785_694_96, 0.541_196_1, 0.275_899_38];

/// Quality-scaled quantisation table (natural order), as libjpeg's
/// `jpeg_quality_scaling` with baseline limits.
fn quant_table(quality: u8) -> [u8; 64] {
    let q = quality.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    LUMA_QUANT.map(|t| ((t as u32 * scale + 50) / 100).clamp(1, 255) as u8)
}

/// One Huffman code per symbol, packed as length << 16 | code.
struct Code([u32; 256]);

impl Code {
    /// Annex C: canonical codes from the counts per length.
    fn new(bits: &[u8; 16], vals: &[u8]) -> Code {
        let mut table = [0u32; 256];
        let (mut code, mut k) = (0u16, 0usize);
        for (len, &n) in bits.iter().enumerate() {
            for _ in 0..n {
                table[vals[k] as usize] = ((len as u32 + 1) << 16) | code as u32;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        Code(table)
    }

    /// The symbol's code followed by `size` extra bits: (bits, length).
    #[inline(always)]
    fn with(&self, symbol: usize, size: u32, extra: u32) -> (u32, u32) {
        let c = self.0[symbol];
        (((c & 0xFFFF) << size) | extra, (c >> 16) + size)
    }
}

/// The entropy-coded bit stream, with 0xFF byte stuffing.
struct Bits {
    acc: u64,
    n: u32,
    out: Vec<u8>,
}

impl Bits {
    #[inline(always)]
    fn put(&mut self, code: u32, len: u32) {
        self.acc = (self.acc << len) | code as u64;
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            let w = (self.acc >> self.n) as u32;
            // a byte of 0xFF anywhere in the word: stuff byte by byte
            if !has_ff(w) {
                self.out.extend_from_slice(&w.to_be_bytes());
            } else {
                for b in w.to_be_bytes() {
                    self.byte(b);
                }
            }
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.out.push(b);
        if b == 0xFF {
            self.out.push(0);
        }
    }

    /// Pad the last byte with 1 bits and write it out.
    fn flush(&mut self) {
        let pad = (8 - self.n % 8) % 8;
        self.acc = (self.acc << pad) | ((1u64 << pad) - 1);
        self.n += pad;
        while self.n >= 8 {
            self.n -= 8;
            self.byte((self.acc >> self.n) as u8);
        }
    }
}

#[inline(always)]
fn has_ff(w: u32) -> bool {
    let x = !w; // a 0xFF byte of w is a zero byte of x
    x.wrapping_sub(0x0101_0101) & !x & 0x8080_8080 != 0
}

/// Size category and the value's low bits (negative values as v − 1),
/// without branches.
#[inline(always)]
fn category(v: i32) -> (u32, u32) {
    let m = v >> 31;
    let size = 32 - ((v ^ m) - m).leading_zeros();
    let bits = ((v + m) as u32) & ((1u32 << size) - 1);
    (size, bits)
}

/// The 1-D AAN DCT of eight vectors (element k of each lane's sequence).
#[inline(always)]
fn dct8(d: &mut [F4; 8]) {
    let c707 = F4::splat(0.707_106_78);
    let t0 = d[0].add(d[7]);
    let t7 = d[0].sub(d[7]);
    let t1 = d[1].add(d[6]);
    let t6 = d[1].sub(d[6]);
    let t2 = d[2].add(d[5]);
    let t5 = d[2].sub(d[5]);
    let t3 = d[3].add(d[4]);
    let t4 = d[3].sub(d[4]);
    // even part
    let t10 = t0.add(t3);
    let t13 = t0.sub(t3);
    let t11 = t1.add(t2);
    let t12 = t1.sub(t2);
    d[0] = t10.add(t11);
    d[4] = t10.sub(t11);
    let z1 = t12.add(t13).mul(c707);
    d[2] = t13.add(z1);
    d[6] = t13.sub(z1);
    // odd part
    let t10 = t4.add(t5);
    let t11 = t5.add(t6);
    let t12 = t6.add(t7);
    let z5 = t10.sub(t12).mul(F4::splat(0.382_683_43));
    let z2 = t10.mul(F4::splat(0.541_196_1)).add(z5);
    let z4 = t12.mul(F4::splat(1.306_563)).add(z5);
    let z3 = t11.mul(c707);
    let z11 = t7.add(z3);
    let z13 = t7.sub(z3);
    d[5] = z13.add(z2);
    d[3] = z13.sub(z2);
    d[1] = z11.add(z4);
    d[7] = z11.sub(z4);
}

/// Transform and quantise one block (8 rows of ≥ 8 pixels, `stride` apart).
#[inline(always)]
fn block(px: &[u8], stride: usize, recip: &[[F4; 2]; 8]) -> [i16; 64] {
    // rows as (left, right) halves; vertical pass across the rows
    let mut left = [F4::splat(0.0); 8];
    let mut right = [F4::splat(0.0); 8];
    for r in 0..8 {
        (left[r], right[r]) = F4::load8(&px[r * stride..]);
    }
    dct8(&mut left);
    dct8(&mut right);
    // transpose: vector x (a column) holding the vertical frequencies in lanes
    let mut cols = [[F4::splat(0.0); 2]; 8];
    for (g, half) in [(0, &left), (1, &right)] {
        for kb in 0..2 {
            let t = F4::transpose([half[4 * kb], half[4 * kb + 1], half[4 * kb + 2], half[4 * kb + 3]]);
            for (j, v) in t.into_iter().enumerate() {
                cols[4 * g + j][kb] = v;
            }
        }
    }
    // horizontal pass across the columns: cols[u][g] lane l = coefficient (v = 4g + l, u)
    let (mut d0, mut d1): ([F4; 8], [F4; 8]) = (core::array::from_fn(|u| cols[u][0]), core::array::from_fn(|u| cols[u][1]));
    dct8(&mut d0);
    dct8(&mut d1);
    // row u of `out` holds natural indices v·8 + u for v = 0…7
    let mut out = [0i16; 64];
    for u in 0..8 {
        let q = F4::quantised_pair(d0[u].mul(recip[u][0]), d1[u].mul(recip[u][1]));
        out[u * 8..u * 8 + 8].copy_from_slice(&q);
    }
    out
}

/// Zig-zag position k → index in a transformed block (`out[u·8 + v]` =
/// natural index v·8 + u).
const FROM_ZIGZAG: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        let n = ZIGZAG[k] as usize;
        t[k] = ((n % 8) * 8 + n / 8) as u8;
        k += 1;
    }
    t
};

/// Per row r of a transformed block, per byte of its nonzero mask: the
/// zig-zag positions of those coefficients as bits, so a block's zig-zag
/// mask is eight lookups instead of a 64-value reorder.
static ZIGZAG_BITS: [[u64; 256]; 8] = {
    let mut inv = [0u8; 64]; // transformed index → zig-zag position
    let mut k = 0;
    while k < 64 {
        inv[FROM_ZIGZAG[k] as usize] = k as u8;
        k += 1;
    }
    let mut t = [[0u64; 256]; 8];
    let mut r = 0;
    while r < 8 {
        let mut byte = 0;
        while byte < 256 {
            let mut bits = 0u64;
            let mut j = 0;
            while j < 8 {
                if byte & (1 << j) != 0 {
                    bits |= 1u64 << inv[r * 8 + j];
                }
                j += 1;
            }
            t[r][byte] = bits;
            byte += 1;
        }
        r += 1;
    }
    t
};

/// The zig-zag mask of a transformed block's nonzero coefficients.
#[inline(always)]
fn zigzag_mask(out: &[i16; 64]) -> u64 {
    let m = lanes::nonzero(out);
    (0..8).fold(0, |z, r| z | ZIGZAG_BITS[r][((m >> (8 * r)) & 0xFF) as usize])
}

/// Encode a grey image; with `restart`, a restart marker after every row of blocks.
pub fn encode(img: &Grey, quality: u8, restart: bool) -> Result<Vec<u8>, String> {
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 || w > 65535 || h > 65535 || img.pixels.len() != w * h {
        return Err(format!("cannot encode a {w}x{h} JPEG"));
    }
    let qt = quant_table(quality);
    let recip: [[F4; 2]; 8] = core::array::from_fn(|u| {
        core::array::from_fn(|g| {
            let f = |l: usize| {
                let v = 4 * g + l;
                1.0 / (qt[v * 8 + u] as f32 * AAN[v] * AAN[u] * 8.0)
            };
            F4::from_array(core::array::from_fn(f))
        })
    });
    let mcus = w.div_ceil(8);
    let mut out = Vec::with_capacity(w * h / 3 + 1024);
    header(&mut out, w as u16, h as u16, &qt, restart.then_some(mcus as u16));
    let (dc, ac) = (Code::new(&DC_BITS, &DC_VALS), Code::new(&AC_BITS, &AC_VALS));
    let mut bits = Bits { acc: 0, n: 0, out };
    // eight rows, padded to whole blocks by repeating the last column and row
    let stride = mcus * 8;
    let mut band = vec![0u8; stride * 8];
    let mut pred = 0i32;
    for by in 0..h.div_ceil(8) {
        for r in 0..8 {
            let y = (by * 8 + r).min(h - 1);
            let src = &img.pixels[y * w..(y + 1) * w];
            let dst = &mut band[r * stride..(r + 1) * stride];
            dst[..w].copy_from_slice(src);
            dst[w..].fill(src[w - 1]);
        }
        if restart && by > 0 {
            bits.flush();
            bits.out.extend_from_slice(&[0xFF, 0xD0 + ((by - 1) % 8) as u8]);
            pred = 0;
        }
        for bx in 0..mcus {
            let z = block(&band[bx * 8..], stride, &recip);
            let diff = z[0] as i32 - pred;
            pred = z[0] as i32;
            let (size, v) = category(diff);
            let (code, len) = dc.with(size as usize, size, v);
            bits.put(code, len);
            // only the nonzero coefficients are visited, in zig-zag order
            let mut m = zigzag_mask(&z) & !1;
            let mut prev = 0u32;
            while m != 0 {
                let k = m.trailing_zeros();
                let mut run = k - prev - 1;
                while run >= 16 {
                    let (code, len) = ac.with(0xF0, 0, 0);
                    bits.put(code, len);
                    run -= 16;
                }
                let (size, v) = category(z[FROM_ZIGZAG[k as usize] as usize] as i32);
                let (code, len) = ac.with(((run << 4) | size) as usize, size, v);
                bits.put(code, len);
                prev = k;
                m &= m - 1;
            }
            if prev != 63 {
                let (code, len) = ac.with(0x00, 0, 0);
                bits.put(code, len);
            }
        }
    }
    bits.flush();
    let mut out = bits.out;
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// SOI, JFIF, DQT, SOF0, DHT ×2, DRI (with a restart interval), SOS.
fn header(out: &mut Vec<u8>, w: u16, h: u16, qt: &[u8; 64], restart: Option<u16>) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // JFIF 1.01, no units, 1:1 density, no thumbnail
    out.extend_from_slice(&[0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    out.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    out.extend(ZIGZAG.iter().map(|&n| qt[n as usize]));
    let [hh, hl] = h.to_be_bytes();
    let [wh, wl] = w.to_be_bytes();
    out.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, hh, hl, wh, wl, 1, 1, 0x11, 0]);
    for (class, bits, vals) in [(0x00u8, &DC_BITS, &DC_VALS[..]), (0x10, &AC_BITS, &AC_VALS[..])] {
        let len = (3 + 16 + vals.len()) as u16;
        out.extend_from_slice(&[0xFF, 0xC4]);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(class);
        out.extend_from_slice(bits);
        out.extend_from_slice(vals);
    }
    if let Some(n) = restart {
        out.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(jpeg: &[u8]) -> (u16, u16, Vec<u8>) {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        let px = d.decode().expect("a decodable JPEG");
        let info = d.info().unwrap();
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::L8);
        (info.width, info.height, px)
    }

    /// A smooth field with a few stars and some noise, like a sky frame.
    fn sky(w: u32, h: u32) -> Grey {
        let px = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let noise = ((i.wrapping_mul(2_654_435_761) >> 24) % 9) as f32;
                let star = if (i * 7) % 997 == 0 { 120.0 } else { 0.0 };
                (40.0 + 0.2 * x + 0.1 * y + noise + star).min(255.0) as u8
            })
            .collect();
        Grey { width: w, height: h, pixels: px }
    }

    #[test]
    fn zigzag_is_the_standard_order() {
        let standard = [
            0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
            14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
            46, 53, 60, 61, 54, 47, 55, 62, 63,
        ];
        assert_eq!(ZIGZAG, standard);
        let mut seen = ZIGZAG.to_vec();
        seen.sort();
        assert_eq!(seen, (0..64).collect::<Vec<u8>>());
    }

    #[test]
    fn quality_scaling_is_libjpegs() {
        assert_eq!(quant_table(50), LUMA_QUANT.map(|v| v as u8));
        assert_eq!(quant_table(92)[0], 3); // (16·16 + 50) / 100
        assert_eq!(quant_table(100), [1; 64]);
        assert_eq!(quant_table(1)[63], 255);
    }

    #[test]
    fn decodes_to_the_image_at_every_size() {
        for (w, h) in [(1, 1), (8, 8), (9, 7), (37, 29), (64, 17), (300, 41)] {
            let img = sky(w, h);
            for restart in [false, true] {
                let jpeg = encode(&img, 92, restart).unwrap();
                let (dw, dh, px) = decode(&jpeg);
                assert_eq!((dw as u32, dh as u32), (w, h));
                let mad = px.iter().zip(&img.pixels).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>()
                    / px.len() as f64;
                assert!(mad < 3.0, "{w}x{h} restart {restart}: mean abs error {mad}");
            }
        }
    }

    #[test]
    fn flat_images_and_extremes_are_exact_enough() {
        for v in [0u8, 1, 127, 128, 254, 255] {
            let img = Grey { width: 24, height: 16, pixels: vec![v; 24 * 16] };
            let (_, _, px) = decode(&encode(&img, 92, true).unwrap());
            assert!(px.iter().all(|p| (*p as i32 - v as i32).abs() <= 1), "{v}: {:?}", &px[..4]);
        }
        // a checkerboard of 0 and 255: the largest coefficients, and 0xFF bytes to stuff
        let px = (0..64 * 64).map(|i| if (i % 64 + i / 64) % 2 == 0 { 0 } else { 255 }).collect();
        let img = Grey { width: 64, height: 64, pixels: px };
        let (_, _, out) = decode(&encode(&img, 100, false).unwrap());
        let mad = out.iter().zip(&img.pixels).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>() / 4096.0;
        assert!(mad < 8.0, "{mad}");
    }

    fn mad(a: &[u8], b: &[u8]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64
    }

    #[test]
    fn quantisation_step_one_is_nearly_lossless() {
        // every table entry 1: only the DCT's rounding is left (a wrong
        // transform or a transposed table shows here)
        let img = sky(203, 77);
        let (_, _, px) = decode(&encode(&img, 100, false).unwrap());
        assert!(mad(&px, &img.pixels) < 0.6, "{}", mad(&px, &img.pixels));
        assert!(px.iter().zip(&img.pixels).all(|(a, b)| (*a as i32 - *b as i32).abs() <= 2));
    }

    #[test]
    fn as_faithful_and_as_small_as_the_crate_encoder_it_replaced() {
        let img = sky(320, 200);
        for q in [50u8, 85, 92] {
            let ours = encode(&img, q, false).unwrap();
            let mut theirs = Vec::new();
            jpeg_encoder::Encoder::new(&mut theirs, q)
                .encode(&img.pixels, 320, 200, jpeg_encoder::ColorType::Luma)
                .unwrap();
            let (e_ours, e_theirs) = (mad(&decode(&ours).2, &img.pixels), mad(&decode(&theirs).2, &img.pixels));
            assert!(e_ours <= e_theirs * 1.05 + 0.02, "q{q}: error {e_ours} vs {e_theirs}");
            assert!(ours.len() as f64 <= theirs.len() as f64 * 1.05, "q{q}: {} vs {} bytes", ours.len(), theirs.len());
        }
    }

    #[test]
    fn lower_quality_is_smaller() {
        let img = sky(256, 128);
        let (a, b) = (encode(&img, 92, false).unwrap(), encode(&img, 50, false).unwrap());
        assert!(b.len() < a.len(), "{} vs {}", b.len(), a.len());
        assert_eq!(decode(&b).0, 256);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(encode(&Grey { width: 0, height: 4, pixels: vec![] }, 92, false).is_err());
        assert!(encode(&Grey { width: 4, height: 4, pixels: vec![0; 3] }, 92, false).is_err());
    }
}
