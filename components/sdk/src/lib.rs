//! koa-sdk — the guest library every koa-dep instrument component uses.
//!
//! An instrument implements [`Instrument`] (key map, KOAID prefix, ordered
//! DQA step list, preview plan, DRP product rules) and exports it with
//! [`instrument_component!`].
//! Everything else — header view with the key map and "usable value"
//! semantics, the KOAID/DATE-OBS/UTC repair, SEMESTER, program and PROPINT
//! assignment, weather, OA, image statistics, DQA bookkeeping — is here once.
//!
//! The rules are plain functions over a [`job::Job`] and a [`host::Host`]
//! trait, so they can be unit-tested natively with a fixture host; inside the
//! component the host is the WIT import interface.

pub mod bindings {
    //! Generated from wit/koa-dep.wit, world `instrument`.
    wit_bindgen::generate!({
        path: "../../wit",
        world: "instrument",
        pub_export_macro: true,
        export_macro_name: "export_instrument",
        default_bindings_module: "koa_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub mod common;
pub mod coords;
pub mod drp;
pub mod header;
pub mod host;
pub mod job;
pub mod koaid;
pub mod preview;
pub mod program;
pub use koa_pyfmt as pyfmt;
pub mod testing;
pub mod time;
pub mod value;

/// The WIT data types (value, card, hdu, context, edit, diagnostic, …).
pub use bindings::koa::dep::types;

pub use header::{Header, KeyMap};
pub use host::Host;
pub use job::{Fail, Hooks, Job, Step, StepResult, crit, opt};
pub use koaid::Koaid;

use types::{Context, Diagnostic, DrpListing, DrpProduct, DrpRequest, Evaluation, Hdu, Identity, Preview, Severity, StepReport};

/// One instrument's header logic.
pub trait Instrument {
    /// Logical keyword → header keywords (spec instruments.md "Key map").
    const KEYMAP: KeyMap = &[];
    /// Keywords exempt from "undefined keyword" metadata warnings.
    const KEYSKIPS: &'static [&'static str] = &[];

    /// The KOAID prefix for this header (NR, DE, …); `None` when the header
    /// does not belong to a known mode.
    fn prefix(job: &mut Job) -> Result<Option<String>, Fail>;

    /// INSTRUME validation (base rule unless overridden).
    fn set_instr(job: &mut Job) -> StepResult {
        koaid::set_instr(job)
    }

    /// KOAID creation (base algorithm unless overridden).
    fn make_koaid(job: &mut Job) -> Result<Option<Koaid>, Fail> {
        koaid::make_koaid(job, Self::set_instr, Self::prefix)
    }

    /// Whether ingest may use the real-time UI for this file.
    fn rtui(_job: &Job, _koaid: &str) -> bool {
        true
    }

    /// The ordered DQA step list.
    fn steps() -> Vec<Step>;

    /// Whether the file carries target information (zero-propint policy).
    fn has_target_info(_job: &mut Job) -> bool {
        true
    }

    /// PROGID from the telescope schedule (base rule unless overridden).
    fn progid_from_schedule(job: &mut Job) -> Result<String, Fail> {
        program::progid_from_schedule(job)
    }

    /// The JPEG previews of this file (base renderer unless overridden).
    fn preview_plan(_ctx: &Context, hdr: &Header) -> Vec<Preview> {
        preview::base(hdr)
    }

    /// The previews, or why this file's layout cannot be previewed
    /// (instruments whose plans can fail override this one).
    fn preview_plan_checked(ctx: &Context, hdr: &Header) -> Result<Vec<Preview>, String> {
        Ok(Self::preview_plan(ctx, hdr))
    }

    /// Level-1/2 DRP product rules (spec instruments.md, "DRP" column).
    const DRP: drp::Rules = drp::Rules::NONE;

    /// Level 1/2 (`ctx.level`): the folders and headers the DRP rules need
    /// for a row whose stage_file is `stage_file` ([`Self::DRP`] unless overridden).
    fn drp_scan(ctx: &Context, stage_file: &str, _koaid: &str) -> DrpRequest {
        Self::DRP.scan(ctx, stage_file)
    }

    /// The DRP products of `koaid` in the runtime's listing; an error when the
    /// instrument has none at this level.
    fn drp_select(ctx: &Context, stage_file: &str, koaid: &str, listing: &drp::Listing) -> Result<Vec<DrpProduct>, String> {
        Self::DRP.select(ctx, stage_file, koaid, listing)
    }

    fn hooks() -> Hooks {
        Hooks { has_target_info: Self::has_target_info, progid_from_schedule: Self::progid_from_schedule }
    }
}

/// `identify`: build the KOAID and the header fixes it needs.
pub fn identify<I: Instrument>(ctx: &Context, hdus: Vec<Hdu>, host: &dyn Host) -> Result<Identity, Vec<Diagnostic>> {
    let mut job = Job::new(ctx, hdus, I::KEYMAP, host, I::hooks());
    job.step = "set_koaid";
    if !job.hdr.has_cards(0) {
        job.invalid("NO_FITS_HDUS", "the primary header has no cards");
        return Err(job.diagnostics);
    }
    let made = I::make_koaid(&mut job);
    let koaid = match made {
        Ok(Some(k)) => k,
        Ok(None) => {
            job.error("KOAID_CREATE_FAIL", "could not create a KOAID");
            return Err(job.diagnostics);
        }
        Err(Fail(msg)) => {
            job.error("CODE_ERROR", msg.clone());
            job.error("KOAID_CREATE_FAIL", msg);
            return Err(job.diagnostics);
        }
    };
    if !koaid.preexisting {
        job.hdr.set("KOAID", format!("{}.fits", koaid.id), "KOA: Data file name");
    }
    let date = job.hdr.raw_text("DATE-OBS").unwrap_or_default();
    let utdate = date.trim().get(..10).unwrap_or("").to_string();
    if time::parse_date(&utdate).is_none() {
        job.error("CODE_ERROR", format!("DATE-OBS {date:?} is not YYYY-MM-DD"));
        return Err(job.diagnostics);
    }
    let utc = job.hdr.text("UTC");
    let rtui = I::rtui(&job, &koaid.id);
    let keywords = job.hdr.take_touched();
    let steps = vec![StepReport { name: "set_koaid".into(), critical: true, ok: true, keywords }];
    Ok(Identity {
        koaid: koaid.id,
        prefix: koaid.prefix,
        utdate,
        utc,
        rtui,
        edits: job.hdr.take_edits(),
        diagnostics: job.diagnostics,
        steps,
    })
}

/// `evaluate`: run the DQA step list on the identified header.
pub fn evaluate<I: Instrument>(ctx: &Context, hdus: Vec<Hdu>, host: &dyn Host) -> Evaluation {
    let mut job = Job::new(ctx, hdus, I::KEYMAP, host, I::hooks());
    if !job.hdr.has_cards(0) {
        job.step = "run_dqa";
        job.invalid("NO_FITS_HDUS", "the primary header has no cards");
    } else {
        job.run_steps(&I::steps());
    }
    Evaluation {
        edits: job.hdr.take_edits(),
        extra_meta: job.extra,
        diagnostics: job.diagnostics,
        steps: job.steps,
        followups: job.followups,
        keyskips: I::KEYSKIPS.iter().map(|s| s.to_string()).collect(),
    }
}

/// `preview-plan` (an unplannable layout gives no previews).
pub fn preview_plan<I: Instrument>(ctx: &Context, hdus: Vec<Hdu>) -> Vec<Preview> {
    preview_plan_checked::<I>(ctx, hdus).unwrap_or_default()
}

/// `preview-plan` with the reason a layout cannot be previewed.
pub fn preview_plan_checked<I: Instrument>(ctx: &Context, hdus: Vec<Hdu>) -> Result<Vec<Preview>, String> {
    let hdr = Header::new(hdus, I::KEYMAP);
    I::preview_plan_checked(ctx, &hdr)
}

/// `drp-select` over the runtime's listing.
pub fn drp_select<I: Instrument>(ctx: &Context, stage_file: &str, koaid: &str, listing: &DrpListing) -> Result<Vec<DrpProduct>, String> {
    I::drp_select(ctx, stage_file, koaid, &drp::Listing(listing))
}

/// Whether an evaluation stopped at a failing critical step.
pub fn stopped(e: &Evaluation) -> bool {
    e.steps.iter().any(|s| s.critical && !s.ok)
}

/// The worst severity among diagnostics (invalid > error > warn).
pub fn worst(diags: &[Diagnostic]) -> Option<Severity> {
    let rank = |s: &Severity| match s {
        Severity::Warn => 0,
        Severity::Error => 1,
        Severity::Invalid => 2,
    };
    diags.iter().map(|d| d.severity).max_by_key(rank)
}

/// Export an [`Instrument`] as the component's `instrument` world.
#[macro_export]
macro_rules! instrument_component {
    ($instr:ty) => {
        struct __KoaComponent;
        impl $crate::bindings::Guest for __KoaComponent {
            fn identify(
                ctx: $crate::types::Context,
                hdus: ::std::vec::Vec<$crate::types::Hdu>,
            ) -> ::std::result::Result<$crate::types::Identity, ::std::vec::Vec<$crate::types::Diagnostic>> {
                $crate::identify::<$instr>(&ctx, hdus, &$crate::host::WasmHost)
            }
            fn evaluate(
                ctx: $crate::types::Context,
                hdus: ::std::vec::Vec<$crate::types::Hdu>,
            ) -> $crate::types::Evaluation {
                $crate::evaluate::<$instr>(&ctx, hdus, &$crate::host::WasmHost)
            }
            fn preview_plan(
                ctx: $crate::types::Context,
                hdus: ::std::vec::Vec<$crate::types::Hdu>,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::types::Preview>, ::std::string::String> {
                $crate::preview_plan_checked::<$instr>(&ctx, hdus)
            }
            fn drp_scan(ctx: $crate::types::Context, stage_file: ::std::string::String, koaid: ::std::string::String) -> $crate::types::DrpRequest {
                <$instr as $crate::Instrument>::drp_scan(&ctx, &stage_file, &koaid)
            }
            fn drp_select(
                ctx: $crate::types::Context,
                stage_file: ::std::string::String,
                koaid: ::std::string::String,
                listing: $crate::types::DrpListing,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::types::DrpProduct>, ::std::string::String> {
                $crate::drp_select::<$instr>(&ctx, &stage_file, &koaid, &listing)
            }
        }
        $crate::bindings::export_instrument!(__KoaComponent with_types_in $crate::bindings);
    };
}
