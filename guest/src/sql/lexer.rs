//! A SQL tokenizer per dialect that never fails. RDS cuts long statements, logs mangle them,
//! and some "statements" are not SQL at all, so every byte sequence is tokens: a quote that is
//! never closed runs to the end, a byte no rule knows is one [`Kind::Other`] token, and
//! [`Token::unterminated`] says where the text ended early.
//!
//! The dialect rules, as each server reads its text:
//! - MySQL (and MariaDB, Aurora MySQL): `'…'` and `"…"` are strings with backslash escapes and
//!   doubled quotes; `` `…` `` identifiers; `#` and `-- ` (dash dash space) comments; the body of
//!   `/*!NNNNN … */` is SQL (the server runs it), so only its markers are skipped; `0x1F`,
//!   `X'1F'`, `0b01`, `B'01'` literals; `@var`, `@@var` variables; `?` parameters.
//! - PostgreSQL: `'…'` without backslash escapes (`standard_conforming_strings`), `E'…'` with
//!   them, `U&'…'`, `B'…'`, `X'…'`; `$tag$…$tag$` dollar quotes; `"…"` identifiers; nested
//!   `/* */` comments; `$1` parameters; `::` casts are operators.
//! - SQL Server: `'…'`, `N'…'`; `[…]` and `"…"` identifiers; `@p` parameters and variables;
//!   `#temp` and `##global` table names; `0x1F` literals.
//! - Oracle: `'…'`, `N'…'`, `q'[…]'` with any delimiter pair; `"…"` identifiers; `:name` and
//!   `:1` binds; `$` and `#` inside names.

/// The SQL dialect a statement is read in: the engine that logged it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Postgres,
    SqlServer,
    Oracle,
}

impl Dialect {
    /// The dialect of an engine as records name it (`engine` tag).
    pub fn of_engine(engine: &str) -> Option<Dialect> {
        Some(match engine {
            "mysql" | "mariadb" | "aurora-mysql" => Dialect::MySql,
            "postgresql" | "aurora-postgresql" => Dialect::Postgres,
            "sqlserver" => Dialect::SqlServer,
            "oracle" => Dialect::Oracle,
            _ => return None,
        })
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An unquoted name: a keyword or an identifier.
    Word,
    /// A quoted identifier: `` `x` ``, `"x"` (not MySQL), `[x]` (SQL Server).
    QuotedIdent,
    /// A string literal in any of its forms.
    String,
    /// A number: `12`, `1.5`, `.5`, `1e-3`.
    Number,
    /// A hex or bit literal: `0x1F`, `X'1F'`, `0b01`, `B'01'`.
    Binary,
    /// A parameter or bind placeholder: `?`, `$1`, `:name`, `@p1`.
    Param,
    /// A MySQL user or system variable: `@v`, `@@session.x`.
    Variable,
    /// A comment: `-- …`, `# …`, `/* … */`.
    Comment,
    /// An optimizer hint: `/*+ … */`.
    Hint,
    /// An operator: `=`, `<>`, `::`, `||`, `->>`, `-`, …
    Op,
    /// `(`, `)`, `,`, `;`, `.`, `[`, `]`.
    Punct,
    /// Spaces, tabs and line ends.
    Space,
    /// A character no rule knows (a control character, a stray backslash, …).
    Other,
}

/// One token: its kind and its exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'s> {
    pub kind: Kind,
    pub text: &'s str,
    /// A quote or comment the text ended inside of (a truncated statement).
    pub unterminated: bool,
}

/// The tokens of a statement, in order, covering every byte of it.
pub struct Lexer<'s> {
    src: &'s str,
    at: usize,
    dialect: Dialect,
    /// Inside MySQL's `/*! … */`: the next `*/` closes it.
    in_executable: bool,
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str, dialect: Dialect) -> Lexer<'s> {
        Lexer {
            src,
            at: 0,
            dialect,
            in_executable: false,
        }
    }

    fn bytes(&self) -> &'s [u8] {
        self.src.as_bytes()
    }

    fn peek(&self, ahead: usize) -> u8 {
        self.bytes().get(self.at + ahead).copied().unwrap_or(0)
    }

    fn token(&mut self, kind: Kind, end: usize, unterminated: bool) -> Token<'s> {
        let end = self.char_end(end.min(self.src.len()));
        let text = &self.src[self.at..end];
        self.at = end;
        Token {
            kind,
            text,
            unterminated,
        }
    }

    /// `end`, moved forward to a character boundary (a token never splits a character).
    fn char_end(&self, mut end: usize) -> usize {
        while !self.src.is_char_boundary(end) {
            end += 1;
        }
        end
    }

    /// The end of a quoted run opened at `start` (the opening quote) and closed by `close`:
    /// a doubled `close` is one character; with `backslash`, `\` escapes the next byte.
    /// `None` when the text ends first.
    fn quoted_end(&self, start: usize, close: u8, backslash: bool) -> Option<usize> {
        let b = self.bytes();
        let mut i = start + 1;
        while i < b.len() {
            let c = b[i];
            if backslash && c == b'\\' {
                i += 2;
            } else if c == close {
                if b.get(i + 1) == Some(&close) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// A quoted token that starts `prefix` bytes before its quote at `self.at + prefix`.
    fn quoted(&mut self, kind: Kind, prefix: usize, close: u8, backslash: bool) -> Token<'s> {
        match self.quoted_end(self.at + prefix, close, backslash) {
            Some(end) => self.token(kind, end, false),
            None => self.token(kind, self.src.len(), true),
        }
    }

    fn word_end(&self, from: usize) -> usize {
        let b = self.bytes();
        let mut i = from;
        while i < b.len() && is_word_byte(b[i], self.dialect) {
            i += 1;
        }
        i
    }

    fn digits_end(&self, from: usize, ok: impl Fn(u8) -> bool) -> usize {
        let b = self.bytes();
        let mut i = from;
        while i < b.len() && (ok(b[i]) || (b[i] == b'_' && self.dialect == Dialect::Postgres)) {
            i += 1;
        }
        i
    }

    fn number(&mut self) -> Token<'s> {
        let b = self.bytes();
        let start = self.at;
        if b[start] == b'0' && matches!(self.peek(1), b'x' | b'X' | b'b' | b'B') {
            let hex = matches!(self.peek(1), b'x' | b'X');
            let end = self.digits_end(start + 2, |c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c == b'0' || c == b'1'
                }
            });
            if end > start + 2 && !self.continues_word(end) {
                return self.token(Kind::Binary, end, false);
            }
        }
        let mut i = self.digits_end(start, |c| c.is_ascii_digit());
        if b.get(i) == Some(&b'.') && b.get(i + 1) != Some(&b'.') {
            i = self.digits_end(i + 1, |c| c.is_ascii_digit());
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
            if b.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
                i = self.digits_end(i + 1 + sign, |c| c.is_ascii_digit());
            }
        }
        // MySQL names may begin with digits (`1st_table`); elsewhere `1abc` is a number and a
        // word, which reads the same for a fingerprint.
        if self.dialect == Dialect::MySql && self.continues_word(i) {
            let end = self.word_end(i);
            return self.token(Kind::Word, end, false);
        }
        self.token(Kind::Number, i, false)
    }

    fn continues_word(&self, at: usize) -> bool {
        self.bytes()
            .get(at)
            .is_some_and(|&c| is_word_byte(c, self.dialect))
    }

    fn block_comment(&mut self) -> Token<'s> {
        let b = self.bytes();
        let kind = if self.peek(2) == b'+' {
            Kind::Hint
        } else {
            Kind::Comment
        };
        let nested = self.dialect == Dialect::Postgres;
        let mut depth = 1;
        let mut i = self.at + 2;
        while i + 1 < b.len() {
            if b[i] == b'*' && b[i + 1] == b'/' {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return self.token(kind, i, false);
                }
            } else if nested && b[i] == b'/' && b[i + 1] == b'*' {
                depth += 1;
                i += 2;
            } else {
                i += 1;
            }
        }
        self.token(kind, b.len(), true)
    }

    fn line_comment(&mut self) -> Token<'s> {
        let end =
            memchr::memchr(b'\n', &self.bytes()[self.at..]).map_or(self.src.len(), |i| self.at + i);
        self.token(Kind::Comment, end, false)
    }

    /// PostgreSQL `$tag$ … $tag$` (tag may be empty), or `None` if `$` does not open one.
    fn dollar_quote(&mut self) -> Option<Token<'s>> {
        let b = self.bytes();
        let mut i = self.at + 1;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
            i += 1;
        }
        if b.get(i) != Some(&b'$') || b.get(self.at + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let tag = &self.src[self.at..=i];
        let body = i + 1;
        Some(match memchr::memmem::find(&b[body..], tag.as_bytes()) {
            Some(end) => self.token(Kind::String, body + end + tag.len(), false),
            None => self.token(Kind::String, b.len(), true),
        })
    }

    /// Oracle `q'<delim>…<delim>'` starting `prefix` bytes before the quote.
    fn q_quote(&mut self, prefix: usize) -> Token<'s> {
        let b = self.bytes();
        let open = self.at + prefix + 1;
        let Some(&delim) = b.get(open) else {
            return self.token(Kind::String, b.len(), true);
        };
        let close = match delim {
            b'[' => b']',
            b'{' => b'}',
            b'(' => b')',
            b'<' => b'>',
            d => d,
        };
        let mut i = open + 1;
        while i + 1 < b.len() {
            if b[i] == close && b[i + 1] == b'\'' {
                return self.token(Kind::String, i + 2, false);
            }
            i += 1;
        }
        self.token(Kind::String, b.len(), true)
    }

    /// An operator. PostgreSQL's may be any run of operator characters, but one that ends in
    /// `+` or `-` and has none of `~ ! @ # % ^ & |` ends before them (so `=-1` is `=` and
    /// `-1`); the other dialects have a fixed set, longest first.
    fn operator(&mut self) -> Token<'s> {
        let b = self.bytes();
        let start = self.at;
        if self.dialect != Dialect::Postgres {
            const MULTI: [&[u8]; 13] = [
                b"<=>", b"->>", b"<=", b">=", b"<>", b"!=", b":=", b"||", b"&&", b"<<", b">>",
                b"->", b"!<",
            ];
            let len = MULTI
                .iter()
                .find(|m| b[start..].starts_with(m))
                .map_or(1, |m| m.len());
            return self.token(Kind::Op, start + len, false);
        }
        let mut i = start;
        while i < b.len() && is_operator_byte(b[i], self.dialect) {
            // A comment opener ends an operator (`=--x`, `*/*`).
            if i > start
                && ((b[i] == b'-' && b.get(i + 1) == Some(&b'-'))
                    || (b[i] == b'/' && b.get(i + 1) == Some(&b'*')))
            {
                break;
            }
            i += 1;
        }
        let op = &b[start..i];
        if op.len() > 1 && !op.iter().any(|c| b"~!@#%^&|".contains(c)) {
            while i > start + 1 && matches!(b[i - 1], b'+' | b'-') {
                i -= 1;
            }
        }
        self.token(Kind::Op, i.max(start + 1), false)
    }
}

/// A byte continues an unquoted name.
const WORD: u8 = 1;
/// A byte is an operator character.
const OP: u8 = 2;

/// What each byte is in a dialect: a table, as the tokenizer asks for every byte.
const fn classes(dialect: Dialect) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        // Non-ASCII letters count, as every server allows them.
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            t[c] |= WORD;
        }
        if b == b'#' && matches!(dialect, Dialect::Oracle | Dialect::SqlServer) {
            t[c] |= WORD;
        }
        if matches!(
            b,
            b'+' | b'-'
                | b'*'
                | b'/'
                | b'<'
                | b'>'
                | b'='
                | b'~'
                | b'!'
                | b'%'
                | b'^'
                | b'&'
                | b'|'
                | b':'
        ) || (matches!(b, b'@' | b'#') && matches!(dialect, Dialect::Postgres))
        {
            t[c] |= OP;
        }
        c += 1;
    }
    t
}

const CLASSES: [[u8; 256]; 4] = [
    classes(Dialect::MySql),
    classes(Dialect::Postgres),
    classes(Dialect::SqlServer),
    classes(Dialect::Oracle),
];

fn class(c: u8, dialect: Dialect) -> u8 {
    CLASSES[dialect as usize][c as usize]
}

fn is_word_byte(c: u8, dialect: Dialect) -> bool {
    class(c, dialect) & WORD != 0
}

fn is_operator_byte(c: u8, dialect: Dialect) -> bool {
    class(c, dialect) & OP != 0
}

impl<'s> Iterator for Lexer<'s> {
    type Item = Token<'s>;

    fn next(&mut self) -> Option<Token<'s>> {
        let b = self.bytes();
        let c = *b.get(self.at)?;
        let d = self.dialect;
        let next = self.peek(1);
        Some(match c {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => {
                let mut i = self.at + 1;
                while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b'\x0c') {
                    i += 1;
                }
                self.token(Kind::Space, i, false)
            }
            b'*' if self.in_executable && next == b'/' => {
                self.in_executable = false;
                self.token(Kind::Space, self.at + 2, false)
            }
            b'/' if next == b'*' && d == Dialect::MySql && self.peek(2) == b'!' => {
                // `/*!50001 body */`: the markers are skipped, the body is lexed as SQL.
                let end = self.digits_end(self.at + 3, |c| c.is_ascii_digit());
                self.in_executable = true;
                self.token(Kind::Space, end, false)
            }
            b'/' if next == b'*' => self.block_comment(),
            b'-' if next == b'-' => {
                // MySQL needs a space or control character after `--`.
                if d != Dialect::MySql || self.peek(2) <= b' ' {
                    self.line_comment()
                } else {
                    self.operator()
                }
            }
            b'#' if d == Dialect::MySql => self.line_comment(),
            b'\'' => self.quoted(Kind::String, 0, b'\'', d == Dialect::MySql),
            b'"' if d == Dialect::MySql => self.quoted(Kind::String, 0, b'"', true),
            b'"' => self.quoted(Kind::QuotedIdent, 0, b'"', false),
            b'`' if d == Dialect::MySql => self.quoted(Kind::QuotedIdent, 0, b'`', false),
            b'[' if d == Dialect::SqlServer => self.quoted(Kind::QuotedIdent, 0, b']', false),
            b'0'..=b'9' => self.number(),
            b'.' if next.is_ascii_digit() => self.number(),
            b'$' if d == Dialect::Postgres && next.is_ascii_digit() => {
                let end = self.digits_end(self.at + 1, |c| c.is_ascii_digit());
                self.token(Kind::Param, end, false)
            }
            b'$' if d == Dialect::Postgres => match self.dollar_quote() {
                Some(t) => t,
                None => self.token(Kind::Other, self.at + 1, false),
            },
            b'?' => self.token(Kind::Param, self.at + 1, false),
            b':' if d == Dialect::Oracle && (next.is_ascii_alphanumeric() || next == b'_') => {
                let end = self.word_end(self.at + 1);
                self.token(Kind::Param, end, false)
            }
            b':' if d == Dialect::Postgres && next == b':' => {
                self.token(Kind::Op, self.at + 2, false)
            }
            b'@' if d == Dialect::SqlServer => {
                let end = self.word_end(self.at + 1 + usize::from(next == b'@'));
                self.token(Kind::Param, end, false)
            }
            b'@' if d == Dialect::MySql => {
                let mut i = self.at + 1 + usize::from(next == b'@');
                let b2 = self.bytes();
                while i < b2.len() && (is_word_byte(b2[i], d) || b2[i] == b'.') {
                    i += 1;
                }
                if let Some(&q) = b2.get(i).filter(|_| i == self.at + 1)
                    && matches!(q, b'\'' | b'"' | b'`')
                {
                    // `'bob'@'%'`: the host part of an account name is a string.
                    let account = self.at > 0 && matches!(b2[self.at - 1], b'\'' | b'"' | b'`');
                    let kind = if account && q != b'`' {
                        Kind::String
                    } else {
                        Kind::Variable
                    };
                    return Some(self.quoted(kind, 1, q, q != b'`'));
                }
                self.token(Kind::Variable, i, false)
            }
            b'(' | b')' | b',' | b';' | b'.' | b'[' | b']' => {
                self.token(Kind::Punct, self.at + 1, false)
            }
            _ if c.is_ascii_alphabetic()
                || c == b'_'
                || c >= 0x80
                || (c == b'#' && d == Dialect::SqlServer) =>
            {
                let quote = self.peek(1);
                let upper = c.to_ascii_uppercase();
                // Prefixed strings: N'' E'' X'' B'' and Oracle's q''/nq''.
                if quote == b'\'' {
                    match (upper, d) {
                        (b'N', _) => {
                            return Some(self.quoted(Kind::String, 1, b'\'', d == Dialect::MySql));
                        }
                        (b'E', Dialect::Postgres) => {
                            return Some(self.quoted(Kind::String, 1, b'\'', true));
                        }
                        (b'X' | b'B', _) => {
                            return Some(self.quoted(Kind::Binary, 1, b'\'', false));
                        }
                        (b'Q', Dialect::Oracle) => return Some(self.q_quote(1)),
                        _ => {}
                    }
                }
                if d == Dialect::Oracle
                    && upper == b'N'
                    && matches!(next, b'q' | b'Q')
                    && self.peek(2) == b'\''
                {
                    return Some(self.q_quote(2));
                }
                if d == Dialect::Postgres && upper == b'U' && next == b'&' && self.peek(2) == b'\''
                {
                    return Some(self.quoted(Kind::String, 2, b'\'', false));
                }
                if d == Dialect::MySql && c == b'_' {
                    // A charset introducer: `_utf8mb4'text'` is one string.
                    let end = self.word_end(self.at + 1);
                    if self.bytes().get(end) == Some(&b'\'') {
                        let t = self.quoted(Kind::String, end - self.at, b'\'', true);
                        return Some(t);
                    }
                }
                let end = self.word_end(self.at + 1);
                self.token(Kind::Word, end, false)
            }
            _ if is_operator_byte(c, d) => self.operator(),
            _ => self.token(Kind::Other, self.at + 1, false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str, d: Dialect) -> Vec<(Kind, &str)> {
        Lexer::new(sql, d)
            .filter(|t| t.kind != Kind::Space)
            .map(|t| (t.kind, t.text))
            .collect()
    }

    #[test]
    fn tokens_cover_every_byte() {
        for d in [
            Dialect::MySql,
            Dialect::Postgres,
            Dialect::SqlServer,
            Dialect::Oracle,
        ] {
            for sql in [
                "select 'a''b' from t -- x",
                "\u{0}\u{7f}é'",
                "q'[x]' $a$ b $a$ @@x [y",
            ] {
                let joined: String = Lexer::new(sql, d).map(|t| t.text).collect();
                assert_eq!(joined, sql, "{d:?}");
            }
        }
    }

    #[test]
    fn mysql_rules() {
        use Kind::*;
        assert_eq!(
            kinds(
                r#"SELECT `a b`, "x\"y", 'it\'s', 0x1F, X'0A', 1e3, @v, @@global.x -- c"#,
                Dialect::MySql
            ),
            vec![
                (Word, "SELECT"),
                (QuotedIdent, "`a b`"),
                (Punct, ","),
                (String, r#""x\"y""#),
                (Punct, ","),
                (String, r"'it\'s'"),
                (Punct, ","),
                (Binary, "0x1F"),
                (Punct, ","),
                (Binary, "X'0A'"),
                (Punct, ","),
                (Number, "1e3"),
                (Punct, ","),
                (Variable, "@v"),
                (Punct, ","),
                (Variable, "@@global.x"),
                (Comment, "-- c"),
            ]
        );
        assert_eq!(
            kinds("a --1", Dialect::MySql),
            vec![(Word, "a"), (Op, "-"), (Op, "-"), (Number, "1")]
        );
        assert_eq!(
            kinds("# all\nx", Dialect::MySql),
            vec![(Comment, "# all"), (Word, "x")]
        );
        assert_eq!(
            kinds("/*!40101 SET x=1 */; /*+ BKA(t) */", Dialect::MySql),
            vec![
                (Word, "SET"),
                (Word, "x"),
                (Op, "="),
                (Number, "1"),
                (Punct, ";"),
                (Hint, "/*+ BKA(t) */")
            ]
        );
        assert_eq!(
            kinds("_utf8mb4'x' 1st", Dialect::MySql),
            vec![(String, "_utf8mb4'x'"), (Word, "1st")]
        );
    }

    #[test]
    fn postgres_rules() {
        use Kind::*;
        assert_eq!(
            kinds(
                r"SELECT $1::int, E'a\'b', U&'d\0061', $fn$ x ' $fn$, 'c:\', $$q$$ /* a /* b */ c */",
                Dialect::Postgres
            ),
            vec![
                (Word, "SELECT"),
                (Param, "$1"),
                (Op, "::"),
                (Word, "int"),
                (Punct, ","),
                (String, r"E'a\'b'"),
                (Punct, ","),
                (String, r"U&'d\0061'"),
                (Punct, ","),
                (String, "$fn$ x ' $fn$"),
                (Punct, ","),
                (String, r"'c:\'"),
                (Punct, ","),
                (String, "$$q$$"),
                (Comment, "/* a /* b */ c */"),
            ]
        );
        assert_eq!(
            kinds(r#""Users" 1_000"#, Dialect::Postgres),
            vec![(QuotedIdent, r#""Users""#), (Number, "1_000")]
        );
    }

    #[test]
    fn sqlserver_and_oracle_rules() {
        use Kind::*;
        assert_eq!(
            kinds("SELECT [a]]b], N'x', @p1, #t FROM ##g", Dialect::SqlServer),
            vec![
                (Word, "SELECT"),
                (QuotedIdent, "[a]]b]"),
                (Punct, ","),
                (String, "N'x'"),
                (Punct, ","),
                (Param, "@p1"),
                (Punct, ","),
                (Word, "#t"),
                (Word, "FROM"),
                (Word, "##g"),
            ]
        );
        assert_eq!(
            kinds(
                "SELECT q'[it's]', nq'{x}', :id, :1 FROM t$x#",
                Dialect::Oracle
            ),
            vec![
                (Word, "SELECT"),
                (String, "q'[it's]'"),
                (Punct, ","),
                (String, "nq'{x}'"),
                (Punct, ","),
                (Param, ":id"),
                (Punct, ","),
                (Param, ":1"),
                (Word, "FROM"),
                (Word, "t$x#"),
            ]
        );
    }

    #[test]
    fn truncation_is_marked_not_fatal() {
        for (sql, d) in [
            ("SELECT 'abc", Dialect::MySql),
            ("SELECT /* abc", Dialect::Postgres),
            ("SELECT $x$ abc", Dialect::Postgres),
            ("SELECT [abc", Dialect::SqlServer),
            ("SELECT q'[abc", Dialect::Oracle),
        ] {
            let last = Lexer::new(sql, d).last().unwrap();
            assert!(last.unterminated, "{sql}");
            assert!(last.text.ends_with("abc"), "{sql}");
        }
    }
}
