//! Checks `docs/scaling.md` (the Citus plan: which tables are distributed by `tenant_id`, which
//! are reference tables, which keys already include `tenant_id` and which would change) against
//! the PostgreSQL migrations, so the plan cannot drift from the schema: a migration that adds a
//! table, a key or a foreign key fails this test until the plan says where it goes.
//!
//! The plan is the fenced block marked `citus` in the document (its grammar is described there).
//! The schema comes from a deliberately small parser of the migrations, good for the SQL this
//! project writes and loud about what it does not understand:
//!
//! - `--` comments and `$$ … $$` bodies (functions, `DO` blocks) are dropped, then the text is
//!   split into statements at `;`.
//! - `CREATE TABLE t (…)`: columns (with column-level `PRIMARY KEY`, `UNIQUE`,
//!   `REFERENCES t2 [(c)]`) and table constraints (`[CONSTRAINT n] PRIMARY KEY (…)`,
//!   `UNIQUE (…)`, `FOREIGN KEY (…) REFERENCES t2 (…)`; `CHECK` is ignored).
//! - `ALTER TABLE t` with comma-separated `ADD COLUMN`, `ADD [CONSTRAINT n] …`,
//!   `DROP CONSTRAINT n`, `DROP COLUMN c`; other actions (RLS, `ALTER COLUMN`) are ignored.
//! - `CREATE UNIQUE INDEX n ON t (…) [WHERE …]` and `DROP INDEX n`; `DROP TABLE t`.
//! - Unnamed constraints get PostgreSQL's names (`t_pkey`, `t_a_b_key`, `t_a_b_fkey`,
//!   `t_a_check`), so a later `DROP CONSTRAINT` finds them; dropping a name that is not known
//!   (other than a `_check`) fails the test rather than being skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum KeyKind {
    Primary,
    Unique,
    Foreign { table: String, columns: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    name: String,
    kind: KeyKind,
    columns: Vec<String>,
}

#[derive(Debug, Default)]
struct Table {
    columns: BTreeSet<String>,
    keys: Vec<Key>,
}

impl Table {
    fn primary(&self) -> Option<&Key> {
        self.keys.iter().find(|k| k.kind == KeyKind::Primary)
    }
}

type Schema = BTreeMap<String, Table>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Drops `-- …` to the end of the line and `$$ … $$` bodies.
fn strip(sql: &str) -> String {
    let no_comments: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    for (i, part) in no_comments.split("$$").enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0i32, String::new(), Vec::new());
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// The text inside the first parenthesised group of `s`, and what follows it.
fn group(s: &str) -> Option<(&str, &str)> {
    let start = s.find('(')?;
    let mut depth = 0;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < start) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[start + 1..i], &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `s` after its first `n` whitespace-separated words.
fn after_words(s: &str, n: usize) -> &str {
    let mut rest = s.trim_start();
    for _ in 0..n {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    rest
}

fn columns(list: &str) -> Vec<String> {
    split_top(list).iter().map(|c| c.to_lowercase()).collect()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_lowercase).collect()
}

/// `REFERENCES t [(cols)]` at the start of `rest` (after the keyword).
fn references(schema: &Schema, rest: &str) -> (String, Vec<String>) {
    let rest = rest.trim();
    let table: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_lowercase();
    let after = rest[table.len()..].trim_start();
    let cols = if after.starts_with('(') {
        columns(group(after).unwrap().0)
    } else {
        schema
            .get(&table)
            .and_then(Table::primary)
            .map(|k| k.columns.clone())
            .unwrap_or_else(|| panic!("REFERENCES {table} without columns and no primary key"))
    };
    (table, cols)
}

fn default_name(table: &str, cols: &[String], suffix: &str) -> String {
    if suffix == "pkey" {
        format!("{table}_pkey")
    } else {
        format!("{table}_{}_{suffix}", cols.join("_"))
    }
}

/// A table constraint (`PRIMARY KEY (…)`, `UNIQUE (…)`, `FOREIGN KEY (…) REFERENCES …`), or
/// `None` for `CHECK` and what is not a key.
fn table_constraint(schema: &Schema, table: &str, item: &str) -> Option<Key> {
    let (name, body) = match words(item).as_slice() {
        [first, name, ..] if first == "constraint" => (Some(name.clone()), after_words(item, 2)),
        _ => (None, item.trim_start()),
    };
    let upper = body.to_uppercase();
    if upper.starts_with("PRIMARY KEY") {
        let cols = columns(group(body).unwrap().0);
        Some(Key {
            name: name.unwrap_or_else(|| default_name(table, &cols, "pkey")),
            kind: KeyKind::Primary,
            columns: cols,
        })
    } else if upper.starts_with("UNIQUE") {
        let cols = columns(group(body).unwrap().0);
        Some(Key {
            name: name.unwrap_or_else(|| default_name(table, &cols, "key")),
            kind: KeyKind::Unique,
            columns: cols,
        })
    } else if upper.starts_with("FOREIGN KEY") {
        let (cols, rest) = group(body).unwrap();
        let cols = columns(cols);
        let at = rest.to_uppercase().find("REFERENCES").unwrap();
        let (t, c) = references(schema, &rest[at + "REFERENCES".len()..]);
        Some(Key {
            name: name.unwrap_or_else(|| default_name(table, &cols, "fkey")),
            kind: KeyKind::Foreign {
                table: t,
                columns: c,
            },
            columns: cols,
        })
    } else {
        None
    }
}

/// A column definition: adds the column and its column-level keys.
fn column(schema: &mut Schema, table: &str, def: &str) {
    let name = def.split_whitespace().next().unwrap().to_lowercase();
    let upper = def.to_uppercase();
    let mut keys = Vec::new();
    let col = vec![name.clone()];
    if upper.contains("PRIMARY KEY") {
        keys.push(Key {
            name: default_name(table, &col, "pkey"),
            kind: KeyKind::Primary,
            columns: col.clone(),
        });
    }
    if upper.split_whitespace().any(|w| w == "UNIQUE") {
        keys.push(Key {
            name: default_name(table, &col, "key"),
            kind: KeyKind::Unique,
            columns: col.clone(),
        });
    }
    if let Some(at) = upper.find("REFERENCES") {
        let (t, c) = references(schema, &def[at + "REFERENCES".len()..]);
        keys.push(Key {
            name: default_name(table, &col, "fkey"),
            kind: KeyKind::Foreign {
                table: t,
                columns: c,
            },
            columns: col,
        });
    }
    let t = schema.get_mut(table).unwrap();
    t.columns.insert(name);
    t.keys.extend(keys);
}

fn statement(schema: &mut Schema, stmt: &str) {
    let w = words(stmt);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["create", "table", name, ..] => {
            let name = name.split('(').next().unwrap().to_owned();
            schema.insert(name.clone(), Table::default());
            for item in split_top(group(stmt).unwrap().0) {
                let first = words(&item).first().cloned().unwrap_or_default();
                if matches!(
                    first.as_str(),
                    "constraint" | "primary" | "unique" | "foreign" | "check"
                ) {
                    if let Some(k) = table_constraint(schema, &name, &item) {
                        schema.get_mut(&name).unwrap().keys.push(k);
                    }
                } else {
                    column(schema, &name, &item);
                }
            }
        }
        ["alter", "table", name, ..] => {
            let name = (*name).to_owned();
            for action in split_top(after_words(stmt, 3)) {
                let aw = words(&action);
                match aw.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                    ["add", "column", ..] => {
                        column(schema, &name, after_words(&action, 2));
                    }
                    ["add", ..] => {
                        if let Some(k) = table_constraint(schema, &name, after_words(&action, 1)) {
                            schema.get_mut(&name).unwrap().keys.push(k);
                        }
                    }
                    ["drop", "constraint", c, ..] => {
                        let t = schema.get_mut(&name).unwrap();
                        let before = t.keys.len();
                        t.keys.retain(|k| k.name != *c);
                        assert!(
                            t.keys.len() < before || c.ends_with("_check"),
                            "ALTER TABLE {name} DROP CONSTRAINT {c}: no such key is known to the \
                             parser (give the constraint an explicit name)"
                        );
                    }
                    ["drop", "column", c, ..] => {
                        let t = schema.get_mut(&name).unwrap();
                        t.columns.remove(*c);
                        t.keys.retain(|k| !k.columns.iter().any(|x| x == c));
                    }
                    _ => {}
                }
            }
        }
        ["create", "unique", "index", index, "on", table, ..] => {
            let (cols, _) = group(stmt).unwrap();
            let key = Key {
                name: (*index).to_owned(),
                kind: KeyKind::Unique,
                columns: columns(cols),
            };
            schema
                .get_mut(*table)
                .unwrap_or_else(|| panic!("unique index {index} on unknown table {table}"))
                .keys
                .push(key);
        }
        ["drop", "index", index] => {
            for t in schema.values_mut() {
                t.keys.retain(|k| k.name != *index);
            }
        }
        ["drop", "table", table, ..] => {
            schema.remove(*table);
        }
        _ => {}
    }
}

fn parse_migrations() -> Schema {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut schema = Schema::new();
    for f in files {
        let text = strip(&std::fs::read_to_string(&f).unwrap());
        for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            statement(&mut schema, stmt);
        }
    }
    schema
}

/// One line of a distributed table's entry in the plan.
#[derive(Debug)]
struct PlannedKey {
    line: String,
    kind: KeyKind,
    columns: Vec<String>,
    /// `-> …`: the key does not include `tenant_id` today, and becomes this.
    change: Option<String>,
}

#[derive(Debug)]
enum Placement {
    Distributed(Vec<PlannedKey>),
    Reference,
}

/// Reads the `citus` block of docs/scaling.md.
fn parse_plan(doc: &str) -> Vec<(String, Placement)> {
    let block = doc
        .split("```citus\n")
        .nth(1)
        .expect("docs/scaling.md has a ```citus block")
        .split("```")
        .next()
        .unwrap();
    let mut plan: Vec<(String, Placement)> = Vec::new();
    for raw in block.lines() {
        let line = raw.split('#').next().unwrap().trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if !raw.starts_with(' ') {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["distributed", t] => plan.push(((*t).into(), Placement::Distributed(Vec::new()))),
                ["reference", t] => plan.push(((*t).into(), Placement::Reference)),
                _ => panic!("plan line {raw:?}: expected `distributed TABLE` or `reference TABLE`"),
            }
            continue;
        }
        let Some((table, Placement::Distributed(keys))) = plan.last_mut() else {
            panic!("plan line {raw:?}: keys belong under a distributed table");
        };
        let (key, change) = match line.split_once("->") {
            Some((k, c)) => (k.trim(), Some(c.trim().to_owned())),
            None => (line.trim(), None),
        };
        let (kind_word, rest) = key.split_once(' ').unwrap_or((key, ""));
        let (cols, after) =
            group(rest).unwrap_or_else(|| panic!("{table}: plan line {raw:?} has no (columns)"));
        let kind = match kind_word {
            "primary" => KeyKind::Primary,
            "unique" => KeyKind::Unique,
            "foreign" => {
                let after = after.trim();
                let target = after
                    .strip_prefix("references")
                    .unwrap_or_else(|| panic!("{table}: {raw:?}: foreign (…) references t (…)"));
                let target_table = target.split('(').next().unwrap().trim().to_owned();
                KeyKind::Foreign {
                    table: target_table,
                    columns: columns(group(target).unwrap().0),
                }
            }
            other => panic!("{table}: plan line {raw:?}: unknown key kind {other:?}"),
        };
        keys.push(PlannedKey {
            line: raw.trim().to_owned(),
            kind,
            columns: columns(cols),
            change,
        });
    }
    plan
}

fn has_tenant(cols: &[String]) -> bool {
    cols.iter().any(|c| c == "tenant_id")
}

#[test]
fn the_citus_plan_in_docs_scaling_md_matches_the_postgres_migrations() {
    let schema = parse_migrations();
    assert!(
        schema.len() > 20 && schema.contains_key("messages"),
        "the parser read the migrations: {:?}",
        schema.keys().collect::<Vec<_>>()
    );
    let doc = std::fs::read_to_string(root().join("docs/scaling.md")).unwrap();
    let plan = parse_plan(&doc);
    let mut problems = Vec::new();

    // Every table exactly once.
    let mut seen = BTreeMap::new();
    for (t, _) in &plan {
        *seen.entry(t.clone()).or_insert(0) += 1;
    }
    for (t, n) in &seen {
        if *n > 1 {
            problems.push(format!("{t} is listed {n} times"));
        }
        if !schema.contains_key(t) {
            problems.push(format!("{t} is listed but no migration creates it"));
        }
    }
    for t in schema.keys() {
        if !seen.contains_key(t) {
            problems.push(format!(
                "{t} is not in the plan: add `distributed {t}` (with its keys) or `reference {t}`"
            ));
        }
    }

    let distributed: BTreeSet<&str> = plan
        .iter()
        .filter(|(_, p)| matches!(p, Placement::Distributed(_)))
        .map(|(t, _)| t.as_str())
        .collect();
    for (t, placement) in &plan {
        let Some(table) = schema.get(t) else { continue };
        match placement {
            Placement::Reference => {
                // Citus: a reference table may reference only reference tables.
                for k in &table.keys {
                    if let KeyKind::Foreign { table: target, .. } = &k.kind {
                        if distributed.contains(target.as_str()) {
                            problems.push(format!(
                                "reference table {t}: foreign key {} points into distributed {target}",
                                k.name
                            ));
                        }
                    }
                }
            }
            Placement::Distributed(planned) => {
                if !table.columns.contains("tenant_id") {
                    problems.push(format!("distributed {t} has no tenant_id column"));
                }
                // The plan lists exactly the table's keys.
                let actual: Vec<&Key> = table.keys.iter().collect();
                for p in planned {
                    let matching = actual
                        .iter()
                        .find(|k| k.kind == p.kind && k.columns == p.columns);
                    let Some(k) = matching else {
                        problems.push(format!("{t}: `{}` is not a key in the migrations", p.line));
                        continue;
                    };
                    let ok = match &k.kind {
                        KeyKind::Primary | KeyKind::Unique => has_tenant(&k.columns),
                        KeyKind::Foreign {
                            table: target,
                            columns: target_cols,
                        } => {
                            !distributed.contains(target.as_str())
                                || (has_tenant(&k.columns) && has_tenant(target_cols))
                        }
                    };
                    match (&p.change, ok) {
                        (None, false) => problems.push(format!(
                            "{t}: `{}` is listed as fine for Citus but does not include tenant_id \
                             (on both sides, for a key into a distributed table); say `-> …` what it becomes",
                            p.line
                        )),
                        (Some(_), true) => problems.push(format!(
                            "{t}: `{}` is listed as changing but already works for Citus",
                            p.line
                        )),
                        _ => {}
                    }
                }
                for k in actual {
                    let listed = planned
                        .iter()
                        .any(|p| p.kind == k.kind && p.columns == k.columns);
                    if !listed {
                        problems.push(format!(
                            "{t}: key {} {:?} ({}) is not in the plan",
                            k.name,
                            k.kind,
                            k.columns.join(", ")
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/scaling.md disagrees with the PostgreSQL migrations:\n  - {}",
        problems.join("\n  - ")
    );
}

#[test]
fn the_parser_reads_constraints_the_way_postgresql_names_them() {
    let mut s = Schema::new();
    for stmt in strip(
        "CREATE TABLE a (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, -- note; with a semicolon
            code text UNIQUE, CONSTRAINT a_tenant_id_id_key UNIQUE (tenant_id, id));
         CREATE TABLE b (id uuid PRIMARY KEY, tenant_id uuid, a_id uuid REFERENCES a (id),
            FOREIGN KEY (tenant_id, a_id) REFERENCES a (tenant_id, id), CHECK (id IS NOT NULL));
         DO $$ BEGIN EXECUTE 'CREATE TABLE ghost (x int)'; END $$;
         ALTER TABLE b DROP CONSTRAINT b_a_id_fkey, ADD COLUMN extra text UNIQUE;
         ALTER TABLE a DROP CONSTRAINT a_code_key;
         CREATE UNIQUE INDEX b_extra_live ON b (tenant_id, extra) WHERE extra IS NOT NULL;
         DROP INDEX b_extra_live",
    )
    .split(';')
    {
        statement(&mut s, stmt.trim());
    }
    assert_eq!(s.keys().collect::<Vec<_>>(), ["a", "b"]);
    let names = |t: &str| -> Vec<String> { s[t].keys.iter().map(|k| k.name.clone()).collect() };
    assert_eq!(names("a"), ["a_pkey", "a_tenant_id_id_key"]);
    assert_eq!(
        names("b"),
        ["b_pkey", "b_tenant_id_a_id_fkey", "b_extra_key"]
    );
    assert!(s["b"].columns.contains("extra"));
    assert_eq!(
        s["b"].keys[1].kind,
        KeyKind::Foreign {
            table: "a".into(),
            columns: vec!["tenant_id".into(), "id".into()]
        }
    );
}
