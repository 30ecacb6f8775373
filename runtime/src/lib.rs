//! koa-dep — the Keck Observatory Archive's real-time Data Evaluation and
//! Processing pipeline.
//!
//! The native runtime (this crate) owns FITS I/O, the job store, services,
//! transfers and the command line; each instrument's header logic and the
//! preview renderer are WebAssembly components run in [`sandbox`] under a
//! memory cap and a deadline. See design.md §5 for the module map.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod db;
pub mod drp;
pub mod faults;
pub mod fits;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod paths;
pub mod pipeline;
pub mod report;
pub mod samples;
pub mod sandbox;
pub mod services;
pub mod sources;
pub mod tables;
pub mod transfer;
