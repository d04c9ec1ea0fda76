//! PNG line charts of a run's curves (reward, accuracy, KL over steps), drawn without system
//! fonts or libraries: lines on an RGB buffer, labels rasterised from an embedded DejaVu Sans
//! Mono (`assets/fonts/`), encoded with `png`.

use crate::algo::mgrpo::Layer2Stats;
use crate::algo::MethodStats;
use std::path::Path;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};

use super::{JsonlLog, StepMetrics};
use crate::error::{Error, Result};
use crate::run::fsutil::write_atomic;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
const W: usize = 800;
const H: usize = 480;
const LEFT: usize = 80;
const RIGHT: usize = 24;
const TOP: usize = 44;
const BOTTOM: usize = 56;

type Rgb = [u8; 3];

/// One curve of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: Rgb,
    pub points: Vec<(f64, f64)>,
}

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            px: vec![255; W * H * 3],
        }
    }

    fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x >= W as i64 || y >= H as i64 {
            return;
        }
        let i = (y as usize * W + x as usize) * 3;
        for (px, &ck) in self.px[i..i + 3].iter_mut().zip(&c) {
            let old = *px as f32;
            *px = (old + (ck as f32 - old) * alpha.clamp(0.0, 1.0)).round() as u8;
        }
    }

    /// A line `width` pixels wide (square brush along a DDA walk).
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: Rgb, width: i64) {
        let n = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            for dx in 0..width {
                for dy in 0..width {
                    let ox = x.round() as i64 + dx - width / 2;
                    let oy = y.round() as i64 + dy - width / 2;
                    self.blend(ox, oy, c, 1.0);
                }
            }
        }
    }

    /// Text with its left end at `x` and baseline at `y`; returns its width.
    fn text(&mut self, font: &FontRef<'_>, s: &str, x: f32, y: f32, size: f32, c: Rgb) -> f32 {
        let scaled = font.as_scaled(PxScale::from(size));
        let mut pen = x;
        for ch in s.chars() {
            let id = scaled.glyph_id(ch);
            let glyph = id.with_scale_and_position(PxScale::from(size), point(pen, y));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    self.blend(
                        b.min.x as i64 + gx as i64,
                        b.min.y as i64 + gy as i64,
                        c,
                        cov,
                    )
                });
            }
            pen += scaled.h_advance(id);
        }
        pen - x
    }

    fn text_width(font: &FontRef<'_>, s: &str, size: f32) -> f32 {
        let scaled = font.as_scaled(PxScale::from(size));
        s.chars()
            .map(|ch| scaled.h_advance(scaled.glyph_id(ch)))
            .sum()
    }
}

/// About `target` round tick values (1, 2, 5 × 10^k steps) covering `[lo, hi]`.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draw `series` over steps into a PNG at `path` (atomically).
pub fn line_chart(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> Result<()> {
    let font = FontRef::try_from_slice(FONT)
        .map_err(|e| Error::Invalid(format!("the embedded plot font: {e}")))?;
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    (y0, y1) = (y0 - pad, y1 + pad);
    let (pw, ph) = ((W - LEFT - RIGHT) as f64, (H - TOP - BOTTOM) as f64);
    let sx = |x: f64| LEFT as f64 + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP as f64 + (1.0 - (y - y0) / (y1 - y0)) * ph;

    let mut c = Canvas::new();
    let (grid, axis, ink) = ([225, 225, 225], [60, 60, 60], [20, 20, 20]);
    for t in ticks(y0, y1, 6) {
        c.line((LEFT as f64, sy(t)), ((W - RIGHT) as f64, sy(t)), grid, 1);
        let s = label(t);
        let w = Canvas::text_width(&font, &s, 13.0);
        c.text(
            &font,
            &s,
            LEFT as f32 - 8.0 - w,
            sy(t) as f32 + 4.0,
            13.0,
            ink,
        );
    }
    for t in ticks(x0, x1, 8) {
        c.line((sx(t), TOP as f64), (sx(t), (H - BOTTOM) as f64), grid, 1);
        let s = label(t);
        let w = Canvas::text_width(&font, &s, 13.0);
        c.text(
            &font,
            &s,
            sx(t) as f32 - w / 2.0,
            (H - BOTTOM) as f32 + 18.0,
            13.0,
            ink,
        );
    }
    let (l, r, t, b) = (
        LEFT as f64,
        (W - RIGHT) as f64,
        TOP as f64,
        (H - BOTTOM) as f64,
    );
    c.line((l, b), (r, b), axis, 1);
    c.line((l, t), (l, b), axis, 1);
    c.text(&font, title, 8.0, 22.0, 18.0, ink);
    let w = Canvas::text_width(&font, "step", 14.0);
    c.text(
        &font,
        "step",
        (LEFT as f32 + W as f32 - RIGHT as f32 - w) / 2.0,
        H as f32 - 14.0,
        14.0,
        ink,
    );
    c.text(&font, y_label, 8.0, TOP as f32 - 6.0, 13.0, ink);
    // legend, top right
    let mut lx = (W - RIGHT) as f32;
    for s in series.iter().rev().filter(|s| !s.name.is_empty()) {
        let w = Canvas::text_width(&font, s.name, 13.0);
        lx -= w + 34.0;
        c.line((lx as f64, 22.0), (lx as f64 + 22.0, 22.0), s.color, 3);
        c.text(&font, s.name, lx + 26.0, 27.0, 13.0, ink);
    }
    for s in series {
        let p: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .copied()
            .collect();
        for w in p.windows(2) {
            c.line(
                (sx(w[0].0), sy(w[0].1)),
                (sx(w[1].0), sy(w[1].1)),
                s.color,
                2,
            );
        }
        if p.len() == 1 {
            c.line(
                (sx(p[0].0), sy(p[0].1)),
                (sx(p[0].0), sy(p[0].1)),
                s.color,
                5,
            );
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, W as u32, H as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let err = |e: png::EncodingError| Error::Invalid(format!("{}: {e}", path.display()));
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(&c.px).map_err(err)?;
    }
    write_atomic(path, &bytes)
}

/// The smoothing weight of the training curves' moving average (TensorBoard's slider).
pub const EMA_WEIGHT: f64 = 0.9;

/// TensorBoard's smoothing: an exponential moving average with weight `w` on the past,
/// debiased so that the first points are not pulled towards zero. Non-finite points are
/// skipped (kept as they are), not averaged in.
pub fn ema(points: &[(f64, f64)], w: f64) -> Vec<(f64, f64)> {
    let (mut last, mut n) = (0.0, 0);
    points
        .iter()
        .map(|&(x, y)| {
            if !y.is_finite() {
                return (x, y);
            }
            last = last * w + (1.0 - w) * y;
            n += 1;
            (x, last / (1.0 - w.powi(n)))
        })
        .collect()
}

/// `color` mixed with white, for the raw line under its moving average.
fn pale(c: Rgb) -> Rgb {
    c.map(|v| 255 - ((255 - v as u16) * 2 / 5) as u8)
}

/// Each curve pale and raw, under its moving average in full colour (TensorBoard's look);
/// the legend names the averages.
pub fn smoothed(series: Vec<Series<'_>>) -> Vec<Series<'_>> {
    let raw = series.iter().map(|s| Series {
        name: "",
        color: pale(s.color),
        points: s.points.clone(),
    });
    let raw: Vec<Series<'_>> = raw.collect();
    let avg = series.into_iter().map(|s| Series {
        points: ema(&s.points, EMA_WEIGHT),
        ..s
    });
    raw.into_iter().chain(avg).collect()
}

const BLUE: Rgb = [31, 119, 180];
const ORANGE: Rgb = [255, 127, 14];
const GREEN: Rgb = [44, 160, 44];

/// `reward.png`, `accuracy.png`, `kl.png` and, for MGRPO, `layer2.png` from a run's
/// `metrics.jsonl`: each curve raw (pale) under its moving average ([`EMA_WEIGHT`]).
pub fn training_plots(metrics: &JsonlLog, run: &Path) -> Result<()> {
    let rows: Vec<StepMetrics> = metrics.read()?;
    let curve = |f: &dyn Fn(&StepMetrics) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|m| (m.step as f64, f(m))).collect()
    };
    let series = |name, color, f: &dyn Fn(&StepMetrics) -> f64| Series {
        name,
        color,
        points: curve(f),
    };
    let y = |y: &str| format!("{y}; EMA {EMA_WEIGHT} over the pale raw values");
    line_chart(
        &run.join("reward.png"),
        "Reward",
        &y("mean reward"),
        &smoothed(vec![
            series("reward", BLUE, &|m| m.reward as f64),
            series("reward_std", ORANGE, &|m| m.reward_std as f64),
        ]),
    )?;
    line_chart(
        &run.join("accuracy.png"),
        "Accuracy of the rollouts",
        &y("fraction right"),
        &smoothed(vec![series("rewards/accuracy", BLUE, &|m| {
            m.accuracy as f64
        })]),
    )?;
    line_chart(
        &run.join("kl.png"),
        "KL to the reference (k3)",
        &y("kl"),
        &smoothed(vec![series("kl", BLUE, &|m| m.kl as f64)]),
    )?;
    let layer2 = |m: &StepMetrics| match &m.method {
        MethodStats::Mgrpo(s) => Some(s.layer2),
        _ => None,
    };
    if rows.iter().any(|m| layer2(m).is_some()) {
        // per layer-2 query (one per layer-1 answer): how often its selection correction
        // fixed a wrong first answer or broke a right one, and the augmentations' reward
        let per_query = |f: fn(&Layer2Stats) -> usize| {
            move |m: &StepMetrics| match layer2(m) {
                Some(l) if l.queries > 0 => f(&l) as f64 / l.queries as f64,
                _ => f64::NAN,
            }
        };
        line_chart(
            &run.join("layer2.png"),
            "Layer 2: corrections",
            &y("fraction (of layer-2 queries for wrong→right, right→wrong)"),
            &smoothed(vec![
                series("layer2/reward", BLUE, &|m| {
                    layer2(m).map_or(f64::NAN, |l| l.reward_mean as f64)
                }),
                series("wrong→right", GREEN, &per_query(|l| l.wrong_to_right)),
                series("right→wrong", ORANGE, &per_query(|l| l.right_to_wrong)),
            ]),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_ticks() {
        assert_eq!(
            ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(1.0, 100.0, 4), vec![50.0, 100.0]);
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(2.0e-5), "2.0e-5");
    }

    /// TensorBoard's debiased average by hand, weight 0.5 over 1, 3, (NaN), 3: the running
    /// sums are 0.5, 1.75, 2.375 and the debiasing divisors 0.5, 0.75, 0.875, so 1, 7/3 and
    /// 19/7. The NaN is passed through, not averaged.
    #[test]
    fn ema_by_hand() {
        let p = [(0.0, 1.0), (1.0, 3.0), (2.0, f64::NAN), (3.0, 3.0)];
        let e = ema(&p, 0.5);
        assert_eq!(e[0], (0.0, 1.0));
        assert!((e[1].1 - 7.0 / 3.0).abs() < 1e-12);
        assert!(e[2].1.is_nan());
        assert!((e[3].1 - 19.0 / 7.0).abs() < 1e-12);
        let s = smoothed(vec![Series {
            name: "reward",
            color: [0, 100, 255],
            points: p.to_vec(),
        }]);
        assert_eq!((s[0].name, s[0].color), ("", [153, 193, 255]));
        assert_eq!((s[1].name, s[1].color), ("reward", [0, 100, 255]));
    }

    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let s = Series {
            name: "reward",
            color: [0, 0, 255],
            points: (1..20).map(|i| (i as f64, (i as f64).sqrt())).collect(),
        };
        line_chart(&p, "Reward", "mean", &[s]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let info = dec.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (W as u32, H as u32));
    }
}
