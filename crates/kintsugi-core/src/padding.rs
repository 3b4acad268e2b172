//! Padding plaintexts before they are sealed, so ciphertext sizes say less.
//!
//! Changes are padded with PADME (Nikitin et al., "Reducing Metadata Leakage from Encrypted
//! Files and Communication with PURBs", 2019): a length of `L` bytes is rounded up so that only
//! its top `⌊log2 ⌊log2 L⌋⌋ + 1` bits remain, which costs at most 12% (powers of two cost up to
//! 100%, on a phone's data plan) and leaves a size that names one of O(log log L) buckets
//! instead of the exact length. Names are short, so they are padded to whole blocks of 32.
//!
//! The padded plaintext is the length as 4 bytes big-endian, the bytes, then zeros.

const LENGTH_BYTES: usize = 4;
/// Names are padded to a multiple of this.
pub const NAME_BLOCK: usize = 32;

/// PADME's padded length for `len`.
pub fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let exponent = usize::BITS - 1 - len.leading_zeros();
    let kept_bits = u32::BITS - exponent.leading_zeros();
    let mask = (1usize << (exponent - kept_bits)) - 1;
    (len + mask) & !mask
}

/// `bytes` framed and padded to `padded_len(framed length)`.
pub fn pad(bytes: &[u8], padded_len: impl Fn(usize) -> usize) -> Vec<u8> {
    let framed = LENGTH_BYTES + bytes.len();
    let mut out = Vec::with_capacity(padded_len(framed));
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out.resize(padded_len(framed).max(framed), 0);
    out
}

/// The bytes `pad` framed, or `None` when the frame is not one (a wrong length, or padding
/// that is not zeros).
pub fn unpad(padded: &[u8]) -> Option<&[u8]> {
    let (length, rest) = padded.split_first_chunk::<LENGTH_BYTES>()?;
    let len = u32::from_be_bytes(*length) as usize;
    let (bytes, padding) = (rest.get(..len)?, &rest[len..]);
    padding.iter().all(|b| *b == 0).then_some(bytes)
}

/// A name's padded length: whole blocks of `NAME_BLOCK`.
pub fn name_blocks(len: usize) -> usize {
    len.div_ceil(NAME_BLOCK) * NAME_BLOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_rounds_up_by_at_most_twelve_percent() {
        assert_eq!(padme(0), 0);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        for len in (2..200_000).step_by(97) {
            let padded = padme(len);
            assert!(
                padded >= len && (padded - len) * 100 <= len * 12,
                "{len} -> {padded}"
            );
        }
    }

    #[test]
    fn sizes_fall_into_few_buckets() {
        // From 1 KiB to 2 KiB PADME keeps 4 significant bits: 1024 lengths pad to 17 sizes
        // (1024, 1088, ... 1984, and 2048 for the longest).
        let buckets: std::collections::BTreeSet<usize> = (1024..2048).map(padme).collect();
        assert_eq!(buckets.len(), 17);
    }

    #[test]
    fn framing_round_trips_and_refuses_junk() {
        let padded = pad(b"hello", padme);
        assert_eq!(unpad(&padded), Some(b"hello".as_slice()));
        assert_eq!(pad(b"Al", name_blocks).len(), NAME_BLOCK);
        assert_eq!(unpad(&[0, 0, 0, 9, 1]), None, "a length beyond the bytes");
        assert_eq!(
            unpad(&[0, 0, 0, 1, 7, 1]),
            None,
            "padding that is not zeros"
        );
        assert_eq!(unpad(&[0, 0]), None);
    }
}
