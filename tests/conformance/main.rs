//! Conformance against ../shared/data: the reference's NIRES gold output, the
//! malformed-FITS corpus, and real Keck headers, the mKTL wire captures (replayed through a stand-in daemon). Fails when the data are missing.

mod corpus;
mod gold;
mod headers;
mod pixels;
mod previews;
mod mktl;
mod scales;
