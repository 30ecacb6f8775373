//! The raw NIRES input of the reference's gold case, synthesised from its
//! outputs: the header is the gold metadata row minus what DEP computes
//! (keyword-table Source `KOA`) and minus null columns; the pixels are a
//! 2048×1024 float32 dome flat (bright spectral orders on a dark background)
//! scaled so that its mean, median and standard deviation round to the gold
//! IMAGEMN, IMAGEMD and IMAGESD.

use std::path::Path;

use rand::{RngExt, SeedableRng};

use super::{Data, Frame, FrameHdu, card, image_cards};
use crate::fits::HValue;
use crate::tables::keywords::KeywordTable;

/// One parsed IPAC table: column names, types and the first data row.
#[derive(Clone, Debug, PartialEq)]
pub struct IpacRow {
    pub columns: Vec<(String, String)>,
    pub values: Vec<String>,
}

/// Parse an IPAC table's header and first data row by column positions.
pub fn parse_ipac(text: &str) -> anyhow::Result<IpacRow> {
    let lines: Vec<&str> = text.lines().collect();
    anyhow::ensure!(lines.len() >= 5, "IPAC table too short");
    let bars: Vec<usize> = lines[0].char_indices().filter(|(_, c)| *c == '|').map(|(i, _)| i).collect();
    let mut columns = Vec::new();
    let mut values = Vec::new();
    let data = lines[4];
    for w in bars.windows(2) {
        let (a, b) = (w[0], w[1]);
        let name = lines[0][a + 1..b].trim().to_string();
        let ty = lines[1].get(a + 1..b).unwrap_or("").trim().to_string();
        let v = data.get(a + 1..b.min(data.len())).unwrap_or("").trim_end().to_string();
        columns.push((name, ty));
        values.push(v);
    }
    Ok(IpacRow { columns, values })
}

/// Keywords the generated raw header must not carry: everything DEP
/// computes (Source KOA) except the raw structural/identifying keywords a
/// NIRES frame carries itself.
fn computed(table: &KeywordTable) -> Vec<String> {
    table.defs.iter().filter(|d| d.source == "KOA").map(|d| d.keyword.clone()).collect()
}

const STRUCTURAL: [&str; 5] = ["BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND"];

/// The gold raw header cards (without the structural ones).
pub fn gold_header(gold_metadata: &str, keyword_table: &KeywordTable) -> anyhow::Result<Vec<crate::fits::Card>> {
    let row = parse_ipac(gold_metadata)?;
    let skip = computed(keyword_table);
    let mut cards = Vec::new();
    for ((name, ty), v) in row.columns.iter().zip(&row.values) {
        if v == "null" || skip.contains(name) || STRUCTURAL.contains(&name.as_str()) {
            continue;
        }
        let value = match ty.as_str() {
            "integer" => HValue::Int(v.trim().parse().map_err(|_| anyhow::anyhow!("{name}: {v:?} is not an integer"))?),
            "double" => {
                let f: f64 = v.trim().parse().map_err(|_| anyhow::anyhow!("{name}: {v:?} is not a number"))?;
                cards.push(super::float(name, f));
                continue;
            }
            _ => HValue::Text(v.clone()),
        };
        cards.push(card(name, value, ""));
    }
    Ok(cards)
}

/// The gold value of a column.
pub fn gold_value(gold_metadata: &str, column: &str) -> anyhow::Result<String> {
    let row = parse_ipac(gold_metadata)?;
    row.columns
        .iter()
        .position(|(n, _)| n == column)
        .map(|i| row.values[i].clone())
        .ok_or_else(|| anyhow::anyhow!("no column {column}"))
}

/// Mean, population standard deviation, median of f32 pixels (as the
/// runtime computes them).
pub fn stats(px: &[f32]) -> (f64, f64, f64) {
    let n = px.len() as f64;
    let mean = px.iter().map(|v| *v as f64).sum::<f64>() / n;
    let var = px.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n;
    let mut s = px.to_vec();
    let m = crate::fits::pixels::median_of(&mut s);
    (mean, var.sqrt(), m)
}

/// A dome-flat-like image as background + amplitude × orders: five curved
/// bright orders (~60 rows wide) on a noisy, slightly sloped background.
fn components(cols: usize, rows: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bg = Vec::with_capacity(cols * rows);
    let mut orders = Vec::with_capacity(cols * rows);
    for y in 0..rows {
        for x in 0..cols {
            let xf = x as f64 / cols as f64;
            let yf = y as f64 / rows as f64;
            let mut order = 0.0f64;
            for k in 0..5 {
                let centre = 0.12 + 0.18 * k as f64 + 0.05 * (xf * std::f64::consts::PI).sin() + 0.02 * xf * xf;
                let d = ((yf - centre) * rows as f64 / 30.0).abs();
                order += (1.0 - d.powi(4)).max(0.0) * (0.6 + 0.4 * (1.0 - (xf - 0.5).abs()));
            }
            bg.push(100.0 + 0.02 * x as f64 + (rng.random::<f64>() - 0.5) * 20.0);
            orders.push(order);
        }
    }
    (bg, orders)
}

fn median64(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (_, m, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *m;
    if n % 2 == 1 {
        return upper;
    }
    let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lower + upper) / 2.0
}

/// (mean − median)/std, median and std of background + amp × orders.
fn shape_of(bg: &[f64], orders: &[f64], amp: f64, scratch: &mut Vec<f64>) -> (f64, f64, f64) {
    scratch.clear();
    scratch.extend(bg.iter().zip(orders).map(|(b, o)| b + amp * o));
    let n = scratch.len() as f64;
    let mean = scratch.iter().sum::<f64>() / n;
    let std = (scratch.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let median = median64(scratch);
    ((mean - median) / std, median, std)
}

/// Pixels whose statistics round to (mean, std, median) at two decimals:
/// the order brightness is bisected until (mean − median)/std matches, then
/// an affine map fixes the median and the spread.
pub fn pixels_with_stats(cols: usize, rows: usize, mean: f64, std: f64, median: f64, seed: u64) -> Vec<f32> {
    let (bg, orders) = components(cols, rows, seed);
    let target = (mean - median) / std;
    let mut scratch = Vec::with_capacity(bg.len());
    let (mut lo, mut hi) = (0.0f64, 1.0e5f64);
    let mut amp = hi;
    for _ in 0..64 {
        amp = 0.5 * (lo + hi);
        let (r, _, _) = shape_of(&bg, &orders, amp, &mut scratch);
        if (r - target).abs() < 1e-12 {
            break;
        }
        if r < target { lo = amp } else { hi = amp }
    }
    let (_, m0, s0) = shape_of(&bg, &orders, amp, &mut scratch);
    let alpha = std / s0;
    bg.iter().zip(&orders).map(|(b, o)| (median + alpha * (b + amp * o - m0)) as f32).collect()
}

/// Synthesise the gold raw frame `s190615_0020.fits`.
pub fn gold_frame(gold_metadata: &str, keyword_table: &KeywordTable) -> anyhow::Result<Frame> {
    let num = |c: &str| -> anyhow::Result<f64> { Ok(gold_value(gold_metadata, c)?.trim().parse()?) };
    let cols = num("NAXIS1")? as usize;
    let rows = num("NAXIS2")? as usize;
    let px = pixels_with_stats(cols, rows, num("IMAGEMN")?, num("IMAGESD")?, num("IMAGEMD")?, 20190615);
    let mut cards = image_cards(true, -32, &[cols as u64, rows as u64]);
    cards.extend(gold_header(gold_metadata, keyword_table)?);
    Ok(Frame { hdus: vec![FrameHdu { cards, data: Data::F32(px) }] })
}

/// Read the gold files from the shared data folder and write the raw frame.
pub fn write_gold_input(data_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let meta = std::fs::read_to_string(data_dir.join("gold/nires/NR.20190615.12571.36.metadata.table"))?;
    let table = KeywordTable::load(&data_dir.join("keyword-tables/gold-era"), "NIRES")?;
    gold_frame(&meta, &table)?.write(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use koa_pyfmt::round_to;

    #[test]
    fn synthetic_pixels_hit_the_gold_statistics() {
        let px = pixels_with_stats(2048, 1024, 2713.67, 3222.57, 1107.0, 20190615);
        let (mean, std, median) = stats(&px);
        assert_eq!(round_to(mean, 2), 2713.67);
        assert_eq!(round_to(std, 2), 3222.57);
        assert_eq!(round_to(median, 2), 1107.0);
        assert!(px.iter().all(|v| *v < 33000.0), "no saturated pixels (gold NPIXSAT 0)");
    }

    #[test]
    fn ipac_rows_parse_by_position() {
        let t = "|A   |BB  |\n|char|int |\n|    |    |\n|null|    |\n  x   12  \n";
        let r = parse_ipac(t).unwrap();
        assert_eq!(r.values, vec![" x".to_string(), "12".to_string()]);
    }
}
