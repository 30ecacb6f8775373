//! The ingest callback (`GET /ingest_api`): IPAC reports the end of an
//! ingest, and the DRPs queue level-1/2 products (spec
//! `ingest-callback.md`). [`params`] turns the query into a typed request
//! or a list of errors. It does no I/O.

pub mod params;
