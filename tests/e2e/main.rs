//! End-to-end tests of the koa-dep library on generated frames: the sandbox
//! with a misbehaving component, the level-0 pipeline, the HTTP services
//! client against a local server.

mod pipeline;
mod reports;
mod daemon;
mod ingest;
mod instruments;
mod mktl;
mod sandbox;
mod scales;
mod services;
mod status;
mod transfer;
