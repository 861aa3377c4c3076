//! The keywords a fingerprint writes in upper case and reads structure from. Only words that
//! shape a statement are here; every other unquoted name is an identifier (written in lower
//! case, as PostgreSQL, Oracle and SQL Server compare them, and MySQL compares columns).
//!
//! Looking a word up is the fingerprint's most frequent step (every word of every
//! statement), so it is one hash and, for a keyword, one comparison: an open-addressing
//! table built at compile time.

/// A statement may start with it.
pub const COMMAND: u8 = 1;
/// What DDL acts on: `CREATE` + the first of these is the command.
pub const OBJECT: u8 = 2;
/// May stand between `FROM`/`INTO`/`TABLE` and a table name (`IF NOT EXISTS`, `ONLY`).
pub const BEFORE_TABLE: u8 = 4;

/// Every keyword, with what else it is.
const KEYWORDS: [(&str, u8); 179] = [
    ("ADD", 0),
    ("ALL", 0),
    ("ALTER", COMMAND),
    ("ANALYZE", COMMAND),
    ("AND", 0),
    ("ANY", 0),
    ("ARRAY", 0),
    ("AS", 0),
    ("ASC", 0),
    ("BACKUP", COMMAND),
    ("BEGIN", COMMAND),
    ("BETWEEN", 0),
    ("BY", 0),
    ("CALL", COMMAND),
    ("CASCADE", 0),
    ("CASE", 0),
    ("CAST", 0),
    ("CHECK", COMMAND),
    ("CHECKPOINT", COMMAND),
    ("CHECKSUM", COMMAND),
    ("CLOSE", COMMAND),
    ("CLUSTER", COMMAND),
    ("COLLATE", 0),
    ("COLUMN", 0),
    ("COMMENT", COMMAND),
    ("COMMIT", COMMAND),
    ("CONFLICT", 0),
    ("CONSTRAINT", 0),
    ("COPY", COMMAND),
    ("CREATE", COMMAND),
    ("CROSS", 0),
    ("CURRENT_DATE", 0),
    ("CURRENT_TIME", 0),
    ("CURRENT_TIMESTAMP", 0),
    ("CURRENT_USER", 0),
    ("DATABASE", OBJECT),
    ("DBCC", COMMAND),
    ("DEALLOCATE", COMMAND),
    ("DECLARE", COMMAND),
    ("DEFAULT", 0),
    ("DELAYED", BEFORE_TABLE),
    ("DELETE", COMMAND),
    ("DESC", COMMAND),
    ("DESCRIBE", COMMAND),
    ("DISCARD", COMMAND),
    ("DISTINCT", 0),
    ("DO", COMMAND),
    ("DOMAIN", OBJECT),
    ("DROP", COMMAND),
    ("DUAL", 0),
    ("DUPLICATE", 0),
    ("ELSE", 0),
    ("END", 0),
    ("ESCAPE", 0),
    ("EVENT", OBJECT),
    ("EXCEPT", 0),
    ("EXEC", COMMAND),
    ("EXECUTE", COMMAND),
    ("EXISTS", BEFORE_TABLE),
    ("EXPLAIN", COMMAND),
    ("EXTENSION", OBJECT),
    ("FALSE", 0),
    ("FETCH", COMMAND),
    ("FIRST", 0),
    ("FLUSH", COMMAND),
    ("FOR", 0),
    ("FORCE", 0),
    ("FOREIGN", 0),
    ("FROM", 0),
    ("FULL", 0),
    ("FUNCTION", OBJECT),
    ("GRANT", COMMAND),
    ("GROUP", 0),
    ("HANDLER", COMMAND),
    ("HAVING", 0),
    ("HIGH_PRIORITY", BEFORE_TABLE),
    ("IF", BEFORE_TABLE),
    ("IGNORE", BEFORE_TABLE),
    ("ILIKE", 0),
    ("IN", 0),
    ("INDEX", OBJECT),
    ("INNER", 0),
    ("INSERT", COMMAND),
    ("INTERSECT", 0),
    ("INTERVAL", 0),
    ("INTO", 0),
    ("IS", 0),
    ("JOIN", 0),
    ("KEY", 0),
    ("KILL", COMMAND),
    ("LATERAL", BEFORE_TABLE),
    ("LEFT", 0),
    ("LIKE", 0),
    ("LIMIT", 0),
    ("LISTEN", COMMAND),
    ("LOAD", COMMAND),
    ("LOCK", COMMAND),
    ("LOGIN", OBJECT),
    ("LOW_PRIORITY", BEFORE_TABLE),
    ("MATERIALIZED", 0),
    ("MERGE", COMMAND),
    ("MINUS", 0),
    ("NATURAL", 0),
    ("NEXT", 0),
    ("NOT", BEFORE_TABLE),
    ("NOTHING", 0),
    ("NOTIFY", COMMAND),
    ("NOWAIT", 0),
    ("NULL", 0),
    ("NULLS", 0),
    ("OF", 0),
    ("OFFSET", 0),
    ("ON", 0),
    ("ONLY", BEFORE_TABLE),
    ("OPTIMIZE", COMMAND),
    ("OR", 0),
    ("ORDER", 0),
    ("OUTER", 0),
    ("OVER", 0),
    ("PACKAGE", OBJECT),
    ("PARTITION", 0),
    ("POLICY", OBJECT),
    ("PREPARE", COMMAND),
    ("PRIMARY", 0),
    ("PROCEDURE", OBJECT),
    ("PUBLICATION", OBJECT),
    ("QUICK", BEFORE_TABLE),
    ("RECURSIVE", 0),
    ("REFERENCES", 0),
    ("REFRESH", COMMAND),
    ("REINDEX", COMMAND),
    ("RELEASE", COMMAND),
    ("RENAME", COMMAND),
    ("REPLACE", COMMAND),
    ("RESET", COMMAND),
    ("RETURNING", 0),
    ("REVOKE", COMMAND),
    ("RIGHT", 0),
    ("ROLE", OBJECT),
    ("ROLLBACK", COMMAND),
    ("ROW", 0),
    ("ROWS", 0),
    ("SAVEPOINT", COMMAND),
    ("SCHEMA", OBJECT),
    ("SELECT", COMMAND),
    ("SEQUENCE", OBJECT),
    ("SERVER", OBJECT),
    ("SESSION", 0),
    ("SET", COMMAND),
    ("SHOW", COMMAND),
    ("SKIP", 0),
    ("START", COMMAND),
    ("STRAIGHT_JOIN", 0),
    ("SUBSCRIPTION", OBJECT),
    ("SYNONYM", OBJECT),
    ("TABLE", OBJECT | BEFORE_TABLE),
    ("TABLESPACE", OBJECT),
    ("TEMPORARY", 0),
    ("THEN", 0),
    ("TO", 0),
    ("TOP", 0),
    ("TRIGGER", OBJECT),
    ("TRUE", 0),
    ("TRUNCATE", COMMAND),
    ("UNION", 0),
    ("UNIQUE", 0),
    ("UNLOCK", COMMAND),
    ("UPDATE", COMMAND),
    ("USE", COMMAND),
    ("USER", OBJECT),
    ("USING", 0),
    ("VACUUM", 0),
    ("VALUES", 0),
    ("VIEW", OBJECT),
    ("WHEN", 0),
    ("WHERE", 0),
    ("WINDOW", 0),
    ("WITH", 0),
    ("WITHIN", 0),
];

/// The longest keyword.
const MAX_LEN: usize = 17;
const SLOTS: usize = 1024;

/// FNV-1a over the bytes, upper-cased.
const fn hash(word: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < word.len() {
        h ^= word[i].to_ascii_uppercase() as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    (h ^ (h >> 15)) as usize % SLOTS
}

/// Slot → keyword index + 1 (0: empty), linear probing.
const TABLE: [u16; SLOTS] = {
    let mut table = [0u16; SLOTS];
    let mut k = 0;
    while k < KEYWORDS.len() {
        let mut slot = hash(KEYWORDS[k].0.as_bytes());
        while table[slot] != 0 {
            slot = (slot + 1) % SLOTS;
        }
        table[slot] = k as u16 + 1;
        k += 1;
    }
    table
};

/// The keyword `word` is, in its canonical (upper-case) spelling, and its flags.
pub fn keyword(word: &str) -> Option<(&'static str, u8)> {
    let w = word.as_bytes();
    if w.len() > MAX_LEN || w.is_empty() {
        return None;
    }
    let mut slot = hash(w);
    loop {
        let k = TABLE[slot];
        if k == 0 {
            return None;
        }
        let (name, flags) = KEYWORDS[k as usize - 1];
        if name.len() == w.len() && name.as_bytes().eq_ignore_ascii_case(w) {
            return Some((name, flags));
        }
        slot = (slot + 1) % SLOTS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_found_in_any_case_and_nothing_else() {
        assert!(
            KEYWORDS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
        for (k, flags) in KEYWORDS {
            assert!(k.len() <= MAX_LEN);
            assert_eq!(keyword(k), Some((k, flags)));
            assert_eq!(keyword(&k.to_ascii_lowercase()), Some((k, flags)));
        }
        assert_eq!(keyword("CuRrEnT_TiMeStAmP"), Some(("CURRENT_TIMESTAMP", 0)));
        assert_eq!(keyword("select"), Some(("SELECT", COMMAND)));
        assert_eq!(keyword("view"), Some(("VIEW", OBJECT)));
        assert_eq!(keyword("only"), Some(("ONLY", BEFORE_TABLE)));
        for word in [
            "users",
            "sélect",
            "",
            "selec",
            "selectt",
            "current_timestamps",
        ] {
            assert_eq!(keyword(word), None, "{word}");
        }
    }
}
