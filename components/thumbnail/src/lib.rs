//! The thumbnail component: a thin WIT adapter that renders a preview plan
//! with koa-preview, reading pixels only through the host `image` resource.
//!
//! Built with wasm `simd128` (runtime/build.rs passes `-C target-feature=+simd128`):
//! koa-preview's JPEG transform and pixel loops use its vector lanes, and a
//! build without it is refused here rather than silently running scalar code.

#[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
compile_error!("the thumbnail component needs wasm simd128: build with RUSTFLAGS=\"-C target-feature=+simd128\" (runtime/build.rs does)");

wit_bindgen::generate!({
    path: "../../wit",
    world: "thumbnail",
});


use koa::dep::types::{Rotation, Scaling};
use koa_preview::{Plan, Region, Source, Tile};

struct HostImage<'a>(&'a Image);

fn region(r: koa::dep::types::Region) -> Region {
    Region { x0: r.x0, y0: r.y0, nx: r.nx, ny: r.ny }
}

fn wit_region(r: Region) -> koa::dep::types::Region {
    koa::dep::types::Region { x0: r.x0, y0: r.y0, nx: r.nx, ny: r.ny }
}

impl Source for HostImage<'_> {
    fn shape(&self) -> (u32, u32) {
        self.0.shape()
    }
    fn is_integer(&self) -> bool {
        self.0.is_integer()
    }
    fn read_rows(&self, y0: u32, n: u32) -> Result<Vec<f32>, String> {
        self.0.read_rows(y0, n)
    }
    fn read_section(&self, r: Region) -> Result<Vec<f32>, String> {
        self.0.read_section(wit_region(r))
    }
    fn sample(&self, r: Option<Region>, max: u32) -> Result<Vec<(u32, f32)>, String> {
        Ok(self.0.sample(r.map(wit_region), max)?.into_iter().map(|p| (p.row, p.value)).collect())
    }
    fn read_binned(&self, r: Region, factor: u32) -> Result<Vec<f32>, String> {
        self.0.read_binned(wit_region(r), factor)
    }
}

/// The WIT preview record as a koa-preview plan.
fn plan(p: &Preview) -> Plan {
    Plan {
        tiles: p
            .tiles
            .iter()
            .map(|t| Tile {
                crop: region(t.crop),
                limits_box: t.limits_box.map(region),
                bias: t.bias.map(|o| (o.x0, o.nx)),
                flip_x: t.flip_x,
                flip_y: t.flip_y,
                x: t.x,
                y: t.y,
            })
            .collect(),
        per_tile_limits: p.per_tile_limits,
        nonnegative: p.nonnegative,
        scaling: match p.scaling {
            Scaling::ZscaleAsinh => koa_preview::Scaling::ZscaleAsinh,
            Scaling::ZscaleSqrt => koa_preview::Scaling::ZscaleSqrt,
            Scaling::HistogramEqualize => koa_preview::Scaling::HistogramEqualize,
        },
        rotate: match p.rotate {
            Rotation::None => koa_preview::Rotation::None,
            Rotation::Cw90 => koa_preview::Rotation::Cw90,
            Rotation::Ccw90 => koa_preview::Rotation::Ccw90,
            Rotation::HalfTurn => koa_preview::Rotation::HalfTurn,
        },
        origin_lower: p.origin_lower,
        bin: p.bin,
        width: p.width,
        height: p.height,
        quality: p.quality,
    }
}

struct Thumbnail;

/// The plan's images as preview sources.
fn with_sources<T>(images: &[Image], f: impl FnOnce(&[&dyn Source]) -> T) -> T {
    let sources: Vec<HostImage> = images.iter().map(HostImage).collect();
    let refs: Vec<&dyn Source> = sources.iter().map(|s| s as &dyn Source).collect();
    f(&refs)
}

impl Guest for Thumbnail {
    fn render(p: Preview, images: Vec<Image>) -> Result<Vec<u8>, String> {
        with_sources(&images, |s| koa_preview::render(&plan(&p), s))
    }

    fn layout(p: Preview, images: Vec<Image>) -> Result<Layout, String> {
        let l = with_sources(&images, |s| koa_preview::layout(&plan(&p), s))?;
        Ok(Layout { width: l.width, height: l.height, limits: l.limits })
    }

    fn render_strip(p: Preview, images: Vec<Image>, limits: (f64, f64), first: u32, count: u32) -> Result<Vec<u8>, String> {
        with_sources(&images, |s| koa_preview::render_strip(&plan(&p), s, limits, first, count))
    }
}

export!(Thumbnail);
