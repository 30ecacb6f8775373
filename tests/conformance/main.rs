//! Conformance against ../shared/data: the reference's NIRES gold output, the
//! malformed-FITS corpus, and real Keck headers. Fails when the data are missing.

mod corpus;
mod gold;
mod headers;
mod pixels;
mod previews;
mod scales;
