//! The component sandbox (design §4): one wasmtime engine, components
//! compiled once and cached as precompiled `.cwasm` files, one `InstancePre`
//! per component, and a fresh `Store` + instance for every call so nothing
//! leaks between files. Each store has a memory cap (a `ResourceLimiter`), an
//! epoch deadline (10 ms ticker), a 1 MiB wasm stack and an empty, frozen
//! WASI context (no files, no network, fixed clocks, seeded randomness).
//!
//! Failures are classified: guest `result` errors are data problems; traps
//! are component failures with their own status codes (COMPONENT_TIMEOUT,
//! COMPONENT_OOM, COMPONENT_PANIC, COMPONENT_STACK_OVERFLOW, COMPONENT_TRAP,
//! COMPONENT_OVERSIZE, COMPONENT_LOAD_ERROR). The deadline counts the
//! guest's own time: waits inside host imports (services, pixel reads) are
//! given back, within a hard wall-clock allowance.
//! Calls are synchronous: run them on blocking threads, never on the async
//! runtime's workers.

pub mod host;
pub mod registry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, Linker, Resource};
use wasmtime::{Config, Engine, Store, Trap};

pub use host::{HostState, ImageRes, JobHost, wit_stats};
pub use registry::{ComponentInfo, Registry, builtin_components};

/// Generated host bindings of wit/koa-dep.wit.
pub mod bindings {
    pub mod instrument {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "instrument",
            with: { "koa:dep/pixels.image": crate::sandbox::host::ImageRes },
            additional_derives: [serde::Serialize, serde::Deserialize],
        });
    }
    pub mod thumbnail {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "thumbnail",
            with: {
                "koa:dep/types": super::instrument::koa::dep::types,
                "koa:dep/pixels": super::instrument::koa::dep::pixels,
            },
        });
    }
    pub use instrument::koa::dep::types;
}

use bindings::{thumbnail, types};

/// Per-component resource limits.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Linear-memory cap in bytes.
    pub memory: usize,
    /// Wall-clock budget of one call.
    pub deadline: Duration,
}

impl Limits {
    pub const HEADER: Limits = Limits { memory: 256 << 20, deadline: Duration::from_secs(2) };
    pub const PREVIEW: Limits = Limits { memory: 256 << 20, deadline: Duration::from_secs(30) };
}

/// Bounds on what a call may return (a component could otherwise make the
/// host allocate a huge result).
pub const MAX_EDITS: usize = 20_000;
pub const MAX_DIAGNOSTICS: usize = 10_000;
pub const MAX_JPEG_BYTES: usize = 64 << 20;
pub const MAX_TEXT: usize = 64 << 10;

/// Why a component call did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComponentFailure {
    #[error(
        "component {component} exceeded its {seconds:.1} s deadline (its own time, plus host calls beyond {host:.1} s \
         and service waits beyond {services:.0} s; at most {wall:.1} s in all)"
    )]
    Timeout { component: String, seconds: f64, host: f64, services: f64, wall: f64 },
    #[error("component {component} reached its memory cap of {mib} MiB")]
    OutOfMemory { component: String, mib: usize },
    #[error("component {component} trapped: {message}")]
    Trap { component: String, message: String },
    #[error("component {component} panicked: {message}")]
    Panic { component: String, message: String },
    #[error("component {component} overflowed its wasm stack: {message}")]
    StackOverflow { component: String, message: String },
    #[error("component {component} returned an oversized result: {message}")]
    Oversize { component: String, message: String },
    #[error("component {component} could not be loaded: {message}")]
    Load { component: String, message: String },
    /// A result the host refuses: a DRP folder outside the row's DRP tree, a
    /// product it did not list, a destination outside the level folder.
    #[error("component {component} broke its contract: {message}")]
    Contract { component: String, message: String },
}

impl ComponentFailure {
    /// The status code recorded for the job.
    pub fn code(&self) -> &'static str {
        match self {
            ComponentFailure::Timeout { .. } => "COMPONENT_TIMEOUT",
            ComponentFailure::OutOfMemory { .. } => "COMPONENT_OOM",
            ComponentFailure::Trap { .. } => "COMPONENT_TRAP",
            ComponentFailure::Panic { .. } => "COMPONENT_PANIC",
            ComponentFailure::StackOverflow { .. } => "COMPONENT_STACK_OVERFLOW",
            ComponentFailure::Oversize { .. } => "COMPONENT_OVERSIZE",
            ComponentFailure::Load { .. } => "COMPONENT_LOAD_ERROR",
            ComponentFailure::Contract { .. } => "COMPONENT_CONTRACT",
        }
    }
}

/// Tick length of the epoch clock.
const TICK: Duration = Duration::from_millis(10);

/// Host compute time (pixel reads, statistics, logging) given back to a
/// call, as a multiple of its deadline; beyond it host time counts.
pub const HOST_FACTOR: u32 = 4;

/// What a call's deadline allows: its own time, host compute time up to
/// `HOST_FACTOR` × the deadline, service waits up to
/// `host::SERVICE_BUDGET` — so a guest spinning on cheap host calls stops
/// within `wall_bound`.
pub fn wall_bound(deadline: Duration) -> Duration {
    deadline * (1 + HOST_FACTOR) + host::SERVICE_BUDGET
}

/// Epoch ticks of a duration (at least one).
fn ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64
}

/// The engine and the components it runs.
pub struct Sandbox {
    engine: Engine,
    registry: Registry,
    stop: Arc<AtomicBool>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine configuration every component runs under.
pub fn engine() -> wasmtime::Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.max_wasm_stack(1 << 20);
    cfg.cranelift_opt_level(wasmtime::OptLevel::Speed);
    Engine::new(&cfg)
}

impl Sandbox {
    /// Build the engine, start the epoch ticker and load the components of
    /// `registry` (compiling or loading their precompiled form).
    pub fn new(registry_spec: registry::RegistrySpec) -> anyhow::Result<Sandbox> {
        let engine = engine().map_err(|e| anyhow::anyhow!("wasmtime engine: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new().name("koa-epoch".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })?;
        }
        let registry = Registry::load(&engine, registry_spec)?;
        Ok(Sandbox { engine, registry, stop })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn store(&self, limits: Limits, job: Option<Arc<dyn JobHost>>) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(limits.memory, job));
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(ticks(limits.deadline));
        // The deadline counts the guest's own time and host compute time
        // beyond its allowance; service waits are bounded by their budget.
        store.epoch_deadline_callback(move |ctx| {
            let s = ctx.data();
            let charged = s.charged_time(limits.deadline * HOST_FACTOR);
            if charged >= limits.deadline || s.started.elapsed() >= wall_bound(limits.deadline) {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            Ok(wasmtime::UpdateDeadline::Continue(ticks(limits.deadline - charged)))
        });
        store
    }

    fn classify(component: &str, limits: Limits, store: &Store<HostState>, err: wasmtime::Error) -> ComponentFailure {
        if store.data().limiter.hit {
            return ComponentFailure::OutOfMemory { component: component.into(), mib: limits.memory >> 20 };
        }
        // where in the guest it happened (innermost named frame)
        let frame = err
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .and_then(|bt| bt.frames().iter().find_map(|f| f.func_name().map(str::to_string)))
            .map(|f| format!(" in {f}"))
            .unwrap_or_default();
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                ComponentFailure::Timeout {
                    component: component.into(),
                    seconds: limits.deadline.as_secs_f64(),
                    host: (limits.deadline * HOST_FACTOR).as_secs_f64(),
                    services: host::SERVICE_BUDGET.as_secs_f64(),
                    wall: wall_bound(limits.deadline).as_secs_f64(),
                }
            }
            Some(Trap::StackOverflow) => {
                ComponentFailure::StackOverflow { component: component.into(), message: format!("wasm stack overflow{frame}") }
            }
            // a Rust guest's panic (panic = "abort") ends in `unreachable`
            Some(Trap::UnreachableCodeReached) => {
                ComponentFailure::Panic { component: component.into(), message: format!("unreachable executed{frame}") }
            }
            Some(t) => ComponentFailure::Trap { component: component.into(), message: format!("{t}{frame}") },
            None => ComponentFailure::Trap { component: component.into(), message: format!("{}{frame}", err.root_cause()) },
        }
    }

    /// `instrument.identify`.
    pub fn identify(
        &self,
        component: &str,
        ctx: &types::Context,
        hdus: &[types::Hdu],
        job: Arc<dyn JobHost>,
    ) -> Result<Result<types::Identity, Vec<types::Diagnostic>>, ComponentFailure> {
        let (pre, limits) = self.registry.instrument(component)?;
        let mut store = self.store(limits, Some(job.clone()));
        let out = pre
            .instantiate(&mut store)
            .and_then(|i| i.call_identify(&mut store, ctx, hdus))
            .map_err(|e| Self::classify(component, limits, &store, e));
        report_time(&*job, component, "identify", &store);
        let out = out?;
        if let Ok(id) = &out {
            check_edits(component, &id.edits)?;
            check_diagnostics(component, &id.diagnostics)?;
        }
        if let Err(d) = &out {
            check_diagnostics(component, d)?;
        }
        Ok(out)
    }

    /// `instrument.evaluate`.
    pub fn evaluate(
        &self,
        component: &str,
        ctx: &types::Context,
        hdus: &[types::Hdu],
        job: Arc<dyn JobHost>,
    ) -> Result<types::Evaluation, ComponentFailure> {
        let (pre, limits) = self.registry.instrument(component)?;
        let mut store = self.store(limits, Some(job.clone()));
        let out = pre
            .instantiate(&mut store)
            .and_then(|i| i.call_evaluate(&mut store, ctx, hdus))
            .map_err(|e| Self::classify(component, limits, &store, e));
        report_time(&*job, component, "evaluate", &store);
        let out = out?;
        check_edits(component, &out.edits)?;
        check_diagnostics(component, &out.diagnostics)?;
        if out.extra_meta.len() > MAX_EDITS || out.steps.len() > MAX_EDITS {
            return Err(ComponentFailure::Oversize {
                component: component.into(),
                message: format!("{} extra metadata, {} steps", out.extra_meta.len(), out.steps.len()),
            });
        }
        Ok(out)
    }

    /// `instrument.preview-plan`.
    pub fn preview_plan(
        &self,
        component: &str,
        ctx: &types::Context,
        hdus: &[types::Hdu],
        job: Arc<dyn JobHost>,
    ) -> Result<Result<Vec<types::Preview>, String>, ComponentFailure> {
        let (pre, limits) = self.registry.instrument(component)?;
        let mut store = self.store(limits, Some(job.clone()));
        let out = pre
            .instantiate(&mut store)
            .and_then(|i| i.call_preview_plan(&mut store, ctx, hdus))
            .map_err(|e| Self::classify(component, limits, &store, e));
        report_time(&*job, component, "preview-plan", &store);
        let out = out?;
        if let Ok(plans) = &out {
            if plans.len() > 64 || plans.iter().any(|p| p.tiles.len() > 256) {
                return Err(ComponentFailure::Oversize { component: component.into(), message: format!("{} previews", plans.len()) });
            }
        }
        if let Err(why) = &out {
            if why.len() > MAX_TEXT {
                return Err(ComponentFailure::Oversize { component: component.into(), message: format!("{} bytes of error text", why.len()) });
            }
        }
        Ok(out)
    }

    /// `instrument.drp-scan`: what a DRP row's rules need listed (no host
    /// imports are served: the rules are pure).
    pub fn drp_scan(&self, component: &str, ctx: &types::Context, stage_file: &str, koaid: &str) -> Result<types::DrpRequest, ComponentFailure> {
        let (pre, limits) = self.registry.instrument(component)?;
        let mut store = self.store(limits, None);
        let out = pre
            .instantiate(&mut store)
            .and_then(|i| i.call_drp_scan(&mut store, ctx, stage_file, koaid))
            .map_err(|e| Self::classify(component, limits, &store, e))?;
        let long = out.folders.iter().map(|f| f.path.len()).chain(out.headers.iter().map(String::len)).any(|n| n > MAX_TEXT);
        if out.folders.len() > 64 || out.headers.len() > 64 || long {
            return Err(ComponentFailure::Oversize { component: component.into(), message: format!("{} folders, {} headers", out.folders.len(), out.headers.len()) });
        }
        Ok(out)
    }

    /// `instrument.drp-select` over the host's listing.
    pub fn drp_select(
        &self,
        component: &str,
        ctx: &types::Context,
        stage_file: &str,
        koaid: &str,
        listing: &types::DrpListing,
    ) -> Result<Result<Vec<types::DrpProduct>, String>, ComponentFailure> {
        let (pre, limits) = self.registry.instrument(component)?;
        let mut store = self.store(limits, None);
        let out = pre
            .instantiate(&mut store)
            .and_then(|i| i.call_drp_select(&mut store, ctx, stage_file, koaid, listing))
            .map_err(|e| Self::classify(component, limits, &store, e))?;
        let oversize = match &out {
            Ok(p) => p.len() > MAX_EDITS || p.iter().any(|p| p.src.len() > MAX_TEXT || p.rel.len() > MAX_TEXT),
            Err(why) => why.len() > MAX_TEXT,
        };
        if oversize {
            return Err(ComponentFailure::Oversize { component: component.into(), message: "DRP product list".into() });
        }
        Ok(out)
    }

    /// `thumbnail.render` with one host image per tile.
    pub fn render(&self, plan: &types::Preview, images: Vec<ImageRes>, job: &dyn JobHost) -> Result<Result<Vec<u8>, String>, ComponentFailure> {
        let out = self.thumbnail_call(images, job, "render", |i, store, handles| i.call_render(store, plan, handles))?;
        check_jpeg(out)
    }

    /// `thumbnail.layout`: the picture's size and stretch limits.
    pub fn layout(
        &self,
        plan: &types::Preview,
        images: Vec<ImageRes>,
        job: &dyn JobHost,
    ) -> Result<Result<thumbnail::Layout, String>, ComponentFailure> {
        self.thumbnail_call(images, job, "layout", |i, store, handles| i.call_layout(store, plan, handles))
    }

    /// `thumbnail.render-strip`: picture rows [first, first + count) as a JPEG strip.
    pub fn render_strip(
        &self,
        plan: &types::Preview,
        images: Vec<ImageRes>,
        (limits, first, count): ((f64, f64), u32, u32),
        job: &dyn JobHost,
    ) -> Result<Result<Vec<u8>, String>, ComponentFailure> {
        let call = format!("render-strip rows {first}+{count}");
        let out = self.thumbnail_call(images, job, &call, |i, store, handles| i.call_render_strip(store, plan, handles, limits, first, count))?;
        check_jpeg(out)
    }

    /// One call on a fresh thumbnail instance (its own memory cap and
    /// deadline) with the images in its resource table; its time split and
    /// memory go to the job's log.
    fn thumbnail_call<T>(
        &self,
        images: Vec<ImageRes>,
        job: &dyn JobHost,
        name: &str,
        call: impl FnOnce(&thumbnail::Thumbnail, &mut Store<HostState>, &[Resource<ImageRes>]) -> wasmtime::Result<T>,
    ) -> Result<T, ComponentFailure> {
        let (pre, limits) = self.registry.thumbnail()?;
        let mut store = self.store(limits, None);
        let mut handles = Vec::with_capacity(images.len());
        for img in images {
            let h = store.data_mut().table.push(img).map_err(|e| ComponentFailure::Trap {
                component: "thumbnail".into(),
                message: format!("resource table: {e}"),
            })?;
            handles.push(h);
        }
        let out = pre
            .instantiate(&mut store)
            .and_then(|i| call(&i, &mut store, &handles))
            .map_err(|e| Self::classify("thumbnail", limits, &store, e))?;
        let peak = store.data().limiter.peak >> 20;
        report_time(job, "thumbnail", &format!("{name} [{peak} MiB linear memory]"), &store);
        Ok(out)
    }
}

/// A JPEG larger than any preview should be is the component's fault.
fn check_jpeg(out: Result<Vec<u8>, String>) -> Result<Result<Vec<u8>, String>, ComponentFailure> {
    if let Ok(bytes) = &out {
        if bytes.len() > MAX_JPEG_BYTES {
            return Err(ComponentFailure::Oversize { component: "thumbnail".into(), message: format!("{} JPEG bytes", bytes.len()) });
        }
    }
    Ok(out)
}

/// One line in the job's log: how long a call took, and how much of it was
/// spent in host imports (pixels, services) rather than in the component.
fn report_time(job: &dyn JobHost, component: &str, call: &str, store: &Store<HostState>) {
    let s = store.data();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    job.log(
        0,
        &format!(
            "{component}.{call}: {:.1} ms ({:.1} ms in the component, {:.1} ms in host calls of which {:.1} ms services)",
            ms(s.started.elapsed()),
            ms(s.guest_time()),
            ms(s.host_time),
            ms(s.service_time)
        ),
    );
}

fn check_edits(component: &str, edits: &[types::Edit]) -> Result<(), ComponentFailure> {
    let too_long = edits.iter().any(|e| match e {
        types::Edit::Set(s) => {
            s.key.len() > 256
                || s.comment.len() > MAX_TEXT
                || matches!(&s.value, types::Value::Text(t) if t.len() > MAX_TEXT)
        }
        types::Edit::Remove((_, k)) => k.len() > 256,
    });
    if edits.len() > MAX_EDITS || too_long {
        return Err(ComponentFailure::Oversize {
            component: component.into(),
            message: format!("{} header edits (limit {MAX_EDITS}, texts ≤ {MAX_TEXT} bytes)", edits.len()),
        });
    }
    Ok(())
}

fn check_diagnostics(component: &str, d: &[types::Diagnostic]) -> Result<(), ComponentFailure> {
    if d.len() > MAX_DIAGNOSTICS || d.iter().any(|x| x.message.len() > MAX_TEXT) {
        return Err(ComponentFailure::Oversize {
            component: component.into(),
            message: format!("{} diagnostics (limit {MAX_DIAGNOSTICS})", d.len()),
        });
    }
    Ok(())
}

/// A linker with WASI (frozen, empty context) and the koa:dep host imports.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::instrument::Instrument::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

/// Compile a component (or load its precompiled form from `cache_dir`).
pub(crate) fn compile(engine: &Engine, name: &str, wasm: &[u8], cache_dir: Option<&std::path::Path>) -> anyhow::Result<Component> {
    use sha2::{Digest, Sha256};
    use std::hash::{Hash, Hasher};
    let load_err = |e: wasmtime::Error| anyhow::anyhow!("component {name}: {e}");
    let Some(dir) = cache_dir else {
        return Component::new(engine, wasm).map_err(load_err);
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let key = format!("{}-{:016x}", hex::encode(Sha256::digest(wasm)), h.finish());
    let path = dir.join(format!("{name}-{key}.cwasm"));
    if path.exists() {
        // SAFETY: the file is written only by this function from the output
        // of `Component::serialize` for the same engine configuration (the
        // compatibility hash is part of its name) in a directory we own.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(c);
        }
    }
    let c = Component::new(engine, wasm).map_err(load_err)?;
    if std::fs::create_dir_all(dir).is_ok() {
        if let Ok(bytes) = c.serialize() {
            let tmp = dir.join(format!(".{name}-{key}.{}.tmp", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }
    Ok(c)
}
