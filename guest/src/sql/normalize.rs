//! A statement's fingerprint, command and tables, in one pass over its tokens.
//!
//! The fingerprint is the statement rewritten from its tokens: comments and hints dropped,
//! spacing made canonical, keywords in upper case and unquoted names in lower case, every
//! literal a placeholder (`?`, or `$n` in PostgreSQL as `pg_stat_statements` shows them), IN
//! lists and `ARRAY[…]` of constants as `(...)` and `[...]`, and the rows of a multi-row
//! VALUES after the first as `/* , ... */` (MySQL's statement digest's forms). Statements that
//! differ only in those things have one fingerprint.

use super::commenter;
use super::keywords::{BEFORE_TABLE, COMMAND, OBJECT, keyword};
use super::lexer::{Dialect, Kind, Lexer, Token};

/// What one statement says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub fingerprint: String,
    /// `SELECT`, `INSERT`, …; `CREATE TABLE` and the like for DDL.
    pub command: std::borrow::Cow<'static, str>,
    /// The tables named, in order of first appearance, as the fingerprint writes them,
    /// comma-separated.
    pub tables: String,
    /// sqlcommenter fields (trace context and the other keys), in order.
    pub comment_fields: Vec<(String, String)>,
}

/// The statement's insight, or `None` when it does not start with a SQL command (it is not a
/// statement, or only the tail of one).
pub fn normalize(sql: &str, dialect: Dialect) -> Option<Normalized> {
    let mut n = Normalizer::new(sql, dialect);
    let mut lexer = Lexer::new(sql, dialect);
    let mut next = n.significant(&mut lexer);
    while let Some(token) = next {
        next = n.significant(&mut lexer);
        n.token(token, next.as_ref());
        if n.command.is_none() && n.rejected {
            return None;
        }
    }
    n.finish()
}

/// How the last written token ends: what decides the space before the next one and whether a
/// `-` is a sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    Start,
    Open,
    Close,
    Comma,
    Dot,
    Cast,
    Keyword,
    Name,
    Value,
    Op,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Values {
    None,
    /// After `VALUES` at this depth: the first row comes.
    Expect(u32),
    InRow(u32),
    RowDone(u32),
    /// Dropping a later row.
    Dropping(u32),
    Dropped(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Idle,
    /// A table name may come. `list`: a comma brings another (`FROM a, b`); `call`: a `(`
    /// after the name is a column list (`INSERT INTO t (…)`), not a function call.
    Expect {
        list: bool,
        call: bool,
    },
    Name {
        list: bool,
        call: bool,
        dot: bool,
    },
    After {
        list: bool,
        call: bool,
        alias: bool,
    },
    /// A function in a FROM list (`generate_series(…)`): its arguments are passed over, and
    /// its alias and the list go on after its `)` at this depth.
    Call {
        list: bool,
        depth: u32,
    },
}

/// An IN list or ARRAY being written, collapsed at its close if it held only constants.
#[derive(Debug, Clone, Copy)]
struct List {
    /// The depth inside it.
    depth: u32,
    /// Where it starts in the output (before its space).
    at: usize,
    param_before: u32,
    square: bool,
}

struct Normalizer {
    dialect: Dialect,
    out: String,
    prev: Prev,
    depth: u32,
    /// Bit `d`: depth `d` is a query (depth 0, or a `(` opening a `SELECT`), where `FROM`
    /// names tables (elsewhere it is `EXTRACT(x FROM y)` and the like).
    query_levels: u64,
    just_opened: bool,
    next_param: u32,
    expect_list: Option<bool>,
    list: Option<List>,
    values: Values,
    command: Option<std::borrow::Cow<'static, str>>,
    /// `WITH …`: the command is the first `SELECT`/`INSERT`/… at depth 0.
    with: bool,
    /// `CREATE`/`ALTER`/`DROP` waiting for its object.
    ddl: Option<(&'static str, u8)>,
    rejected: bool,
    /// The sign before a number was written as the number's placeholder.
    skip_next: bool,
    tables: String,
    table_count: usize,
    /// The current token is part of a table name (written as a name even if it is a
    /// keyword: `FROM user`).
    in_name: bool,
    /// The names a `WITH` defines: not tables.
    ctes: Vec<String>,
    table: Table,
    name: String,
    comment_fields: Vec<(String, String)>,
}

impl Normalizer {
    fn new(sql: &str, dialect: Dialect) -> Normalizer {
        Normalizer {
            dialect,
            out: String::with_capacity(sql.len().min(4096)),
            prev: Prev::Start,
            depth: 0,
            query_levels: 1,
            just_opened: false,
            next_param: if dialect == Dialect::Postgres {
                max_param(sql) + 1
            } else {
                0
            },
            expect_list: None,
            list: None,
            values: Values::None,
            command: None,
            with: false,
            ddl: None,
            rejected: false,
            skip_next: false,
            tables: String::new(),
            table_count: 0,
            ctes: Vec::new(),
            in_name: false,
            table: Table::Idle,
            name: String::new(),
            comment_fields: Vec::new(),
        }
    }

    /// The next token that is not space, comment or hint; a sqlcommenter comment's fields are
    /// kept on the way.
    fn significant<'s>(&mut self, lexer: &mut Lexer<'s>) -> Option<Token<'s>> {
        loop {
            let t = lexer.next()?;
            match t.kind {
                Kind::Space | Kind::Hint => {}
                Kind::Comment => {
                    if t.text.starts_with("/*")
                        && t.text.contains("='")
                        && let Some(fields) = commenter::parse(t.text)
                    {
                        self.comment_fields.extend(fields);
                    }
                }
                _ => return Some(t),
            }
        }
    }

    fn token(&mut self, t: Token<'_>, next: Option<&Token<'_>>) {
        if std::mem::take(&mut self.skip_next) {
            // The number after a sign already written as its placeholder.
            return;
        }
        let (kw, flags) = match t.kind {
            Kind::Word => keyword(t.text).map_or((None, 0), |(k, f)| (Some(k), f)),
            _ => (None, 0),
        };
        if self.command.is_none() && !self.with {
            self.first_word(&t, kw, flags);
            if self.rejected {
                return;
            }
        }
        let punct = if t.kind == Kind::Punct {
            t.text.as_bytes()[0]
        } else {
            0
        };
        // Rows of a multi-row VALUES after the first: counted for depth, not written.
        match self.values {
            Values::RowDone(d) | Values::Dropped(d) if punct == b',' && self.depth == d => {
                self.values = Values::Dropping(d);
                return;
            }
            Values::Dropping(d) => {
                match punct {
                    b'(' | b'[' => self.depth += 1,
                    b')' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == d {
                            self.values = Values::Dropped(d);
                        }
                    }
                    _ => {}
                }
                return;
            }
            Values::Dropped(_) => {
                self.out.push_str(" /* , ... */");
                self.prev = Prev::Close;
                self.values = Values::None;
            }
            Values::RowDone(_) => self.values = Values::None,
            _ => {}
        }
        self.structure(&t, kw, flags);
        self.tables(&t, kw, flags, next);
        let kw = if std::mem::take(&mut self.in_name) {
            None
        } else {
            kw
        };
        self.write(&t, kw, next);
        // Read by the next token: an IN list or ARRAY opens with it.
        self.expect_list = match kw {
            Some("IN") => Some(false),
            Some("ARRAY") => Some(true),
            _ => None,
        };
    }

    /// The command, from the statement's first word; a statement that does not start with
    /// one is rejected.
    fn first_word(&mut self, t: &Token<'_>, kw: Option<&'static str>, flags: u8) {
        match (t.kind, kw) {
            (Kind::Punct, _) if t.text == "(" => {}
            (_, Some("WITH")) => self.with = true,
            (_, Some(c @ ("CREATE" | "ALTER" | "DROP"))) => {
                self.command = Some(c.into());
                self.ddl = Some((c, 0));
            }
            (_, Some(c)) if flags & COMMAND != 0 => self.command = Some(c.into()),
            _ => self.rejected = true,
        }
    }

    /// What a keyword means for the command and the lists to collapse.
    fn structure(&mut self, t: &Token<'_>, kw: Option<&'static str>, flags: u8) {
        if let Some((verb, seen)) = self.ddl {
            if t.kind == Kind::Word && seen > 0 {
                if let Some(object) = kw.filter(|_| flags & OBJECT != 0) {
                    self.command = Some(format!("{verb} {object}").into());
                    self.ddl = None;
                } else if seen >= 4 {
                    self.ddl = None;
                }
            }
            if let Some((_, seen)) = &mut self.ddl {
                *seen += 1;
            }
        }
        if self.with
            && self.depth == 0
            && let Some(k @ ("SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE")) = kw
        {
            self.command = Some(k.into());
            self.with = false;
        }
        if kw == Some("VALUES") {
            self.values = Values::Expect(self.depth);
        }
        if self.just_opened {
            self.just_opened = false;
            if matches!(kw, Some("SELECT" | "WITH")) && self.depth < 64 {
                self.query_levels |= 1 << self.depth;
            }
        }
    }

    /// Tables: names after `FROM` and `JOIN` (at a query level), `INTO`, `UPDATE`, and the
    /// `TABLE` of DDL.
    fn tables(
        &mut self,
        t: &Token<'_>,
        kw: Option<&'static str>,
        flags: u8,
        next: Option<&Token<'_>>,
    ) {
        let is_name = (t.kind == Kind::Word && kw.is_none()) || t.kind == Kind::QuotedIdent;
        if self.with
            && self.depth == 0
            && is_name
            && next.is_some_and(|n| n.text == "(" || n.text.eq_ignore_ascii_case("as"))
        {
            let mut cte = String::new();
            push_ident(&mut cte, t, self.dialect);
            self.ctes.push(cte);
        }
        match self.table {
            Table::Idle => {}
            Table::Expect { list, call } => {
                // A table may have a keyword's name (`event`, `session`); these never do.
                // `SELECT … INTO OUTFILE '…'` names a file.
                let file = t.text.eq_ignore_ascii_case("outfile")
                    || t.text.eq_ignore_ascii_case("dumpfile");
                let table_name = !file
                    && (is_name
                        || (t.kind == Kind::Word
                            && flags & BEFORE_TABLE == 0
                            && !matches!(
                                kw,
                                Some("DUAL" | "SELECT" | "VALUES" | "SET" | "WITH" | "WHERE")
                            )));
                if table_name {
                    self.name.clear();
                    self.name_part(t, list, call, next);
                    return;
                }
                if flags & BEFORE_TABLE == 0 {
                    self.table = Table::Idle;
                }
            }
            Table::Name {
                list,
                call,
                dot: true,
            } if t.kind == Kind::Word || is_name => {
                self.name_part(t, list, call, next);
                return;
            }
            Table::Name {
                list,
                call,
                dot: false,
            } if t.text == "." => {
                self.name.push('.');
                self.table = Table::Name {
                    list,
                    call,
                    dot: true,
                };
                return;
            }
            Table::Name { .. } => self.table = Table::Idle,
            Table::Call { list, depth } => {
                if t.text == ")" && self.depth == depth + 1 {
                    self.table = Table::After {
                        list,
                        call: false,
                        alias: false,
                    };
                }
                return;
            }
            Table::After { list, call, alias } => {
                if !alias && is_name {
                    self.table = Table::After {
                        list,
                        call,
                        alias: true,
                    };
                    return;
                }
                if !alias && kw == Some("AS") {
                    return;
                }
                self.table = if list && t.text == "," {
                    Table::Expect { list, call }
                } else {
                    Table::Idle
                };
                if t.text == "," {
                    return;
                }
            }
        }
        if kw.is_none() {
            return;
        }
        let at_query = self.depth >= 64 || self.query_levels & (1 << self.depth) != 0;
        let from_ok = || {
            !matches!(
                self.command.as_deref(),
                Some("COPY" | "SHOW" | "DESC" | "DESCRIBE" | "GRANT" | "REVOKE" | "LOAD")
            )
        };
        self.table = match kw {
            Some("FROM") if at_query && from_ok() => Table::Expect {
                list: true,
                call: false,
            },
            Some("JOIN" | "STRAIGHT_JOIN") if from_ok() => Table::Expect {
                list: false,
                call: false,
            },
            Some("INTO") => Table::Expect {
                list: false,
                call: true,
            },
            Some("UPDATE")
                if self.depth == 0 && self.prev != Prev::Keyword || self.prev == Prev::Start =>
            {
                Table::Expect {
                    list: true,
                    call: false,
                }
            }
            Some("TABLE")
                if matches!(
                    self.command.as_deref(),
                    Some(
                        "CREATE TABLE"
                            | "ALTER TABLE"
                            | "DROP TABLE"
                            | "TRUNCATE"
                            | "LOCK"
                            | "RENAME"
                    )
                ) =>
            {
                Table::Expect {
                    list: true,
                    call: true,
                }
            }
            _ if self.prev == Prev::Start
                && matches!(self.command.as_deref(), Some("TRUNCATE" | "COPY")) =>
            {
                Table::Expect {
                    list: true,
                    call: true,
                }
            }
            _ => self.table,
        };
    }

    /// A part of a table name (the first, or one after a `.`): written as a name even if it
    /// is a keyword (`FROM user`, `FROM db.user`), and added to the name.
    fn name_part(&mut self, t: &Token<'_>, list: bool, call: bool, next: Option<&Token<'_>>) {
        self.in_name = true;
        push_ident(&mut self.name, t, self.dialect);
        self.table = Table::Name {
            list,
            call,
            dot: false,
        };
        self.end_name_unless_dot(next);
    }

    /// After a name part: the name goes on if a `.` follows; otherwise it is a table unless a
    /// `(` follows where that makes it a function call.
    fn end_name_unless_dot(&mut self, next: Option<&Token<'_>>) {
        let Table::Name { list, call, .. } = self.table else {
            return;
        };
        let next_text = next.map_or("", |n| n.text);
        if next_text == "." {
            return;
        }
        if next_text == "(" && !call {
            self.table = Table::Call {
                list,
                depth: self.depth,
            };
            return;
        }
        if !self.tables.split(',').any(|t| t == self.name)
            && !self.ctes.contains(&self.name)
            && self.table_count < 32
        {
            if !self.tables.is_empty() {
                self.tables.push(',');
            }
            self.tables.push_str(&self.name);
            self.table_count += 1;
        }
        self.table = Table::After {
            list,
            call,
            alias: false,
        };
    }

    /// Writes the token to the fingerprint.
    fn write(&mut self, t: &Token<'_>, kw: Option<&'static str>, next: Option<&Token<'_>>) {
        let literal = match t.kind {
            Kind::String | Kind::Number | Kind::Binary => true,
            Kind::Word => match kw {
                Some("TRUE" | "FALSE") => true,
                Some("NULL") => !(self.out.ends_with(" IS") || self.out.ends_with(" IS NOT")),
                _ => false,
            },
            // A sign before a number is part of the literal.
            Kind::Op => {
                let sign = matches!(t.text, "-" | "+")
                    && matches!(
                        self.prev,
                        Prev::Start
                            | Prev::Open
                            | Prev::Comma
                            | Prev::Keyword
                            | Prev::Op
                            | Prev::Cast
                    )
                    && next.is_some_and(|n| n.kind == Kind::Number);
                self.skip_next = sign;
                sign
            }
            _ => false,
        };
        let punct = if t.kind == Kind::Punct {
            t.text.as_bytes()[0]
        } else {
            0
        };
        if let Some(list) = self.list {
            let closing = matches!(punct, b')' | b']') && self.depth == list.depth;
            let element = literal || t.kind == Kind::Param || punct == b',';
            if self.depth != list.depth || !(closing || element) {
                self.list = None;
            }
        }
        if literal {
            self.space(t.text);
            self.placeholder();
            self.prev = Prev::Value;
            return;
        }
        match t.kind {
            Kind::Punct => self.punct(punct),
            Kind::Op if t.text == "::" => {
                self.out.push_str("::");
                self.prev = Prev::Cast;
            }
            Kind::Op | Kind::Other => {
                self.space(t.text);
                self.out.push_str(t.text);
                self.prev = Prev::Op;
            }
            Kind::Param => {
                self.space(t.text);
                self.out.push_str(t.text);
                self.prev = Prev::Value;
            }
            Kind::Word if kw.is_some() => {
                self.space(t.text);
                self.out.push_str(kw.unwrap_or_default());
                self.prev = Prev::Keyword;
            }
            _ => {
                self.space(t.text);
                push_ident(&mut self.out, t, self.dialect);
                self.prev = Prev::Name;
            }
        }
    }

    fn punct(&mut self, p: u8) {
        match p {
            b'(' | b'[' => {
                self.space(if p == b'(' { "(" } else { "[" });
                let at = self.out.len();
                self.out.push(p as char);
                if let Values::Expect(d) = self.values
                    && d == self.depth
                {
                    self.values = Values::InRow(d);
                }
                self.depth += 1;
                self.just_opened = true;
                if self.expect_list == Some(p == b'[') {
                    self.list = Some(List {
                        depth: self.depth,
                        at,
                        param_before: self.next_param,
                        square: p == b'[',
                    });
                }
                self.prev = Prev::Open;
            }
            b')' | b']' => {
                match self.list.take() {
                    Some(list) if list.depth == self.depth => self.collapse(list, true),
                    _ => self.out.push(p as char),
                }
                if self.depth < 64 {
                    self.query_levels &= !(1 << self.depth);
                }
                self.depth = self.depth.saturating_sub(1);
                if let Values::InRow(d) = self.values
                    && d == self.depth
                {
                    self.values = Values::RowDone(d);
                }
                self.prev = Prev::Close;
            }
            b',' => {
                self.out.push(',');
                self.prev = Prev::Comma;
            }
            b'.' => {
                self.out.push('.');
                self.prev = Prev::Dot;
            }
            _ => {
                self.out.push(p as char);
                self.prev = Prev::Start;
            }
        }
    }

    /// A space before the next token, unless the canonical spacing has none there.
    fn space(&mut self, next: &str) {
        let none = self.out.is_empty()
            || matches!(self.prev, Prev::Open | Prev::Dot | Prev::Cast)
            || matches!(next, ")" | "]" | "," | ";" | "." | "::")
            || (next == "(" && self.prev == Prev::Name)
            || (next == "[" && matches!(self.prev, Prev::Name | Prev::Close | Prev::Value));
        if !none {
            self.out.push(' ');
        }
    }

    fn placeholder(&mut self) {
        if self.dialect == Dialect::Postgres {
            self.out.push('$');
            self.out.push_str(crate::logs::decimal(
                u64::from(self.next_param),
                &mut [0; 20],
            ));
            self.next_param += 1;
        } else {
            self.out.push('?');
        }
    }

    /// Rewrites an IN list or ARRAY of constants from its open as `(...)` or `[...]` (an
    /// unclosed one, from a truncated statement, without its close).
    fn collapse(&mut self, list: List, closed: bool) {
        self.out.truncate(list.at);
        self.out.push_str(match (list.square, closed) {
            (false, true) => "(...)",
            (true, true) => "[...]",
            (false, false) => "(...",
            (true, false) => "[...",
        });
        self.next_param = list.param_before;
    }

    fn finish(mut self) -> Option<Normalized> {
        if matches!(self.values, Values::Dropped(_) | Values::Dropping(_)) {
            self.out.push_str(" /* , ... */");
        }
        if let Some(list) = self.list.take() {
            self.collapse(list, false);
        }
        if let Table::Name { .. } = self.table {
            self.end_name_unless_dot(None);
        }
        while self.out.ends_with(';') || self.out.ends_with(' ') {
            self.out.pop();
        }
        let command = match self.command {
            Some(c) => c,
            None if self.with => "WITH".into(),
            None => return None,
        };
        Some(Normalized {
            fingerprint: self.out,
            command,
            tables: self.tables,
            comment_fields: self.comment_fields,
        })
    }
}

/// The highest `$n` parameter in a PostgreSQL statement: constants are numbered after it, as
/// `pg_stat_statements` does. Only a statement with a `$` before a digit is tokenized for it
/// (a `$5` inside a string or dollar quote is not a parameter).
fn max_param(sql: &str) -> u32 {
    let b = sql.as_bytes();
    if !memchr::memchr_iter(b'$', b).any(|i| b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
        return 0;
    }
    Lexer::new(sql, Dialect::Postgres)
        .filter(|t| t.kind == Kind::Param && t.text.starts_with('$'))
        .filter_map(|t| t.text[1..].parse::<u32>().ok())
        .filter(|n| *n < 1_000_000)
        .max()
        .unwrap_or(0)
}

/// An identifier as the fingerprint writes it. Unquoted: lower case. Quoted: without its
/// quotes where they change nothing: always in MySQL and SQL Server (names are compared
/// without regard to quoting there), in PostgreSQL when the name is already lower case and in
/// Oracle when it is upper case (the case unquoted names fold to).
fn push_ident(out: &mut String, t: &Token<'_>, dialect: Dialect) {
    if t.kind != Kind::QuotedIdent {
        push_lower(out, t.text);
        return;
    }
    let inner = &t.text[1..];
    let inner = if t.unterminated {
        inner
    } else {
        &inner[..inner.len().saturating_sub(1)]
    };
    let simple = !inner.is_empty()
        && !inner.as_bytes()[0].is_ascii_digit()
        && inner
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$');
    let plain = simple
        && match dialect {
            Dialect::MySql | Dialect::SqlServer => true,
            Dialect::Postgres => !inner.bytes().any(|c| c.is_ascii_uppercase()),
            Dialect::Oracle => !inner.bytes().any(|c| c.is_ascii_lowercase()),
        };
    if plain {
        push_lower(out, inner);
    } else {
        out.push_str(t.text);
    }
}

fn push_lower(out: &mut String, s: &str) {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        out.extend(s.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(s);
    }
}
