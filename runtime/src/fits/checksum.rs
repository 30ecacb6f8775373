//! FITS data-integrity keywords (FITS standard, Appendix J): DATASUM is the
//! 32-bit ones'-complement sum of the data; CHECKSUM makes the sum of the
//! whole HDU (header + data) negative zero. Used to verify incoming files
//! (warning CHECKSUM_MISMATCH) and to re-seal edited lev-0 headers.

/// Ones'-complement sum of big-endian 32-bit words (bytes padded with zeros).
pub fn ones_sum(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut acc: u64 = sum as u64;
    let mut chunks = bytes.chunks_exact(4);
    for w in &mut chunks {
        acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 4];
        w[..rem.len()].copy_from_slice(rem);
        acc += u32::from_be_bytes(w) as u64;
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    }
    sum = acc as u32;
    sum
}

/// The 16-character ASCII encoding of a checksum (complemented).
pub fn encode(sum: u32) -> String {
    let value = !sum;
    const EXCLUDE: [u8; 13] = [0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60];
    const OFFSET: u8 = 0x30;
    let mut ascii = [0u8; 16];
    for i in 0..4 {
        let byte = ((value >> (24 - 8 * i)) & 0xFF) as u8;
        let quotient = byte / 4 + OFFSET;
        let remainder = byte % 4;
        let mut ch = [quotient; 4];
        ch[0] += remainder;
        loop {
            let mut changed = false;
            for k in (0..4).step_by(2) {
                if EXCLUDE.contains(&ch[k]) || EXCLUDE.contains(&ch[k + 1]) {
                    ch[k] += 1;
                    ch[k + 1] -= 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (k, c) in ch.iter().enumerate() {
            ascii[4 * k + i] = *c;
        }
    }
    // rotate right by one
    let mut out = [0u8; 16];
    for (i, c) in ascii.iter().enumerate() {
        out[(i + 1) % 16] = *c;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_header_sums_to_negative_zero() {
        // a header block with CHECKSUM = '0000000000000000' on the third card
        let mut block = vec![b' '; 2880];
        block[..30].copy_from_slice(b"SIMPLE  =                    T");
        block[80..110].copy_from_slice(b"BITPIX  =                    8");
        block[160..188].copy_from_slice(b"CHECKSUM= '0000000000000000'");
        block[240..243].copy_from_slice(b"END");
        let s = ones_sum(0, &block);
        let enc = encode(s);
        assert_eq!(enc.len(), 16);
        assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric()));
        block[171..187].copy_from_slice(enc.as_bytes());
        assert_eq!(ones_sum(0, &block), 0xFFFF_FFFF);
    }

    #[test]
    fn end_around_carry() {
        assert_eq!(ones_sum(0, &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2]), 2);
        assert_eq!(ones_sum(0, &[0, 0, 0, 1, 0, 0, 0, 1]), 2);
    }
}
