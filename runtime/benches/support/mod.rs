//! What the benchmarks share (included with `mod support;`).

use std::path::{Path, PathBuf};

/// The KOA keyword tables: `$KOA_DEP_KEYWORD_TABLES`, else
/// `$KOA_DEP_SHARED_DATA/keyword-tables/head`, else `../shared/data/keyword-tables/head`
/// (the run stops when none exists).
pub fn keyword_tables() -> PathBuf {
    let candidates = [
        std::env::var_os("KOA_DEP_KEYWORD_TABLES").map(PathBuf::from),
        std::env::var_os("KOA_DEP_SHARED_DATA").map(|d| PathBuf::from(d).join("keyword-tables/head")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/keyword-tables/head")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("KOA_NIRES_Keyword_Table.txt").is_file())
        .expect("KOA keyword tables not found: set KOA_DEP_KEYWORD_TABLES or KOA_DEP_SHARED_DATA")
}
