use super::*;
use crate::samples::{Data, Frame, FrameHdu, float, image_cards, int, text};

fn frame() -> Frame {
    let mut cards = image_cards(true, 16, &[4, 3]);
    cards.push(text("OBJECT", "M13"));
    cards.push(float("EXPTIME", 30.5));
    let ext = image_cards(false, -32, &[2, 2]);
    let mut ext = ext;
    ext.push(text("EXTNAME", "SCI"));
    Frame {
        hdus: vec![
            FrameHdu { cards, data: Data::I16((0..12).collect()) },
            FrameHdu { cards: ext, data: Data::F32(vec![1.0, 2.0, 3.0, 4.5]) },
        ],
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn structure_of_a_clean_file() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "a.fits", &frame().to_bytes());
    let f = load(&p).unwrap();
    assert!(f.warnings.is_empty() && f.corrupted.is_empty());
    assert_eq!(f.hdus.len(), 2);
    assert_eq!((f.hdus[0].kind, f.hdus[0].bitpix, f.hdus[0].shape.clone()), (HduKind::Primary, 16, vec![4, 3]));
    assert_eq!((f.hdus[1].kind, f.hdus[1].name.as_deref()), (HduKind::Image, Some("SCI")));
    assert_eq!(f.hdus[0].data_start, 2880);
    assert_eq!(f.hdus[0].data_len, 24);
    assert_eq!(f.hdus[1].header_start, 5760);
    assert_eq!(f.hdus[0].value("EXPTIME"), Some(&HValue::Float(30.5)));
}

#[test]
fn unedited_files_are_copied_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let bytes = frame().to_bytes();
    let p = write(d.path(), "a.fits", &bytes);
    let f = load(&p).unwrap();
    let out = d.path().join("b.fits");
    let w = write::write_fits(&f, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_eq!(w.md5, write::md5_file(&out).unwrap());
    assert_eq!(w.bytes, bytes.len() as u64);
}

#[test]
fn edits_change_only_their_cards() {
    let d = tempfile::tempdir().unwrap();
    let bytes = frame().to_bytes();
    let p = write(d.path(), "a.fits", &bytes);
    let mut f = load(&p).unwrap();
    f.hdus[0].set("OBJECT", HValue::Text("M 13".into()), "target");
    f.hdus[0].set("KOAID", HValue::Text("NR.20190615.12571.36.fits".into()), "KOA: Data file name");
    f.hdus[0].remove("EXPTIME");
    let out = d.path().join("b.fits");
    write::write_fits(&f, &out).unwrap();
    let g = load(&out).unwrap();
    let keys: Vec<&str> = g.hdus[0].cards.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "OBJECT", "KOAID"]);
    assert_eq!(g.hdus[0].value("OBJECT"), Some(&HValue::Text("M 13".into())));
    // untouched cards keep their exact images
    for (a, b) in f.hdus[0].cards.iter().zip(&g.hdus[0].cards).take(6) {
        assert_eq!(a.raw, b.raw);
    }
    // data units identical
    let ob = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[2880..2880 + 24], &ob[g.hdus[0].data_start as usize..][..24]);
    assert_eq!(&bytes[5760..], &ob[g.hdus[1].header_start as usize..]);
}

#[test]
fn missing_end_short_padding_and_truncation() {
    let d = tempfile::tempdir().unwrap();
    let bytes = frame().to_bytes();
    // END blanked: tolerated, repaired on write
    let mut b = bytes.clone();
    let end = b[..2880].chunks(80).position(|c| c.starts_with(b"END ")).unwrap() * 80;
    b[end..end + 3].copy_from_slice(b"   ");
    let f = load(&write(d.path(), "noend.fits", &b)).unwrap();
    assert!(f.warnings.iter().any(|w| w.code == "MISSING_END"));
    assert!(f.needs_repair());
    let out = d.path().join("fixed.fits");
    write::write_fits(&f, &out).unwrap();
    let g = load(&out).unwrap();
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    // short final padding
    let f = load(&write(d.path(), "short.fits", &bytes[..bytes.len() - 100])).unwrap();
    assert!(f.warnings.iter().any(|w| w.code == "SHORT_PADDING"));
    assert!(f.corrupted.is_empty());
    // data cut short
    let f = load(&write(d.path(), "cut.fits", &bytes[..5760 + 2880 + 4])).unwrap();
    assert!(f.corrupted.iter().any(|c| c.code == "CORRUPTED_HDU"));
    // trailing garbage after the last HDU
    let mut t = bytes.clone();
    t.extend(vec![0u8; 2880]);
    let f = load(&write(d.path(), "trail.fits", &t)).unwrap();
    assert!(f.warnings.iter().any(|w| w.code == "TRAILING_BYTES"));
}

#[test]
fn fatal_inputs_have_specific_codes() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(load(&write(d.path(), "e.fits", b"")).unwrap_err().code(), "EMPTY_FILE");
    assert_eq!(load(&write(d.path(), "t.fits", b"hello world, not fits at all .........")).unwrap_err().code(), "UNREADABLE_FITS");
    assert_eq!(load(&d.path().join("none.fits")).unwrap_err().code(), "FITS_NOT_FOUND");
    assert_eq!(load(d.path()).unwrap_err().code(), "FITS_NOT_FOUND");
    // a primary header with a broken BITPIX
    let mut cards = image_cards(true, 16, &[1]);
    cards[1] = int("BITPIX", 12);
    let f = Frame { hdus: vec![FrameHdu { cards, data: Data::None }] };
    assert_eq!(load(&write(d.path(), "b.fits", &f.to_bytes())).unwrap_err().code(), "UNREADABLE_FITS");
}

#[test]
fn duplicate_keywords_with_different_values_are_reported_once() {
    let d = tempfile::tempdir().unwrap();
    let mut fr = frame();
    fr.hdus[0].cards.push(text("OBJECT", "M92"));
    fr.hdus[0].cards.push(text("OBJECT", "M92"));
    fr.hdus[0].cards.push(float("EXPTIME", 30.5));
    let f = load(&write(d.path(), "dup.fits", &fr.to_bytes())).unwrap();
    let dups: Vec<_> = f.warnings.iter().filter(|w| w.code == "DUPLICATE_KEYWORD").collect();
    assert_eq!(dups.len(), 1, "same-value duplicates are fine: {dups:?}");
    assert!(dups[0].message.contains("\"M13\" and \"M92\"") && dups[0].message.contains("using the first"));
    assert_eq!(f.hdus[0].value("OBJECT"), Some(&HValue::Text("M13".into())));
}

#[test]
fn compressed_and_table_hdus_are_classified() {
    let mut cards = vec![
        text("XTENSION", "BINTABLE"),
        int("BITPIX", 8),
        int("NAXIS", 2),
        int("NAXIS1", 8),
        int("NAXIS2", 1),
        int("PCOUNT", 0),
        int("GCOUNT", 1),
        int("TFIELDS", 1),
        text("TFORM1", "1PB(0)"),
    ];
    cards.push(crate::samples::logical("ZIMAGE", true));
    cards.push(int("ZBITPIX", 16));
    cards.push(int("ZNAXIS", 2));
    cards.push(int("ZNAXIS1", 10));
    cards.push(int("ZNAXIS2", 20));
    let fr = Frame {
        hdus: vec![
            FrameHdu { cards: image_cards(true, 8, &[]), data: Data::None },
            FrameHdu { cards, data: Data::Bytes(vec![0; 8]) },
        ],
    };
    let d = tempfile::tempdir().unwrap();
    let f = load(&write(d.path(), "c.fits", &fr.to_bytes())).unwrap();
    assert_eq!(f.hdus[1].kind, HduKind::CompressedImage);
    assert_eq!((f.hdus[1].bitpix, f.hdus[1].shape.clone()), (16, vec![10, 20]));
    assert!(f.hdus[1].has_image());
    assert!(!f.hdus[0].has_image());
}

#[test]
fn edited_headers_are_resealed() {
    let d = tempfile::tempdir().unwrap();
    let mut fr = frame();
    fr.hdus[0].cards.push(text("CHECKSUM", "0000000000000000"));
    fr.hdus[0].cards.push(text("DATASUM", "0"));
    let p = write(d.path(), "c.fits", &fr.to_bytes());
    let mut f = load(&p).unwrap();
    // made-up values do not verify
    assert_eq!(f.warnings.iter().filter(|w| w.code == "CHECKSUM_MISMATCH").count(), 2);
    let sum = f.hdus[0].data_sum.unwrap();
    f.hdus[0].set("DATASUM", HValue::Text(sum.to_string()), "data unit checksum");
    f.hdus[0].set("OBJECT", HValue::Text("edited".into()), "");
    let out = d.path().join("sealed.fits");
    write::write_fits(&f, &out).unwrap();
    let g = load(&out).unwrap();
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    assert_eq!(g.hdus[0].value("OBJECT"), Some(&HValue::Text("edited".into())));
}

/// A primary header of `cards` (80-byte images), END and padding, then `data`.
fn raw_file(cards: &[String], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cards.iter().map(String::as_str).chain(["END"]) {
        let mut b = c.as_bytes().to_vec();
        b.resize(CARD, b' ');
        out.extend(b);
    }
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, b' ');
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn card(key: &str, value: &str) -> String {
    format!("{key:<8}= {value:>20}")
}

#[test]
fn declared_sizes_that_overflow_are_bad_data_size_not_a_wrapped_size() {
    let d = tempfile::tempdir().unwrap();
    // 2^30 × 2^32 × 4 bytes and 2^22 × 2^40 × 4 bytes wrap to 0 in unchecked u64
    for (n1, n2) in [("1073741824", "4294967296"), ("4194304", "1099511627776")] {
        let cards = [card("SIMPLE", "T"), card("BITPIX", "-32"), card("NAXIS", "2"), card("NAXIS1", n1), card("NAXIS2", n2)];
        let p = write(d.path(), "big.fits", &raw_file(&cards, &[0u8; 20000]));
        let f = load(&p).unwrap();
        assert_eq!(f.corrupted.first().map(|c| c.code), Some("BAD_DATA_SIZE"), "{n1}×{n2}: {:?}", f.corrupted);
    }
    // in range but more than the file holds: corrupted, never read
    let cards = [card("SIMPLE", "T"), card("BITPIX", "16"), card("NAXIS", "2"), card("NAXIS1", "65536"), card("NAXIS2", "65536")];
    let p = write(d.path(), "short.fits", &raw_file(&cards, &[0u8; 20000]));
    assert_eq!(load(&p).unwrap().corrupted.first().map(|c| c.code), Some("CORRUPTED_HDU"));
    // a compressed image may not declare an absurd decompressed size
    let mut b = frame().to_bytes();
    let ext = [
        format!("{:<8}= {:<20}", "XTENSION", "'BINTABLE'"),
        card("BITPIX", "8"),
        card("NAXIS", "2"),
        card("NAXIS1", "8"),
        card("NAXIS2", "1"),
        card("PCOUNT", "0"),
        card("GCOUNT", "1"),
        card("ZIMAGE", "T"),
        card("ZBITPIX", "-64"),
        card("ZNAXIS", "2"),
        card("ZNAXIS1", "4294967296"),
        card("ZNAXIS2", "4294967296"),
    ];
    let mut hdu = raw_file(&ext, &[0u8; 8]);
    hdu.truncate(BLOCK + 8);
    hdu.resize(2 * BLOCK, 0);
    b.extend(hdu);
    let p = write(d.path(), "zbig.fits", &b);
    assert_eq!(load(&p).unwrap().corrupted.first().map(|c| c.code), Some("BAD_DATA_SIZE"));
}

#[test]
fn non_ascii_bytes_in_a_card_are_kept_not_a_cut() {
    let d = tempfile::tempdir().unwrap();
    let mut cards = vec![card("SIMPLE", "T"), card("BITPIX", "16"), card("NAXIS", "2"), card("NAXIS1", "60"), card("NAXIS2", "50")];
    cards.push("OBJECT  = 'café'".to_string());
    for i in 0..240 {
        cards.push(card(&format!("KEY{i}"), &i.to_string()));
    }
    let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    let bytes = raw_file(&cards, &data);
    let p = write(d.path(), "cafe.fits", &bytes);
    let f = load(&p).unwrap();
    assert!(f.corrupted.is_empty(), "{:?}", f.corrupted);
    assert_eq!(f.hdus[0].cards.len(), cards.len(), "every card is kept");
    assert!(f.warnings.iter().any(|w| w.code == "NONASCII_HEADER"), "{:?}", f.warnings);
    assert_eq!(f.hdus[0].data_len, 6000);
    // cfitsio finds the data where the card layer does
    write::check_data_units(&p, &f.data_units()).unwrap();
    // an edited header keeps the card's bytes; the data are the input's
    let mut f = f;
    f.hdus[0].set("PROGID", HValue::Text("C272".into()), "program");
    let out = d.path().join("out.fits");
    let w = write::write_fits(&f, &out).unwrap();
    write::check_data_units(&out, &w.data_units).unwrap();
    let written = std::fs::read(&out).unwrap();
    assert!(written.windows(5).any(|x| x == "café".as_bytes()), "the non-ASCII card is written byte for byte");
    let (at, _) = w.data_units[0];
    assert_eq!(&written[at as usize..(at + 6000) as usize], &data[..]);
}

#[test]
fn data_units_that_are_not_where_cfitsio_finds_them_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "a.fits", &frame().to_bytes());
    let f = load(&p).unwrap();
    write::check_data_units(&p, &f.data_units()).unwrap();
    let mut wrong = f.data_units();
    wrong[0].0 += 2880;
    assert!(write::check_data_units(&p, &wrong).is_err());
    assert!(write::check_data_units(&p, &wrong[..1]).is_err(), "HDU count");
}

#[test]
fn header_parsing_is_linear_in_the_number_of_cards() {
    // 200 000 distinct keywords: the old duplicate check compared each with every earlier one
    let d = tempfile::tempdir().unwrap();
    let mut cards = vec![card("SIMPLE", "T"), card("BITPIX", "8"), card("NAXIS", "0")];
    cards.extend((0..200_000).map(|i| card(&format!("K{i:07}"), "1")));
    let p = write(d.path(), "many.fits", &raw_file(&cards, &[]));
    let f = load(&p).unwrap();
    assert_eq!(f.hdus[0].cards.len(), 200_003);
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
}
