//! Byte scans on the hot path of parsing and JSON writing: the first byte
//! that needs escaping in a JSON string, the first non-ASCII byte, the first
//! of three given bytes.
//!
//! Every document scans its whole line several times (the parser looking for
//! quotes, the writer looking for bytes to escape in `event.original` and in
//! each field), so these scans are a large share of the per-line cost. On
//! x86_64, SSE2 is part of the baseline (no runtime detection needed): each
//! 16-byte block is compared at once and the matches come back as a bitmask
//! whose lowest bit is the first match. Strings shorter than a block, and
//! other architectures, use eight-byte words (SWAR) instead.

/// Splat a byte over a word.
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit of each zero byte of `x`. A borrow can flag a byte above a true
/// zero byte, never below one, so the lowest flag is always a true zero.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Whether a byte must be escaped inside a JSON string.
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Per-byte flags of [`needs_escape`] over a word (lowest flag exact).
#[inline(always)]
fn escape_word(w: u64) -> u64 {
    zero_bytes(w ^ (LO * b'"' as u64)) | zero_bytes(w ^ (LO * b'\\' as u64)) | (w.wrapping_sub(LO * 0x20) & !w & HI)
}

#[cfg(target_arch = "x86_64")]
mod block {
    use std::arch::x86_64::*;

    // SAFETY (every function): `b` is 16 readable bytes and `loadu` has no
    // alignment requirement; SSE2 is always present on x86_64.

    /// Bit k set: byte k needs escaping in a JSON string.
    #[inline(always)]
    pub fn escape(b: &[u8; 16]) -> u32 {
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned v < 0x20 is min(v, 0x1f) == v.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        }
    }

    /// Bit k set: byte k needs escaping in a JSON string or is not ASCII.
    #[inline(always)]
    pub fn escape_or_non_ascii(b: &[u8; 16]) -> u32 {
        escape(b) | non_ascii(b)
    }

    /// Bit k set: byte k is not ASCII.
    #[inline(always)]
    pub fn non_ascii(b: &[u8; 16]) -> u32 {
        unsafe { _mm_movemask_epi8(_mm_loadu_si128(b.as_ptr().cast())) as u32 }
    }

    /// Bit k set: byte k is outside printable US-ASCII (33..=126).
    #[inline(always)]
    pub fn non_printable(b: &[u8; 16]) -> u32 {
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            // Signed compares: bytes >= 0x80 are negative, so below 33 too.
            let above = _mm_cmpgt_epi8(v, _mm_set1_epi8(32));
            let below = _mm_cmplt_epi8(v, _mm_set1_epi8(127));
            (!_mm_movemask_epi8(_mm_and_si128(above, below)) as u32) & 0xffff
        }
    }

    /// Bit k set: byte k is `x`, `y` or `z`.
    #[inline(always)]
    pub fn eq3(b: &[u8; 16], x: u8, y: u8, z: u8) -> u32 {
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let a = _mm_cmpeq_epi8(v, _mm_set1_epi8(x as i8));
            let b = _mm_cmpeq_epi8(v, _mm_set1_epi8(y as i8));
            let c = _mm_cmpeq_epi8(v, _mm_set1_epi8(z as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), c)) as u32
        }
    }
}

/// The same masks, a byte at a time, where there is no SSE2; never on the hot
/// path there (the scans skip blocks unless on x86_64), but it keeps one driver.
#[cfg(not(target_arch = "x86_64"))]
mod block {
    #[inline(always)]
    fn mask(b: &[u8; 16], f: impl Fn(u8) -> bool) -> u32 {
        b.iter().enumerate().fold(0, |m, (k, &x)| m | ((f(x) as u32) << k))
    }
    pub fn escape(b: &[u8; 16]) -> u32 {
        mask(b, super::needs_escape)
    }
    pub fn non_ascii(b: &[u8; 16]) -> u32 {
        mask(b, |x| x >= 0x80)
    }
    pub fn eq3(b: &[u8; 16], x: u8, y: u8, z: u8) -> u32 {
        mask(b, |c| c == x || c == y || c == z)
    }
    pub fn non_printable(b: &[u8; 16]) -> u32 {
        mask(b, |c| !super::printable(c))
    }
    pub fn escape_or_non_ascii(b: &[u8; 16]) -> u32 {
        mask(b, |c| super::needs_escape(c) || c >= 0x80)
    }
}

#[inline(always)]
fn word_at(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn half_at(s: &[u8], i: usize) -> u64 {
    u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes")) as u64
}

/// Index of the first byte of `s` that `block` / `word` / `byte` flag (the
/// three must agree). Blocks of 16 on x86_64, then words of 8; the last block
/// or word of a string overlaps the one before it instead of going byte by
/// byte (the overlap was already found clean, so it adds no flags).
#[inline(always)]
fn scan(
    s: &[u8],
    block: impl Fn(&[u8; 16]) -> u32,
    word: impl Fn(u64) -> u64,
    byte: impl Fn(u8) -> bool,
) -> Option<usize> {
    let n = s.len();
    if cfg!(target_arch = "x86_64") && n >= 16 {
        let mut i = 0;
        while i + 16 <= n {
            let m = block(s[i..i + 16].try_into().expect("16 bytes"));
            if m != 0 {
                return Some(i + m.trailing_zeros() as usize);
            }
            i += 16;
        }
        if i < n {
            let m = block(s[n - 16..].try_into().expect("16 bytes"));
            if m != 0 {
                return Some(n - 16 + m.trailing_zeros() as usize);
            }
        }
        return None;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            let f = word(word_at(s, i));
            if f != 0 {
                return Some(i + (f.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        if i < n {
            let f = word(word_at(s, n - 8));
            if f != 0 {
                return Some(n - 8 + (f.trailing_zeros() / 8) as usize);
            }
        }
        return None;
    }
    if n >= 4 {
        // Bytes 0..4 in the low half, n-4..n in the high half: the low half
        // is looked at first, so a flag borrowed into the high half from a
        // true match below is never used.
        let f = word(half_at(s, 0) | half_at(s, n - 4) << 32);
        if f == 0 {
            return None;
        }
        let k = (f.trailing_zeros() / 8) as usize;
        return Some(if k < 4 { k } else { n + k - 8 });
    }
    s.iter().position(|&b| byte(b))
}

/// Index of the first byte a JSON string must escape: `"`, `\` or a control
/// character below 0x20.
#[inline]
pub fn find_escape(s: &[u8]) -> Option<usize> {
    scan(s, block::escape, escape_word, needs_escape)
}

/// Whether a string shorter than 16 bytes has a byte a JSON string must
/// escape: the yes/no form of [`find_escape`] for short field values, one or
/// two word tests with no setup.
#[inline(always)]
pub fn short_needs_escape(s: &[u8]) -> bool {
    let n = s.len();
    debug_assert!(n < 16);
    if n >= 8 {
        escape_word(word_at(s, 0)) | escape_word(word_at(s, n - 8)) != 0
    } else if n >= 4 {
        escape_word(half_at(s, 0) | half_at(s, n - 4) << 32) != 0
    } else {
        s.iter().any(|&b| needs_escape(b))
    }
}

/// Index of the first byte that [`find_escape`] or [`find_non_ascii`] would
/// stop at: one pass for text that must be escaped and may not be UTF-8.
#[inline]
pub fn find_escape_or_non_ascii(s: &[u8]) -> Option<usize> {
    scan(
        s,
        block::escape_or_non_ascii,
        |w| escape_word(w) | (w & HI),
        |b| needs_escape(b) || b >= 0x80,
    )
}

/// Index of the first byte >= 0x80; `s.len()` if none.
#[inline]
pub fn find_non_ascii(s: &[u8]) -> usize {
    scan(s, block::non_ascii, |w| w & HI, |b| b >= 0x80).unwrap_or(s.len())
}

/// Printable US-ASCII (`PRINTUSASCII = %d33-126` in RFC 5424).
#[inline(always)]
pub fn printable(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// Per-byte flags of bytes outside 33..=126 over a word (lowest flag exact):
/// below 33 (borrow test as for controls), 127 (equality), or >= 0x80.
#[inline(always)]
fn non_printable_word(w: u64) -> u64 {
    (w.wrapping_sub(LO * 33) & !w & HI) | zero_bytes(w ^ (LO * 127)) | (w & HI)
}

/// Index of the first byte outside printable US-ASCII (33..=126).
#[inline]
pub fn find_non_printable(s: &[u8]) -> Option<usize> {
    scan(s, block::non_printable, non_printable_word, |b| !printable(b))
}

/// `s` as `&str` if it is valid UTF-8. All-ASCII input (nearly every log
/// field) is recognised by the block scan, without `from_utf8`'s per-call
/// overhead on short fields.
#[inline]
pub fn utf8(s: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if find_non_ascii(s) == s.len() {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(s) })
    } else {
        std::str::from_utf8(s)
    }
}

/// Index of the first byte equal to `a`, `b` or `c`.
#[inline]
pub fn find3(s: &[u8], a: u8, b: u8, c: u8) -> Option<usize> {
    let (sa, sb, sc) = (LO * a as u64, LO * b as u64, LO * c as u64);
    scan(
        s,
        |blk| block::eq3(blk, a, b, c),
        |w| zero_bytes(w ^ sa) | zero_bytes(w ^ sb) | zero_bytes(w ^ sc),
        |x| x == a || x == b || x == c,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to three blocks, a flagged byte at every position (and
    /// a second one after it), against a byte loop.
    #[test]
    fn scans_agree_with_a_byte_loop() {
        let bytes = [
            b'"', b'\\', 0x00, 0x1f, b'\n', 0x20, b'!', b'~', b']', 0x7f, 0x80, 0xc3, 0xff, b'a',
        ];
        for len in 0..50 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for at in 0..=len {
                for &c in &bytes {
                    for &d in &[b'"', 0x01, 0xe2] {
                        let mut t = base.clone();
                        if at < len {
                            t[at] = c;
                        }
                        if at + 3 < len {
                            t[at + 3] = d;
                        }
                        assert_eq!(find_escape(&t), t.iter().position(|&b| needs_escape(b)), "{t:?}");
                        if len < 16 {
                            assert_eq!(short_needs_escape(&t), t.iter().any(|&b| needs_escape(b)), "{t:?}");
                        }
                        assert_eq!(
                            find_non_ascii(&t),
                            t.iter().position(|&b| b >= 0x80).unwrap_or(len),
                            "{t:?}"
                        );
                        assert_eq!(
                            find_escape_or_non_ascii(&t),
                            t.iter().position(|&b| needs_escape(b) || b >= 0x80),
                            "{t:?}"
                        );
                        assert_eq!(find_non_printable(&t), t.iter().position(|&b| !printable(b)), "{t:?}");
                        assert_eq!(utf8(&t).ok(), std::str::from_utf8(&t).ok(), "{t:?}");
                        for (x, y, z) in [(b'"', b'\\', b']'), (0, 0x80, 0xff), (b'a', b'a', b'a')] {
                            assert_eq!(
                                find3(&t, x, y, z),
                                t.iter().position(|&b| b == x || b == y || b == z),
                                "{t:?} {x} {y} {z}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_byte_value() {
        let hay: Vec<u8> = (0u8..=255).chain(0u8..=255).collect();
        for a in 0..=255u8 {
            for b in [0u8, 1, 0x7f, 0x80, 0xff, b'"'] {
                for start in [0usize, 1, 3, 7, 200, 250, 253] {
                    let h = &hay[start..];
                    let want = h.iter().position(|&x| x == a || x == b || x == b'\\');
                    assert_eq!(find3(h, a, b, b'\\'), want, "{a} {b} {start}");
                }
            }
            let h = &hay[a as usize..];
            assert_eq!(find_escape(h), h.iter().position(|&b| needs_escape(b)));
            assert_eq!(find_non_printable(h), h.iter().position(|&b| !printable(b)));
            let h = &hay[(a as usize).max(33)..];
            assert_eq!(find_non_printable(h), h.iter().position(|&b| !printable(b)));
        }
    }
}
