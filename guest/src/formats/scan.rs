//! A tiny cursor over a line of text: what the hand-written parsers share. Hand-written rather
//! than regular expressions: the shapes are fixed, this runs per entry on the hot path, and it
//! keeps the wasm component small.

use crate::time::{digits, epoch_ms, parse_fraction};

/// `hay.find(needle)` for the short literal needles the parsers look for.
///
/// The standard library's substring search builds a Two-Way searcher on every call, and its
/// byte search goes a 32-bit word at a time in the wasm guest: together a quarter of the
/// mapping's time there. This finds the needle's first byte with the `memchr` crate (SIMD on
/// x86_64, and in the guest, which is built with `simd128`) and compares there. The first byte
/// of a UTF-8 string is never a continuation byte, so every match is on a character boundary.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let Some(&first) = needle.first() else {
        return Some(0);
    };
    memchr::memchr_iter(first, hay).find(|&at| hay[at..].starts_with(needle))
}

/// `hay.contains(needle)`, as [`find`].
pub fn contains(hay: &str, needle: &str) -> bool {
    find(hay, needle).is_some()
}

/// `hay.rfind(needle)`, as [`find`].
pub fn rfind(hay: &str, needle: &str) -> Option<usize> {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let Some(&first) = needle.first() else {
        return Some(hay.len());
    };
    memchr::memrchr_iter(first, hay).find(|&at| hay[at..].starts_with(needle))
}

/// `hay.split_once(needle)`, as [`find`].
pub fn split_once<'a>(hay: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    let at = find(hay, needle)?;
    Some((&hay[..at], &hay[at + needle.len()..]))
}

/// `hay.match_indices(needle).map(|(at, _)| at)` for a non-empty needle, as [`find`]: where
/// each match starts, matches not overlapping.
pub fn match_indices<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() || from > hay.len() {
            return None;
        }
        let at = from + find(&hay[from..], needle)?;
        from = at + needle.len();
        Some(at)
    })
}

/// `hay.split(needle)` for a non-empty needle, as [`find`].
pub fn split<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let mut rest = Some(hay);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(r, needle).filter(|_| !needle.is_empty()) {
            Some(at) => {
                rest = Some(&r[at + needle.len()..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `text.split_whitespace()`. An ASCII text is cut byte by byte, at the six ASCII characters
/// `char::is_whitespace` takes; `split_whitespace` decodes every character, which is slow in
/// the guest, and Oracle's entry-start test runs on every line.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut unicode = (!text.is_ascii()).then(|| text.split_whitespace());
    let b = text.as_bytes();
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut at = 0;
    std::iter::from_fn(move || {
        if let Some(words) = unicode.as_mut() {
            return words.next();
        }
        while at < b.len() && space(b[at]) {
            at += 1;
        }
        let start = at;
        while at < b.len() && !space(b[at]) {
            at += 1;
        }
        (at > start).then(|| &text[start..at])
    })
}

/// `text.lines()`, with the newlines found by `memchr` (see [`find`]).
pub fn lines(text: &str) -> Lines<'_> {
    Lines { rest: Some(text) }
}

/// `text.lines().next().unwrap_or("")`: the first line, without its terminator.
pub fn first_line(text: &str) -> &str {
    lines(text).next().unwrap_or("")
}

/// The iterator of [`lines`]: LF or CRLF ends a line; a last line without one still counts,
/// and an empty text has no lines.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Lines<'a> {
    /// The text after the lines taken so far, as it is (line ends included).
    pub fn remainder(&self) -> &'a str {
        self.rest.unwrap_or("")
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest.take()?;
        match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(at) => {
                self.rest = Some(&rest[at + 1..]).filter(|r| !r.is_empty());
                let line = &rest[..at];
                Some(line.strip_suffix('\r').unwrap_or(line))
            }
            // A lone CR at the very end is content, as for `str::lines`.
            None => Some(rest).filter(|r| !r.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Scan<'a> {
    pub rest: &'a str,
}

impl<'a> Scan<'a> {
    pub fn new(s: &'a str) -> Self {
        Scan { rest: s }
    }

    /// Consumes `prefix` if the text starts with it.
    pub fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    pub fn eat_char(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    /// Skips spaces and tabs; returns how many.
    pub fn spaces(&mut self) -> usize {
        let n = self.rest.len() - self.rest.trim_start_matches([' ', '\t']).len();
        self.rest = &self.rest[n..];
        n
    }

    /// Takes up to (not including) `c`, consuming `c`; `None` (nothing consumed) if absent.
    pub fn until(&mut self, c: char) -> Option<&'a str> {
        let i = find(self.rest, c.encode_utf8(&mut [0; 4]))?;
        let out = &self.rest[..i];
        self.rest = &self.rest[i + c.len_utf8()..];
        Some(out)
    }

    /// Takes up to (not including) `pat`, consuming `pat`.
    pub fn until_str(&mut self, pat: &str) -> Option<&'a str> {
        let i = find(self.rest, pat)?;
        let out = &self.rest[..i];
        self.rest = &self.rest[i + pat.len()..];
        Some(out)
    }

    /// Takes a run of non-whitespace.
    pub fn word(&mut self) -> &'a str {
        let n =
            memchr::memchr3(b' ', b'\t', b'\n', self.rest.as_bytes()).unwrap_or(self.rest.len());
        let out = &self.rest[..n];
        self.rest = &self.rest[n..];
        out
    }

    /// Takes a run of ASCII digits as a number.
    pub fn number(&mut self) -> Option<i64> {
        let n = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 18 {
            return None;
        }
        let v = self.rest[..n].parse().ok()?;
        self.rest = &self.rest[n..];
        Some(v)
    }

    /// Takes a decimal number such as `0.006554` or `1454.486`.
    pub fn decimal(&mut self) -> Option<f64> {
        let n = self
            .rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let v = self.rest[..n].parse().ok()?;
        self.rest = &self.rest[n..];
        Some(v)
    }

    /// `YYYY-MM-DD?HH:MM:SS[.frac]` (any one separator): epoch ms and whether it had a fraction.
    pub fn date_time(&mut self) -> Option<(i64, bool)> {
        let (ms, rest) = crate::time::parse_date_time(self.rest)?;
        let (frac, n, rest) = parse_fraction(rest);
        self.rest = rest;
        Some((ms + frac as i64, n > 0))
    }

    /// A zone suffix (`Z`, `+HH:MM`, …; MySQL's `log_timestamps=SYSTEM` writes an offset),
    /// consumed: the milliseconds to subtract for UTC. Nothing is consumed when there is none.
    pub fn utc_offset(&mut self) -> Option<i64> {
        let (offset, rest) = crate::time::parse_offset(self.rest)?;
        self.rest = rest;
        Some(offset)
    }

    /// The rest of the current line (up to `\n`), consumed with the newline.
    pub fn line(&mut self) -> &'a str {
        match self.rest.find('\n') {
            Some(i) => {
                let out = &self.rest[..i];
                self.rest = &self.rest[i + 1..];
                out
            }
            None => {
                let out = self.rest;
                self.rest = "";
                out
            }
        }
    }
}

/// Whether `s` starts with `YYYY-MM-DD` followed by `sep` and `HH:MM:SS`.
pub fn starts_with_date_time(s: &str, sep: u8) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == sep
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// `YYMMDD H:MM:SS` or `YYMMDD HH:MM:SS` (MySQL's old short form, space-padded hour).
pub fn short_date_time(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if b.len() < 15 || b[6] != b' ' {
        return None;
    }
    let (yy, mo, dd) = (digits(b, 0, 2)?, digits(b, 2, 2)?, digits(b, 4, 2)?);
    let hour_at = if b[7] == b' ' { 8 } else { 7 };
    let (h, hour_len) = match digits(b, hour_at, 2) {
        Some(h) => (h, 2),
        None => (digits(b, hour_at, 1)?, 1),
    };
    let at = hour_at + hour_len;
    if b.get(at) != Some(&b':') || b.get(at + 3) != Some(&b':') {
        return None;
    }
    let (mi, se) = (digits(b, at + 1, 2)?, digits(b, at + 4, 2)?);
    let ms = epoch_ms(2000 + yy as i64, mo, dd, h, mi, se, 0)?;
    Some((ms, &s[at + 6..]))
}

/// Epoch ms of a date written with an English month name and an `H:MM:SS` time, as Oracle
/// writes it (`Mon Jan 15 03:20:00 2024`, `01-NOV-2021 17:19:26`).
pub fn named_month_time(year: &str, month_name: &str, day: &str, time: &str) -> Option<i64> {
    let mut t = Scan::new(time);
    let h = t.number()?;
    t.eat_char(':');
    let mi = t.number()?;
    t.eat_char(':');
    let se = t.number()?;
    if !t.rest.is_empty() {
        return None;
    }
    epoch_ms(
        year.parse().ok()?,
        month(month_name)?,
        day.parse().ok()?,
        h as u32,
        mi as u32,
        se as u32,
        0,
    )
}

/// Month abbreviations in English, for Oracle's `Mon Jan 15 03:20:00 2024` and `01-NOV-2021`.
pub fn month(abbrev: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    // Compared in place: a lowered copy allocated for every line tested.
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(abbrev))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search_agrees_with_the_standard_library() {
        let hays = [
            "",
            "a",
            "aaa",
            "ab ab (x) (y)",
            "한국 (a) 한",
            "*** (1) TRANSACTION",
            "x:[1]:[2]",
            "a * b * * c * ",
            "ORA-00600 TNS-12 ORA-1ORA-2",
        ];
        let needles = [
            "",
            "a",
            "aa",
            " (",
            "(y)",
            "한",
            "국 (",
            "*** (1) TRANSACTION",
            ":[",
            "zz",
            " * ",
            "ORA-",
            "aa a",
        ];
        for h in hays {
            for n in needles {
                assert_eq!(find(h, n), h.find(n), "find({h:?}, {n:?})");
                assert_eq!(rfind(h, n), h.rfind(n), "rfind({h:?}, {n:?})");
                assert_eq!(
                    split_once(h, n),
                    h.split_once(n),
                    "split_once({h:?}, {n:?})"
                );
                assert_eq!(contains(h, n), h.contains(n));
                if !n.is_empty() {
                    assert_eq!(
                        match_indices(h, n).collect::<Vec<_>>(),
                        h.match_indices(n).map(|(at, _)| at).collect::<Vec<_>>(),
                        "match_indices({h:?}, {n:?})"
                    );
                    assert_eq!(
                        split(h, n).collect::<Vec<_>>(),
                        h.split(n).collect::<Vec<_>>(),
                        "split({h:?}, {n:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn words_agree_with_the_standard_library() {
        for text in [
            "",
            " ",
            "Mon Jan 15 03:20:00 2024 +00:00",
            "  a\tb\r\nc\x0bd\x0ce  ",
            "a\u{a0}b c",
            "한 국\u{2003}어",
            "x\u{85}y",
            "DATABASE USER:[1] '/'",
        ] {
            let ours: Vec<&str> = words(text).collect();
            let std: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(ours, std, "words({text:?})");
        }
    }

    #[test]
    fn lines_agree_with_the_standard_library() {
        for text in [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "a\r",
            "\r\n",
            "a\n\nb\n",
            "x\ry\n",
            "한\n국",
        ] {
            let ours: Vec<&str> = lines(text).collect();
            let std: Vec<&str> = text.lines().collect();
            assert_eq!(ours, std, "lines({text:?})");
            assert_eq!(first_line(text), text.lines().next().unwrap_or(""));
        }
    }

    #[test]
    fn cursor_basics() {
        let mut s = Scan::new("2023-11-30T07:22:10.190471Z rest");
        assert_eq!(s.date_time(), Some((1_701_328_930_190, true)));
        assert!(s.eat_char('Z'));
        assert_eq!(s.spaces(), 1);
        assert_eq!(s.word(), "rest");
        let mut s = Scan::new("12.5 ms");
        assert_eq!(s.decimal(), Some(12.5));
        let mut s = Scan::new("a:b");
        assert_eq!(s.until(':'), Some("a"));
        assert_eq!(s.until(':'), None);
        assert_eq!(s.rest, "b");
    }

    #[test]
    fn short_dates() {
        assert_eq!(
            short_date_time("231128  9:13:22 server_audit"),
            Some((1_701_162_802_000, " server_audit"))
        );
        assert_eq!(
            short_date_time("230501 09:57:34 x").map(|t| t.0),
            Some(1_682_935_054_000)
        );
        assert_eq!(short_date_time("2311289:13:22"), None);
        assert!(starts_with_date_time("2024-01-03T08:00:01.34", b'T'));
        assert!(!starts_with_date_time("2024-01-03 08:00:01", b'T'));
    }
}
