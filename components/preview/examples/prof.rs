use koa_preview::*;
use std::time::Instant;
struct Mem { w: u32, h: u32, d: Vec<f32>, int: bool }
impl Source for Mem {
    fn shape(&self) -> (u32, u32) { (self.w, self.h) }
    fn is_integer(&self) -> bool { self.int }
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String> { Ok(self.d[(y0 * self.w) as usize..((y0 + n) * self.w) as usize].to_vec()) }
    fn read_section(&self, r: Region) -> Result<Vec<f32>, String> {
        let mut o = Vec::new(); for y in r.y0..r.y0 + r.ny { o.extend_from_slice(&self.d[(y * self.w + r.x0) as usize..(y * self.w + r.x0 + r.nx) as usize]); } Ok(o) }
    fn sample(&self, _r: Option<Region>, max: u32) -> Result<Vec<(u32, f32)>, String> {
        let s = (self.d.len() / max as usize).max(1); Ok((0..self.d.len()).step_by(s).take(max as usize).map(|i| ((i as u32) / self.w, self.d[i])).collect()) }
}
fn load(p: &str, w: u32, h: u32, int: bool) -> Mem {
    let b = std::fs::read(p).unwrap();
    let d = b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Mem { w, h, d, int }
}
fn passes(m: &Mem) {
    let t = Instant::now();
    let mut rows = 0usize;
    for y in (0..m.h).step_by(64) { let n = 64.min(m.h - y); rows += m.read_rows(y, n).unwrap().len(); }
    let t_read = t.elapsed();
    let t = Instant::now();
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in &m.d { if v.is_finite() { lo = lo.min(*v); hi = hi.max(*v); } }
    let t_mm = t.elapsed();
    let t = Instant::now();
    let mut e = Equalizer::new(lo, hi, true);
    for v in &m.d { e.add(*v); }
    e.finish();
    let t_hist = t.elapsed();
    let t = Instant::now();
    let mut out = vec![0u8; m.w as usize];
    for row in m.d.chunks(m.w as usize) { e.map_row(row, 0.0, &mut out); }
    let t_map = t.elapsed();
    println!("passes: read {t_read:?} ({rows}) minmax {t_mm:?} hist {t_hist:?} map {t_map:?}");
}
fn main() {
    for (name, m, scaling) in [("kcwi", load("/tmp/vs/k.f32", 2300, 2200, true), Scaling::HistogramEqualize), ("nires", load("/tmp/vs/n.f32", 2048, 1024, false), Scaling::ZscaleAsinh)] {
        if name == "kcwi" { passes(&m); passes(&m); }
        let plan = Plan::single(m.w, m.h, scaling, 92);
        for _ in 0..3 {
            let t = Instant::now();
            let g = render_grey(&plan, &[&m]).unwrap();
            let t1 = t.elapsed();
            let j = encode_jpeg(&g, 92).unwrap();
            println!("{name}: grey {:?} jpeg {:?} ({} bytes)", t1, t.elapsed() - t1, j.len());
        }
    }
}
