//! Header view with the instrument key map (spec pipeline.md §3): mapped and
//! raw reads returning the first usable value, and writes that update the
//! card in place or append it, recorded as edits for the runtime.

use crate::types::{Card, Edit, Hdu, HduKind, SetCard, Value};
use crate::value::{to_f64, to_i64, to_text, usable};

/// Logical keyword → header keywords tried in order (the first usable wins;
/// writes use the first).
pub type KeyMap = &'static [(&'static str, &'static [&'static str])];

/// Keywords that carry free text, never a value.
pub fn is_commentary(key: &str) -> bool {
    matches!(key, "COMMENT" | "HISTORY" | "" | "CONTINUE")
}

/// The HDUs of one file with the edits made so far applied.
#[derive(Clone, Debug)]
pub struct Header {
    pub hdus: Vec<Hdu>,
    keymap: KeyMap,
    edits: Vec<Edit>,
    touched: Vec<String>,
    nulled: Vec<String>,
}

impl Header {
    pub fn new(hdus: Vec<Hdu>, keymap: KeyMap) -> Self {
        Header { hdus, keymap, edits: Vec::new(), touched: Vec::new(), nulled: Vec::new() }
    }

    /// Number of HDUs in the file.
    pub fn len(&self) -> usize {
        self.hdus.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hdus.is_empty()
    }

    pub fn hdu(&self, ext: usize) -> Option<&Hdu> {
        self.hdus.get(ext)
    }

    /// True when the HDU exists and has at least one card.
    pub fn has_cards(&self, ext: usize) -> bool {
        self.hdus.get(ext).is_some_and(|h| !h.cards.is_empty())
    }

    /// Header keywords a logical name maps to.
    pub fn mapped_keys<'k>(&'k self, key: &'k str) -> Vec<&'k str> {
        let key_owned = key;
        for (k, v) in self.keymap {
            if k.eq_ignore_ascii_case(key_owned) {
                return v.to_vec();
            }
        }
        vec![key]
    }

    /// The first card with this keyword in an HDU (case-insensitive), usable or not.
    pub fn card(&self, ext: usize, key: &str) -> Option<&Card> {
        self.hdus.get(ext)?.cards.iter().find(|c| c.key.eq_ignore_ascii_case(key))
    }

    /// Whether the keyword exists at all (usable or not).
    pub fn contains(&self, ext: usize, key: &str) -> bool {
        self.card(ext, key).is_some()
    }

    /// Raw read of a keyword in an HDU: its value when usable.
    pub fn raw_ext(&self, ext: usize, key: &str) -> Option<&Value> {
        self.card(ext, key).map(|c| &c.value).filter(|v| usable(v))
    }

    /// Raw read in the primary header.
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.raw_ext(0, key)
    }

    /// Mapped read in the primary header: the first usable of the mapped keywords.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.mapped_keys(key).into_iter().find_map(|k| self.raw(k))
    }

    /// Mapped read as Python `str()`.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(to_text)
    }

    /// Raw read as Python `str()`.
    pub fn raw_text(&self, key: &str) -> Option<String> {
        self.raw(key).map(to_text)
    }

    /// BINNING `bx,by` (spaces allowed); a missing, unparsable or zero
    /// factor is 1.
    pub fn binning(&self) -> (u32, u32) {
        let t = self.text("BINNING").unwrap_or_default();
        let mut it = t.split(',').map(|s| s.trim().parse::<u32>().ok().filter(|v| *v > 0));
        (it.next().flatten().unwrap_or(1), it.next().flatten().unwrap_or(1))
    }

    /// Raw read in an extension as Python `str()`.
    pub fn raw_text_ext(&self, ext: usize, key: &str) -> Option<String> {
        self.raw_ext(ext, key).map(to_text)
    }

    /// Mapped read, lower-cased text, `""` when not usable.
    pub fn lower(&self, key: &str) -> String {
        self.text(key).unwrap_or_default().to_lowercase()
    }

    /// Mapped read as Python `float()`.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(to_f64)
    }

    /// Raw read as Python `float()`.
    pub fn raw_f64(&self, key: &str) -> Option<f64> {
        self.raw(key).and_then(to_f64)
    }

    /// Raw read in an extension as Python `float()`.
    pub fn raw_f64_ext(&self, ext: usize, key: &str) -> Option<f64> {
        self.raw_ext(ext, key).and_then(to_f64)
    }

    /// Mapped read as Python `int()`.
    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(to_i64)
    }

    /// Raw read in an extension as Python `int()`.
    pub fn raw_i64_ext(&self, ext: usize, key: &str) -> Option<i64> {
        self.raw_ext(ext, key).and_then(to_i64)
    }

    /// Whether an HDU is anything but a primary or (compressed) image HDU.
    pub fn is_non_image(&self, ext: usize) -> bool {
        self.hdus.get(ext).is_some_and(|h| {
            !matches!(h.kind, HduKind::Primary | HduKind::Image | HduKind::CompressedImage)
        })
    }

    /// Whether an HDU holds an image array (non-empty shape).
    pub fn has_array(&self, ext: usize) -> bool {
        self.hdus.get(ext).is_some_and(|h| {
            matches!(h.kind, HduKind::Primary | HduKind::Image | HduKind::CompressedImage)
                && !h.shape.is_empty()
                && h.shape.iter().all(|n| *n > 0)
        })
    }

    /// Write a keyword in the primary header (raw key, not mapped).
    /// Returns false when the value had to be replaced by the string `null`
    /// (NaN or infinite numbers, "nan" text).
    pub fn set(&mut self, key: &str, value: impl Into<Value>, comment: &str) -> bool {
        self.set_ext(0, key, value, comment)
    }

    /// Write through the key map (the first mapped keyword).
    pub fn set_mapped(&mut self, key: &str, value: impl Into<Value>, comment: &str) -> bool {
        let k = self.mapped_keys(key)[0].to_string();
        self.set_ext(0, &k, value, comment)
    }

    /// Write a keyword in any HDU.
    pub fn set_ext(&mut self, ext: usize, key: &str, value: impl Into<Value>, comment: &str) -> bool {
        let mut value = value.into();
        let clean = match &value {
            Value::Float(f) => f.is_finite(),
            Value::Text(s) => {
                let t = s.trim().to_ascii_lowercase();
                t != "nan" && t != "-nan"
            }
            _ => true,
        };
        if !clean {
            value = Value::Text("null".into());
            self.nulled.push(key.to_string());
        }
        let Some(hdu) = self.hdus.get_mut(ext) else { return clean };
        match hdu.cards.iter_mut().find(|c| c.key.eq_ignore_ascii_case(key)) {
            Some(card) => {
                card.value = value.clone();
                card.comment = comment.to_string();
            }
            None => hdu.cards.push(Card {
                key: key.to_string(),
                value: value.clone(),
                comment: comment.to_string(),
            }),
        }
        self.edits.push(Edit::Set(SetCard {
            hdu: ext as u32,
            key: key.to_string(),
            value,
            comment: comment.to_string(),
        }));
        self.touched.push(key.to_string());
        clean
    }

    /// Delete every card with this keyword from an HDU.
    pub fn remove(&mut self, ext: usize, key: &str) {
        if let Some(hdu) = self.hdus.get_mut(ext) {
            let before = hdu.cards.len();
            hdu.cards.retain(|c| !c.key.eq_ignore_ascii_case(key));
            if hdu.cards.len() != before {
                self.edits.push(Edit::Remove((ext as u32, key.to_string())));
                self.touched.push(key.to_string());
            }
        }
    }

    /// Edits made so far, in order.
    pub fn edits(&self) -> &[Edit] {
        &self.edits
    }

    pub fn take_edits(&mut self) -> Vec<Edit> {
        std::mem::take(&mut self.edits)
    }

    /// Keywords changed since the last call (for the step report).
    pub fn take_touched(&mut self) -> Vec<String> {
        let mut t = std::mem::take(&mut self.touched);
        let mut seen = std::collections::BTreeSet::new();
        t.retain(|k| seen.insert(k.clone()));
        t
    }

    /// Keywords whose value was replaced by `null` since the last call.
    pub fn take_nulled(&mut self) -> Vec<String> {
        std::mem::take(&mut self.nulled)
    }
}

/// Apply edits to a list of HDUs (same rule as [`Header::set_ext`]).
pub fn apply_edits(hdus: &mut [Hdu], edits: &[Edit]) {
    for e in edits {
        match e {
            Edit::Set(s) => {
                if let Some(h) = hdus.get_mut(s.hdu as usize) {
                    match h.cards.iter_mut().find(|c| c.key.eq_ignore_ascii_case(&s.key)) {
                        Some(c) => {
                            c.value = s.value.clone();
                            c.comment = s.comment.clone();
                        }
                        None => h.cards.push(Card {
                            key: s.key.clone(),
                            value: s.value.clone(),
                            comment: s.comment.clone(),
                        }),
                    }
                }
            }
            Edit::Remove((ext, key)) => {
                if let Some(h) = hdus.get_mut(*ext as usize) {
                    h.cards.retain(|c| !c.key.eq_ignore_ascii_case(key));
                }
            }
        }
    }
}
