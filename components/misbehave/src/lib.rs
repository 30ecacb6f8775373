//! A deliberately misbehaving instrument component for the sandbox tests.
//! The context option `misbehave` selects what `evaluate` does:
//! `loop` (never returns), `alloc` (allocates without bound), `panic`,
//! `stack` (unbounded recursion on the wasm stack), `shadow-stack` (unbounded
//! recursion through the stack in linear memory), `oversize` (returns 400 000 edits, within
//! its memory cap but beyond the host's result bounds), anything else → a
//! small normal result. `identify` succeeds with an `MB` KOAID unless the
//! mode is `identify-loop`. DRP rows: every file of the stage folder is a
//! product, except in modes `drp-wide` (asks to list `/etc`), `drp-escape`
//! (a source the runtime did not list) and `drp-climb` (a destination
//! outside the level folder).

use koa_sdk::bindings::Guest;
use koa_sdk::types::{
    Context, Diagnostic, DrpFolder, DrpListing, DrpProduct, DrpRequest, Edit, Evaluation, Hdu, Identity, Preview, SetCard, Value,
};

/// A plausible identity from the header's DATE-OBS (so `evaluate` runs).
fn identity(hdus: &[Hdu]) -> Identity {
    let date = hdus
        .first()
        .and_then(|h| h.cards.iter().find(|c| c.key == "DATE-OBS"))
        .and_then(|c| match &c.value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "2024-01-01".into());
    let koaid = format!("MB.{}.00000.00", date.replace('-', ""));
    Identity {
        koaid: koaid.clone(),
        prefix: "MB".into(),
        utdate: date,
        utc: Some("00:00:00.00".into()),
        rtui: true,
        edits: vec![Edit::Set(SetCard { hdu: 0, key: "KOAID".into(), value: Value::Text(format!("{koaid}.fits")), comment: String::new() })],
        diagnostics: vec![],
        steps: vec![],
    }
}

struct Misbehave;

fn mode(ctx: &Context) -> String {
    ctx.options.iter().find(|(k, _)| k == "misbehave").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Unbounded recursion on the wasm call stack (no locals in linear memory).
#[inline(never)]
fn deep(n: u64) -> u64 {
    if std::hint::black_box(n) == u64::MAX { 0 } else { deep(n + 1).wrapping_add(1) }
}

/// Unbounded recursion through the shadow stack in linear memory.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, buf: &mut [u8; 256]) -> u64 {
    let mut local = [0u8; 256];
    local[(depth % 256) as usize] = buf[0].wrapping_add(1);
    std::hint::black_box(&mut local);
    recurse(depth + 1, &mut local) + local[0] as u64
}

/// Base name of the job's file (so validation accepts a normal run).
fn ofname(ctx: &Context) -> String {
    ctx.filepath.rsplit('/').next().unwrap_or("").to_string()
}

fn misbehave(ctx: &Context) -> Evaluation {
    match mode(ctx).as_str() {
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("misbehave: deliberate panic"),
        "stack" => {
            std::hint::black_box(deep(0));
            unreachable!()
        }
        "shadow-stack" => {
            let mut buf = [0u8; 256];
            let n = recurse(0, &mut buf);
            std::hint::black_box(n);
            unreachable!()
        }
        "oversize" => Evaluation {
            edits: (0..400_000)
                .map(|i| {
                    Edit::Set(SetCard { hdu: 0, key: format!("K{i}"), value: Value::Int(i), comment: String::new() })
                })
                .collect(),
            extra_meta: vec![],
            diagnostics: vec![],
            steps: vec![],
            followups: vec![],
            keyskips: vec![],
        },
        _ => Evaluation {
            edits: vec![Edit::Set(SetCard { hdu: 0, key: "OFNAME".into(), value: Value::Text(ofname(ctx)), comment: String::new() })],
            extra_meta: vec![],
            diagnostics: vec![],
            steps: vec![],
            followups: vec![],
            keyskips: vec![],
        },
    }
}

impl Guest for Misbehave {
    fn identify(ctx: Context, hdus: Vec<Hdu>) -> Result<Identity, Vec<Diagnostic>> {
        if mode(&ctx) == "identify-loop" {
            loop {
                std::hint::black_box(0);
            }
        }
        Ok(identity(&hdus))
    }
    fn evaluate(ctx: Context, _hdus: Vec<Hdu>) -> Evaluation {
        misbehave(&ctx)
    }
    fn preview_plan(_ctx: Context, _hdus: Vec<Hdu>) -> Result<Vec<Preview>, String> {
        Ok(vec![])
    }
    fn drp_scan(ctx: Context, stage_file: String, _koaid: String) -> DrpRequest {
        let path = if mode(&ctx) == "drp-wide" { "/etc".to_string() } else { stage_file };
        DrpRequest { folders: vec![DrpFolder { path, recursive: false }], headers: vec![] }
    }
    fn drp_select(ctx: Context, _stage_file: String, _koaid: String, listing: DrpListing) -> Result<Vec<DrpProduct>, String> {
        let mut out: Vec<DrpProduct> = listing
            .entries
            .iter()
            .filter(|e| !e.is_dir)
            .map(|e| DrpProduct { src: e.path.clone(), rel: e.path.rsplit('/').next().unwrap_or("").to_string() })
            .collect();
        match mode(&ctx).as_str() {
            "drp-escape" => out.push(DrpProduct { src: "/etc/hostname".into(), rel: "hostname".into() }),
            "drp-climb" => out.push(DrpProduct { src: out.first().map(|p| p.src.clone()).unwrap_or_default(), rel: "../../escaped".into() }),
            _ => {}
        }
        Ok(out)
    }
}

koa_sdk::bindings::export_instrument!(Misbehave with_types_in koa_sdk::bindings);
