//! SQL insight against the published behaviour DBAs know: MySQL's statement digest
//! (performance_schema), pt-query-digest's fingerprint, pg_stat_statements and Datadog's
//! go-sqllexer. Pairs that must share a digest and pairs that must not, per dialect; the
//! digests pinned (they must not change between releases); truncated and hostile statements;
//! and property tests over generated statements.

use proptest::prelude::*;
use rds_mapper::sql::redact::literals;
use rds_mapper::sql::{Dialect, insight};

fn fp(sql: &str, d: Dialect) -> String {
    insight(sql, d)
        .unwrap_or_else(|| panic!("no insight for {sql:?}"))
        .fingerprint
}

fn digest(sql: &str, d: Dialect) -> String {
    insight(sql, d)
        .unwrap_or_else(|| panic!("no insight for {sql:?}"))
        .digest
        .to_string()
}

fn same(d: Dialect, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert_eq!(
            (digest(a, d), fp(a, d)),
            (digest(b, d), fp(b, d)),
            "{d:?}: {a:?} and {b:?} must share a digest"
        );
    }
}

fn different(d: Dialect, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert_ne!(
            digest(a, d),
            digest(b, d),
            "{d:?}: {a:?} and {b:?} must not share a digest ({})",
            fp(a, d)
        );
    }
}

#[test]
fn mysql_statement_digest_and_pt_query_digest() {
    use Dialect::MySql;
    // The MySQL manual's digest example ("Performance Schema Statement Digests").
    assert_eq!(
        fp(
            "SELECT * FROM orders WHERE customer_id=10 AND quantity>20",
            MySql
        ),
        "SELECT * FROM orders WHERE customer_id = ? AND quantity > ?"
    );
    // pt-query-digest's POD: literals, whitespace, case and comments do not count.
    assert_eq!(
        fp("SELECT name, password FROM user WHERE id='12823';", MySql),
        "SELECT name, password FROM user WHERE id = ?"
    );
    same(
        MySql,
        &[
            (
                "SELECT * FROM orders WHERE customer_id=10 AND quantity>20",
                "SELECT * FROM orders WHERE customer_id = 20 AND quantity > 100",
            ),
            (
                "SELECT name, password FROM user WHERE id='12823';",
                "select name,   password from user\n   where id=5",
            ),
            (
                "SELECT a FROM t WHERE b IN (1)",
                "SELECT a FROM t WHERE b IN (1, 2, 3, 'x')",
            ),
            (
                "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
                "insert into t (a,b) values (3,'z'),(4,'w'),(5,'v')",
            ),
            ("SELECT * FROM t LIMIT 10", "SELECT * FROM t LIMIT 500"),
            (
                "SELECT * FROM `t` WHERE `a` = 1",
                "SELECT * FROM t WHERE a = 2",
            ),
            ("SELECT /* app:1 */ 1 # note", "SELECT 2 -- other note"),
            (
                "SELECT 0x1F, X'AB', b'01', TRUE, NULL",
                "SELECT 12, 'q', 0b1, FALSE, 3",
            ),
            (r"SELECT 'it\'s', 'a''b', _utf8mb4'x'", "SELECT 1, 2, 3"),
            ("SELECT -1, a - 1", "SELECT +7, a - 9"),
            ("/*!40101 SET NAMES utf8 */", "SET NAMES utf8"),
            (
                "SELECT 1 /*traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01'*/",
                "SELECT 2",
            ),
        ],
    );
    different(
        MySql,
        &[
            (
                "SELECT * FROM orders WHERE id = 1",
                "SELECT * FROM customers WHERE id = 1",
            ),
            (
                "SELECT a FROM t WHERE id = 1",
                "SELECT b FROM t WHERE id = 1",
            ),
            (
                "SELECT a FROM t WHERE id = 1",
                "SELECT a FROM t WHERE id > 1",
            ),
            (
                "SELECT a FROM t WHERE x = 1 AND y = 2",
                "SELECT a FROM t WHERE x = 1 OR y = 2",
            ),
            (
                "SELECT a FROM t WHERE x IS NULL",
                "SELECT a FROM t WHERE x IS NOT NULL",
            ),
            // As MySQL's digest does: one row and many rows are different statements.
            ("INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1), (2)"),
            (
                "SELECT a FROM t WHERE b IN (1, 2)",
                "SELECT a FROM t WHERE b IN (SELECT c FROM u)",
            ),
            ("SELECT a - 1 FROM t", "SELECT a + 1 FROM t"),
        ],
    );
}

#[test]
fn postgres_as_pg_stat_statements() {
    use Dialect::Postgres;
    // pg_stat_statements writes constants as $n, numbered after the statement's own
    // parameters.
    assert_eq!(
        fp("SELECT * FROM t WHERE a = 1 AND b = 'x'", Postgres),
        "SELECT * FROM t WHERE a = $1 AND b = $2"
    );
    assert_eq!(
        fp(
            "SELECT * FROM t WHERE a = $1 AND b = 'x' AND c = 2.5",
            Postgres
        ),
        "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3"
    );
    assert_eq!(
        fp("UPDATE t SET a = 'x' WHERE id = $2", Postgres),
        "UPDATE t SET a = $3 WHERE id = $2"
    );
    same(
        Postgres,
        &[
            (
                "SELECT * FROM t WHERE a = 1",
                "select *  from T where A = 42",
            ),
            (
                "SELECT 'a'::text, E'b\\'c', U&'d\\0061', $$e$$, $fn$ f ' $fn$, B'101'",
                "SELECT 'z'::text, 1, 2, 3, 4, 5",
            ),
            (
                "SELECT * FROM t WHERE a IN (1, 2, 3)",
                "SELECT * FROM t WHERE a IN ($1)",
            ),
            (
                "SELECT * FROM t WHERE a = ANY(ARRAY[1, 2])",
                "SELECT * FROM t WHERE a = ANY(ARRAY[7])",
            ),
            (
                "SELECT * FROM \"t\" /* a /* nested */ comment */",
                "SELECT * FROM t",
            ),
            (
                "SELECT x FROM t WHERE a = -1.5e3",
                "SELECT x FROM t WHERE a = 7",
            ),
            ("SELECT 1_000_000", "SELECT 3"),
        ],
    );
    different(
        Postgres,
        &[
            // A quoted name keeps its case; an unquoted one folds to lower case.
            ("SELECT * FROM \"Users\"", "SELECT * FROM users"),
            ("SELECT a::int FROM t", "SELECT a::text FROM t"),
            (
                "SELECT * FROM t WHERE a = $1",
                "SELECT * FROM t WHERE a = $2",
            ),
            (
                "SELECT a FROM t WHERE a ~ 'x'",
                "SELECT a FROM t WHERE a ~* 'x'",
            ),
        ],
    );
}

#[test]
fn sqlserver_and_oracle() {
    use Dialect::{Oracle, SqlServer};
    assert_eq!(
        fp(
            "SELECT TOP 10 [Name], N'x' FROM [dbo].[Orders] WHERE id = @p1",
            SqlServer
        ),
        "SELECT TOP ? name, ? FROM dbo.orders WHERE id = @p1"
    );
    same(
        SqlServer,
        &[
            (
                "SELECT * FROM [Orders] WHERE a = N'ü'",
                "select * from orders where a = 'x'",
            ),
            (
                "SELECT * FROM #tmp WHERE x = 0x1F",
                "SELECT * FROM #TMP WHERE x = 3",
            ),
        ],
    );
    different(
        SqlServer,
        &[
            ("SELECT * FROM #tmp", "SELECT * FROM ##tmp"),
            (
                "SELECT * FROM t WHERE a = @p1",
                "SELECT * FROM t WHERE a = @p2",
            ),
        ],
    );
    assert_eq!(
        fp(
            "SELECT q'[it's]' FROM dual WHERE id = :id AND \"NAME\" = 'x'",
            Oracle
        ),
        "SELECT ? FROM DUAL WHERE id = :id AND name = ?"
    );
    same(
        Oracle,
        &[
            (
                "select * from emp where empno in (7369, 7499) and sal > 1000",
                "SELECT * FROM EMP WHERE EMPNO IN (1) AND SAL > 2",
            ),
            (
                "SELECT q'{a}', nq'<b>' FROM dual",
                "SELECT 'x', N'y' FROM dual",
            ),
        ],
    );
    different(Oracle, &[("SELECT * FROM \"Emp\"", "SELECT * FROM emp")]);
}

#[test]
fn command_tables_and_trace_context() {
    use Dialect::{MySql, Postgres};
    let cases: [(&str, Dialect, &str, &[&str]); 11] = [
        (
            "SELECT a FROM db.t1 x, t2 AS y JOIN t3 ON 1 = 1",
            MySql,
            "SELECT",
            &["db.t1", "t2", "t3"],
        ),
        (
            "select extract(year from d) from t",
            Postgres,
            "SELECT",
            &["t"],
        ),
        (
            "INSERT INTO t (a) SELECT b FROM u",
            MySql,
            "INSERT",
            &["t", "u"],
        ),
        ("UPDATE LOW_PRIORITY t SET a = 1", MySql, "UPDATE", &["t"]),
        (
            "DELETE FROM t WHERE a IN (SELECT b FROM u)",
            MySql,
            "DELETE",
            &["t", "u"],
        ),
        (
            "WITH c AS (SELECT 1 FROM s) DELETE FROM t USING c",
            Postgres,
            "DELETE",
            &["s", "t"],
        ),
        (
            "WITH a (x) AS (SELECT 1), b AS (SELECT x FROM a) SELECT * FROM b, u",
            Postgres,
            "SELECT",
            &["u"],
        ),
        (
            "CREATE TABLE IF NOT EXISTS `Shop`.`Items` (id int)",
            MySql,
            "CREATE TABLE",
            &["shop.items"],
        ),
        (
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            Postgres,
            "CREATE VIEW",
            &[],
        ),
        (
            "SELECT * FROM generate_series(1, 3) g, ONLY public.o",
            Postgres,
            "SELECT",
            &["public.o"],
        ),
        (
            "(SELECT a FROM t) UNION (SELECT a FROM u)",
            MySql,
            "SELECT",
            &["t", "u"],
        ),
    ];
    // A keyword's name as a table, alone or after its schema, is written as a name.
    for (sql, table) in [
        ("SELECT 1 FROM user", "user"),
        ("SELECT 1 FROM mysql.user", "mysql.user"),
    ] {
        let i = insight(sql, MySql).unwrap();
        assert_eq!(
            (i.fingerprint.as_str(), i.tables.as_str()),
            (&*format!("SELECT ? FROM {table}"), table)
        );
    }
    let outfile = insight("SELECT a INTO OUTFILE '/tmp/x' FROM t", MySql).unwrap();
    assert_eq!(outfile.tables, "t");
    let user = insight("CREATE USER 'bob'@'%' IDENTIFIED BY 'x'", MySql).unwrap();
    assert_eq!(
        (user.command.as_ref(), user.fingerprint.as_str()),
        ("CREATE USER", "CREATE USER ? ? identified BY ?")
    );
    for (sql, d, command, tables) in cases {
        let i = insight(sql, d).unwrap();
        let found: Vec<&str> = i.tables.split(',').filter(|t| !t.is_empty()).collect();
        assert_eq!(
            (i.command.as_ref(), found.as_slice()),
            (command, tables),
            "{sql}"
        );
    }
    let i = insight(
        "SELECT * FROM t /*controller='orders',traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/",
        MySql,
    )
    .unwrap();
    let fields: Vec<(&str, &str)> = i
        .comment_fields
        .iter()
        .map(|(k, _, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("controller", "orders"),
            ("trace_id", "0af7651916cd43dd8448eb211c80319c"),
            ("span_id", "b7ad6b7169203331"),
            ("trace_flags", "01"),
        ]
    );
}

/// The digest is a public value users store and match rules on: it must not change. The
/// values were also computed outside this code (python-xxhash, `xxh3_64_hexdigest`).
#[test]
fn digests_are_pinned() {
    let pinned = [
        (
            "SELECT * FROM orders WHERE customer_id=10",
            Dialect::MySql,
            "SELECT * FROM orders WHERE customer_id = ?",
            "f0010a522c07de71",
        ),
        ("SELECT 1", Dialect::MySql, "SELECT ?", "a3a8f2b7cf2a1b0e"),
        (
            "SELECT 1",
            Dialect::Postgres,
            "SELECT $1",
            "8426bb8b680edd67",
        ),
    ];
    for (sql, d, fingerprint, digest) in pinned {
        let i = insight(sql, d).unwrap();
        assert_eq!(
            (i.fingerprint.as_str(), i.digest.as_str()),
            (fingerprint, digest),
            "{sql}"
        );
    }
}

#[test]
fn truncated_hostile_and_not_sql() {
    use Dialect::*;
    // RDS cuts long statements: what is there is fingerprinted.
    assert_eq!(
        fp("SELECT a FROM t WHERE b IN (1, 2, 3, 4", MySql),
        "SELECT a FROM t WHERE b IN (..."
    );
    assert_eq!(
        fp("SELECT a FROM t WHERE b = 'abc", MySql),
        "SELECT a FROM t WHERE b = ?"
    );
    assert_eq!(fp("SELECT /* unclosed", Postgres), "SELECT");
    // Not a statement: no insight, and no error.
    for text in [
        "Quit",
        "",
        "   ",
        "ORDER BY x DESC;",
        "\u{0}\u{1}\u{fffd}",
        "'only a string'",
        "-- just a comment",
    ] {
        for d in [MySql, Postgres, SqlServer, Oracle] {
            assert_eq!(insight(text, d), None, "{text:?}");
        }
    }
    // Deep nesting, many tokens and odd bytes end, with a fingerprint.
    let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(fp(&deep, MySql).starts_with("SELECT (((("));
    let long = format!(
        "SELECT * FROM t WHERE a IN ({})",
        vec!["1"; 100_000].join(",")
    );
    assert_eq!(fp(&long, MySql), "SELECT * FROM t WHERE a IN (...");
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::MySql),
        Just(Dialect::Postgres),
        Just(Dialect::SqlServer),
        Just(Dialect::Oracle)
    ]
}

/// A literal as the dialect writes it, with random content.
fn literal(d: Dialect) -> impl Strategy<Value = String> {
    let text = "[a-zA-Z0-9 _@.,;:()*/%#-]{0,12}";
    let quote = |s: String| format!("'{}'", s.replace('\'', "''"));
    prop_oneof![
        any::<u32>().prop_map(|n| n.to_string()),
        any::<i16>().prop_map(|n| n.to_string()),
        (0u32..1000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        (1u32..99, 1u32..30).prop_map(|(a, e)| format!("{a}e{e}")),
        text.prop_map(quote),
        (text, any::<bool>()).prop_map(move |(s, n)| if n {
            format!("N{}", quote(s))
        } else {
            quote(s)
        }),
        any::<u16>().prop_map(|n| format!("X'{n:04X}'")),
        any::<bool>().prop_map(|b| if b {
            "TRUE".to_owned()
        } else {
            "FALSE".to_owned()
        }),
        text.prop_map(move |s| match d {
            Dialect::Postgres => format!("$q${s}$q$"),
            Dialect::Oracle => format!("q'[{s}]'"),
            Dialect::MySql => format!("'{}'", s.replace('\'', "\\'")),
            Dialect::SqlServer => format!("N'{s}'"),
        }),
    ]
}

/// A statement shape with holes for literals, and the number of holes.
fn shape() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "SELECT a, b FROM t WHERE a = {} AND b > {} ORDER BY a LIMIT {}",
        "SELECT * FROM s.t x JOIN u ON u.id = x.id WHERE u.v IN ({}, {}, {}) OR x.w = {}",
        "INSERT INTO t (a, b) VALUES ({}, {}), ({}, {})",
        "UPDATE t SET a = {}, b = 0 - {} WHERE c BETWEEN {} AND {}",
        "DELETE FROM t WHERE a = {} -- {}\n AND b <> {}",
        "SELECT count(*) FROM t WHERE a LIKE {} /* note */ AND b = {}",
        "WITH c AS (SELECT {} AS x) SELECT x FROM c WHERE x = {}",
    ])
}

fn fill(shape: &str, literals: &[String]) -> String {
    let mut out = String::new();
    for (i, piece) in shape.split("{}").enumerate() {
        if i > 0 {
            out.push_str(&literals[(i - 1) % literals.len()]);
        }
        out.push_str(piece);
    }
    out
}

fn dialect_and_literals() -> impl Strategy<Value = (Dialect, Vec<String>, Vec<String>)> {
    dialect().prop_flat_map(|d| {
        (
            Just(d),
            prop::collection::vec(literal(d), 4),
            prop::collection::vec(literal(d), 4),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text, in any dialect: an insight or none, never a panic; and a fingerprint has no
    /// space at either end and never two in a row.
    #[test]
    fn never_panics(text in any::<String>(), d in dialect()) {
        if let Some(i) = insight(&text, d) {
            prop_assert_eq!(i.digest.as_str().len(), 16);
            prop_assert!(!i.fingerprint.starts_with(' ') && !i.fingerprint.ends_with(' '));
        }
        if let Ok(redacted) = literals(&text, d) {
            prop_assert_eq!(literals(&redacted, d), Ok(redacted.clone()));
        }
    }

    /// SQL-ish text built from SQL's own characters, which reaches more of the tokenizer.
    #[test]
    fn never_panics_on_sqlish(text in "[A-Za-z0-9 '\"`$#@:?()\\[\\],.;=<>*/+%!|&~^{}\\\\\n-]{0,80}", d in dialect()) {
        let _ = insight(&format!("SELECT {text}"), d);
        if let Ok(redacted) = literals(&text, d) {
            prop_assert_eq!(literals(&redacted, d), Ok(redacted.clone()));
        }
    }

    /// Changing only the literals never changes the digest.
    #[test]
    fn literals_never_change_the_digest(s in shape(), (d, a, b) in dialect_and_literals()) {
        let (x, y) = (fill(s, &a), fill(s, &b));
        prop_assert_eq!(digest(&x, d), digest(&y, d), "{} / {}", x, y);
    }

    /// `sql-literals` leaves no literal of the input: not one generated literal's text
    /// survives, and redacting again changes nothing.
    #[test]
    fn no_literal_survives_redaction(s in shape(), (d, a, _b) in dialect_and_literals()) {
        let sql = fill(s, &a);
        let redacted = literals(&sql, d).unwrap();
        for lit in &a {
            let inner = lit.trim_start_matches(['N', 'X', 'q', '$', '[']).trim_start_matches(['\'', 'q', '$']);
            let inner = inner.trim_end_matches(['\'', '$', ']']);
            if inner.len() >= 3 && !s.contains(inner) && !inner.chars().all(|c| c == ' ') {
                prop_assert!(!redacted.contains(inner), "{:?} survives in {:?}", inner, redacted);
            }
        }
        prop_assert_eq!(literals(&redacted, d).unwrap(), redacted);
    }
}
