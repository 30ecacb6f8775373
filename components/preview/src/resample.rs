//! Area-average resize of a grey image to a target width (aspect kept, height
//! = int(H · width / W), as Pillow's resize call in the reference HIRES
//! previews computes it), or to an exact size the plan chose (SCALES).

use crate::Grey;

/// Weights of source pixels covering output pixel `o` when scaling `n_in` to `n_out`.
fn spans(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let (a, b) = (o as f64 * scale, (o as f64 + 1.0) * scale);
            let mut w = Vec::new();
            let mut i = a.floor() as usize;
            while (i as f64) < b && i < n_in {
                let lo = a.max(i as f64);
                let hi = b.min(i as f64 + 1.0);
                if hi > lo {
                    w.push((i, ((hi - lo) / (b - a)) as f32));
                }
                i += 1;
            }
            w
        })
        .collect()
}

pub fn resize_to_width(img: &Grey, width: u32) -> Grey {
    let height = ((img.height as f64 * width as f64 / img.width as f64) as u32).max(1);
    resize(img, width, height)
}

/// Area-average resize to `width` × `height`.
pub fn resize(img: &Grey, width: u32, height: u32) -> Grey {
    let (w_in, h_in) = (img.width as usize, img.height as usize);
    let xs = spans(w_in, width as usize);
    let ys = spans(h_in, height as usize);
    // horizontal pass per source row, then vertical
    let mut tmp = vec![0f32; h_in * width as usize];
    for y in 0..h_in {
        let row = &img.pixels[y * w_in..(y + 1) * w_in];
        for (ox, w) in xs.iter().enumerate() {
            tmp[y * width as usize + ox] = w.iter().map(|(i, f)| row[*i] as f32 * f).sum();
        }
    }
    let mut out = vec![0u8; width as usize * height as usize];
    for (oy, w) in ys.iter().enumerate() {
        for ox in 0..width as usize {
            let v: f32 = w.iter().map(|(i, f)| tmp[i * width as usize + ox] * f).sum();
            out[oy * width as usize + ox] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Grey { width, height, pixels: out }
}
