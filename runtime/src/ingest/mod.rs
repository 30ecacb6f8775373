//! The IPAC → Keck ingest callback (`/ingest_api`, spec
//! ingest-callback.md): [`params`] parses the query, [`callback`] records
//! IPAC's outcome or queues the DRPs' products, [`pi`] sends the PI notice.
//! The HTTP layer ([`crate::http`]) authenticates the caller first.

pub mod callback;
pub mod http;
pub mod params;
pub mod pi;
