//! KOA keyword tables (`KOA_<INSTR>_Keyword_Table.txt`, tab-separated with a
//! header row, CRLF line ends): the column definitions of the metadata table.
//! Rows with an empty FITSKeyword or Source `NExScI` are dropped; the first
//! remaining row must be KOAID (spec pipeline.md §13.1).

use std::path::{Path, PathBuf};

/// One metadata column.
#[derive(Clone, Debug, PartialEq)]
pub struct KeywordDef {
    pub keyword: String,
    pub source: String,
    /// `char`, `double`, `integer` or `date`.
    pub datatype: String,
    pub width: usize,
    pub nulls_allowed: bool,
    pub validate: bool,
    pub check: bool,
    /// `date`, `time`, `angle`, … ; None when blank or the column is absent.
    pub input_format: Option<String>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub discrete: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KeywordTable {
    pub instrument: String,
    pub path: PathBuf,
    pub defs: Vec<KeywordDef>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeywordTableError {
    #[error("no keyword table for {instrument} in {dir} (expected {file})")]
    Missing { instrument: String, dir: PathBuf, file: String },
    #[error("keyword table {path}: {message}")]
    Bad { path: PathBuf, message: String },
}

/// The file name of an instrument's table.
pub fn file_name(instrument: &str) -> String {
    format!("KOA_{}_Keyword_Table.txt", instrument.to_uppercase())
}

impl KeywordTable {
    /// Read the table of `instrument` from `dir`.
    pub fn load(dir: &Path, instrument: &str) -> Result<KeywordTable, KeywordTableError> {
        let path = dir.join(file_name(instrument));
        let text = std::fs::read(&path).map_err(|_| KeywordTableError::Missing {
            instrument: instrument.to_uppercase(),
            dir: dir.to_path_buf(),
            file: file_name(instrument),
        })?;
        let text = String::from_utf8_lossy(&text);
        Self::parse(&text, instrument, &path)
    }

    pub fn parse(text: &str, instrument: &str, path: &Path) -> Result<KeywordTable, KeywordTableError> {
        let bad = |message: String| KeywordTableError::Bad { path: path.to_path_buf(), message };
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        let header: Vec<&str> = lines.next().ok_or_else(|| bad("empty file".into()))?.split('\t').collect();
        let col = |name: &str| header.iter().position(|h| h.trim() == name);
        let need = |name: &str| col(name).ok_or_else(|| bad(format!("no {name} column")));
        let (c_kw, c_src, c_type, c_width, c_null) =
            (need("FITSKeyword")?, need("Source")?, need("MetadataDatatype")?, need("MetadataWidth")?, need("NullsAllowed")?);
        let (c_val, c_chk, c_in, c_min, c_max, c_disc) = (
            col("ValidateFormat"),
            col("CheckValues"),
            col("InputFormat"),
            col("MinValue"),
            col("MaxValue"),
            col("DiscreteValues"),
        );
        let mut defs = Vec::new();
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let get = |c: Option<usize>| c.and_then(|i| f.get(i)).map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
            let Some(keyword) = get(Some(c_kw)) else { continue };
            let source = get(Some(c_src)).unwrap_or_default();
            if source == "NExScI" {
                continue;
            }
            let width: usize = get(Some(c_width))
                .and_then(|w| w.parse::<f64>().ok())
                .map(|w| w as usize)
                .ok_or_else(|| bad(format!("line {}: MetadataWidth of {keyword} is not a number", n + 2)))?;
            defs.push(KeywordDef {
                keyword,
                source,
                datatype: get(Some(c_type)).unwrap_or_else(|| "char".into()).to_lowercase(),
                width,
                nulls_allowed: get(Some(c_null)).is_some_and(|v| v.eq_ignore_ascii_case("Y")),
                validate: get(c_val).is_some_and(|v| v.eq_ignore_ascii_case("Y")),
                check: get(c_chk).is_some_and(|v| v.eq_ignore_ascii_case("Y")),
                input_format: get(c_in).map(|s| s.to_lowercase()),
                min: get(c_min),
                max: get(c_max),
                discrete: get(c_disc),
            });
        }
        if defs.first().map(|d| d.keyword.as_str()) != Some("KOAID") {
            return Err(bad("the first keyword must be KOAID".into()));
        }
        Ok(KeywordTable { instrument: instrument.to_uppercase(), path: path.to_path_buf(), defs })
    }
}
