//! From TOML text to a [`Board`]: parsing, family inheritance, and
//! mapping every problem back to the file that caused it.
//!
//! Inheritance works on TOML tables before any typing happens: the
//! chain `board → family → family …` is merged root-first, so a nearer
//! file wins. Tables merge key by key (recursively); any other value,
//! arrays included, is replaced whole, so a board that lists
//! `flash.partitions` replaces its family's list rather than appending
//! to it. The identity keys `schema`, `name`, `description`, `links`
//! and `extends` belong to each file and are never inherited.
//!
//! The merged table is then deserialized into [`Board`]. Each error is
//! traced to the nearest file in the chain that holds the offending
//! key, so a typo in a family is reported against the family.

use std::fmt;

use toml::{Table, Value};

use crate::error::{did_you_mean, BoardError, BoardErrors, Rule};
use crate::schema::{Board, SCHEMA_VERSION};
use crate::validate;

/// Keys that describe one file and are not passed down to boards that
/// extend it.
pub(crate) const NOT_INHERITED: &[&str] = &["schema", "name", "description", "links", "extends"];

/// Tag keys of internally tagged tables (see `schema::Interrupt`).
const TAGS: &[&str] = &["method"];

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `flash.partitions[2].offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn parse(dotted: &str) -> Self {
        let mut segs = Vec::new();
        for part in dotted.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(i) = rest.find('[') {
                segs.push(Seg::Key(rest[..i].to_string()));
                rest = &rest[i..];
                while let Some(end) = rest.find(']') {
                    if let Ok(n) = rest[1..end].parse() {
                        segs.push(Seg::Index(n));
                    }
                    rest = &rest[end + 1..];
                }
            } else {
                segs.push(Seg::Key(rest.to_string()));
            }
        }
        FieldPath(segs)
    }

    /// This path extended by `key`, unless it already ends with it
    /// (serde reports unknown fields at the key, missing ones at the table).
    fn push_key(&self, key: &str) -> Self {
        let mut p = self.clone();
        if p.0.last() != Some(&Seg::Key(key.to_string())) {
            p.0.push(Seg::Key(key.to_string()));
        }
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

fn lookup<'a>(table: &'a Table, path: &FieldPath) -> Option<&'a Value> {
    let mut segs = path.0.iter();
    let Some(Seg::Key(first)) = segs.next() else {
        return None;
    };
    let mut cur = table.get(first)?;
    for seg in segs {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Table(t)) => t.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(table: &'a mut Table, path: &[Seg]) -> Option<&'a mut Value> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut cur = table.get_mut(first)?;
    for seg in rest {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The table that holds the last segment of `path` (the root for a
/// one-segment path).
fn parent_table<'a>(table: &'a mut Table, path: &FieldPath) -> Option<&'a mut Table> {
    let parents = &path.0[..path.0.len().checked_sub(1)?];
    if parents.is_empty() {
        return Some(table);
    }
    match get_mut(table, parents)? {
        Value::Table(t) => Some(t),
        _ => None,
    }
}

fn remove(table: &mut Table, path: &FieldPath) -> Option<Value> {
    match path.0.last()? {
        Seg::Key(k) => parent_table(table, path)?.remove(k),
        Seg::Index(i) => {
            let parents = &path.0[..path.0.len() - 1];
            match get_mut(table, parents)? {
                Value::Array(a) if *i < a.len() => Some(a.remove(*i)),
                _ => None,
            }
        }
    }
}

/// Moves the value at `path` to the sibling key `to`, unless that exists.
fn rename(table: &mut Table, path: &FieldPath, to: &str) -> bool {
    let Some(parent) = parent_table(table, path) else {
        return false;
    };
    let Some(Seg::Key(from)) = path.0.last() else {
        return false;
    };
    if parent.contains_key(to) {
        return false;
    }
    match parent.remove(from) {
        Some(v) => {
            parent.insert(to.to_string(), v);
            true
        }
        None => false,
    }
}

/// Merges `over` into `base`: tables recursively, everything else replaced.
pub(crate) fn merge(base: &mut Table, over: &Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// One parsed file of an inheritance chain.
#[derive(Debug, Clone)]
pub(crate) struct ChainFile {
    /// Display name of the file, used in errors.
    pub file: String,
    /// The file's own table.
    pub table: Table,
}

/// The file in `chain` (nearest first) that holds `path`, or the first file.
pub(crate) fn origin<'a>(chain: &'a [ChainFile], path: &FieldPath) -> &'a str {
    // Walk up the path: for a missing field the nearest file holding its
    // parent table is the one to fix.
    let mut p = path.clone();
    loop {
        if p.0.is_empty() {
            return &chain[0].file;
        }
        let inherited =
            !matches!(p.0.first(), Some(Seg::Key(k)) if NOT_INHERITED.contains(&k.as_str()));
        let files = if inherited { chain } else { &chain[..1] };
        if let Some(f) = files.iter().find(|f| lookup(&f.table, &p).is_some()) {
            return &f.file;
        }
        p.0.pop();
    }
}

/// Checks the per-file keys every file must carry: `schema` and `name`.
pub(crate) fn check_identity(file: &ChainFile, stem: &str, errors: &mut Vec<BoardError>) {
    match file.table.get("schema") {
        None => errors.push(
            BoardError::new(
                &file.file,
                "schema",
                Rule::SchemaVersion,
                "`schema` is missing",
            )
            .with_help(format!("start the file with `schema = {SCHEMA_VERSION}`")),
        ),
        Some(Value::Integer(v)) if *v == i64::from(SCHEMA_VERSION) => {}
        Some(v) => errors.push(
            BoardError::new(
                &file.file,
                "schema",
                Rule::SchemaVersion,
                format!(
                    "schema version {v} is not supported (this lmx reads version {SCHEMA_VERSION})"
                ),
            )
            .with_help(format!(
                "set `schema = {SCHEMA_VERSION}`, or use an lmx that knows version {v}"
            )),
        ),
    }
    match file.table.get("name") {
        None => errors.push(
            BoardError::new(&file.file, "name", Rule::MissingField, "`name` is missing")
                .with_help(format!("add `name = \"{stem}\"`")),
        ),
        Some(Value::String(n)) if n == stem => {}
        Some(Value::String(n)) => errors.push(
            BoardError::new(
                &file.file,
                "name",
                Rule::NameMismatch,
                format!("name \"{n}\" differs from the file name \"{stem}.toml\""),
            )
            .with_help(format!(
                "rename the file to {n}.toml or set `name = \"{stem}\"`: boards are looked up by file name"
            )),
        ),
        Some(v) => errors.push(BoardError::new(
            &file.file,
            "name",
            Rule::InvalidValue,
            format!("`name` must be a string, found {}", v.type_str()),
        )),
    }
}

/// The `extends` value of a file, or an error if it is not a string.
pub(crate) fn extends_of(file: &ChainFile) -> Result<Option<String>, BoardError> {
    match file.table.get("extends") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(BoardError::new(
            &file.file,
            "extends",
            Rule::InvalidValue,
            format!(
                "`extends` must be the name of a family, found {}",
                v.type_str()
            ),
        )),
    }
}

/// Merges a chain (nearest first) into one table.
pub(crate) fn merge_chain(chain: &[ChainFile]) -> Table {
    let mut merged = Table::new();
    for (i, f) in chain.iter().enumerate().rev() {
        let mut own = f.table.clone();
        if i != 0 {
            for k in NOT_INHERITED {
                own.remove(*k);
            }
        }
        merge(&mut merged, &own);
    }
    merged
}

/// The backticked words of a serde message: for "unknown field `a`,
/// expected one of `b`, `c`" that is `[a, b, c]`.
fn backticked(msg: &str) -> Vec<&str> {
    msg.split('`').skip(1).step_by(2).collect()
}

fn path_of(p: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    FieldPath(
        p.iter()
            .filter_map(|s| match s {
                Segment::Map { key } => Some(Seg::Key(key.clone())),
                Segment::Seq { index } => Some(Seg::Index(*index)),
                Segment::Enum { .. } | Segment::Unknown => None,
            })
            .collect(),
    )
}

/// A stand-in for a missing required field, so that deserialization can
/// go on and report the problems after it. Tried in turn until one has
/// the right type; an enum gets its first variant.
fn placeholder(attempt: usize, msg: &str) -> Option<Value> {
    let words = backticked(msg);
    if msg.starts_with("unknown variant") && words.len() > 1 {
        return Some(Value::String(words[1].to_string()));
    }
    match attempt {
        0 => Some(Value::String(String::new())),
        1 => Some(Value::Integer(0)),
        2 => Some(Value::Boolean(false)),
        3 => Some(Value::Table(Table::new())),
        4 => Some(Value::Array(Vec::new())),
        _ => None,
    }
}

fn set(table: &mut Table, path: &FieldPath, value: Value) -> bool {
    let Some(Seg::Key(key)) = path.0.last() else {
        return false;
    };
    let key = key.clone();
    match parent_table(table, path) {
        Some(t) => {
            t.insert(key, value);
            true
        }
        None => false,
    }
}

/// Deserializes the merged table of `chain`, collecting every error:
/// a key with a bad value is dropped, a typo with one close match is
/// read as that key, and a missing field gets a placeholder, and the
/// attempt is repeated.
pub(crate) fn deserialize(
    chain: &[ChainFile],
    mut merged: Table,
) -> Result<Board, Vec<BoardError>> {
    let mut errors = Vec::new();
    let mut removed: Vec<FieldPath> = Vec::new();
    // Placeholders in place, with the attempt number of each.
    let mut stand_ins: Vec<(FieldPath, usize)> = Vec::new();
    for _ in 0..256 {
        let value = Value::Table(merged.clone());
        match serde_path_to_error::deserialize::<_, Board>(value) {
            Ok(board) if errors.is_empty() => return Ok(board),
            Ok(_) => return Err(dedup(errors)),
            Err(e) => {
                let path = path_of(e.path());
                let msg = e.inner().message().trim().to_string();
                let missing = msg.starts_with("missing field");
                // A placeholder of the wrong type: try the next one.
                if !missing {
                    if let Some(s) = stand_ins.iter_mut().find(|(p, _)| *p == path) {
                        s.1 += 1;
                        if placeholder(s.1, &msg).is_some_and(|v| set(&mut merged, &path, v)) {
                            continue;
                        }
                        return Err(dedup(errors));
                    }
                }
                let (field, err) = describe(chain, &path, &msg);
                let rule = err.rule;
                // A required field removed for a bad value was reported
                // already, and the fields of a stand-in table are implied.
                let implied = rule == Rule::MissingField
                    && (removed.contains(&field) || stand_ins.iter().any(|(p, _)| *p == path));
                if !implied {
                    errors.push(err);
                }
                if rule == Rule::MissingField {
                    if placeholder(0, "").is_some_and(|v| set(&mut merged, &field, v)) {
                        stand_ins.push((field, 0));
                        continue;
                    }
                    return Err(dedup(errors));
                }
                if rule == Rule::UnknownField {
                    if let Some(to) = suggestion(&msg) {
                        if rename(&mut merged, &field, to) {
                            continue;
                        }
                    }
                }
                // A misspelt enum value with one close match is read as
                // that value, so what depends on it is still checked.
                if msg.starts_with("unknown variant") {
                    if let Some(v) = suggestion(&msg) {
                        if set(&mut merged, &path, Value::String(v.to_string())) {
                            removed.push(path);
                            continue;
                        }
                    }
                }
                let mut target = if rule == Rule::UnknownField {
                    field
                } else {
                    path
                };
                // Without its tag an internally tagged table cannot be read
                // at all: drop the whole table.
                if rule == Rule::InvalidValue
                    && matches!(target.0.last(), Some(Seg::Key(k)) if TAGS.contains(&k.as_str()))
                {
                    target.0.pop();
                }
                if remove(&mut merged, &target).is_none() {
                    return Err(dedup(errors));
                }
                removed.push(target);
            }
        }
    }
    Err(dedup(errors))
}

/// The did-you-mean key for a serde "unknown field" message.
fn suggestion(msg: &str) -> Option<&str> {
    let words = backticked(msg);
    let (wrong, expected) = words.split_first()?;
    did_you_mean(wrong, expected)
}

fn dedup(mut errors: Vec<BoardError>) -> Vec<BoardError> {
    let mut seen = Vec::new();
    errors.retain(|e| {
        let key = (e.file.clone(), e.field.clone(), e.rule);
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    errors
}

/// Turns one serde message at `path` into a [`BoardError`] naming the
/// file, the field and the rule.
fn describe(chain: &[ChainFile], path: &FieldPath, msg: &str) -> (FieldPath, BoardError) {
    let words = backticked(msg);
    if msg.starts_with("unknown field") && !words.is_empty() {
        let field = path.push_key(words[0]);
        let expected = &words[1..];
        let file = origin(chain, &field);
        let mut help = match did_you_mean(words[0], expected) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        if expected.is_empty() {
            help.push_str("this table takes no keys");
        } else {
            help.push_str(&format!("known keys here: {}", expected.join(", ")));
        }
        let err = BoardError::new(
            file,
            field.to_string(),
            Rule::UnknownField,
            format!("unknown field `{}`", words[0]),
        )
        .with_help(help);
        return (field, err);
    }
    if msg.starts_with("missing field") && !words.is_empty() {
        let field = path.push_key(words[0]);
        let file = origin(chain, &field);
        let err = BoardError::new(
            file,
            field.to_string(),
            Rule::MissingField,
            format!("required field `{field}` is missing (in this file and its families)"),
        )
        .with_help(if path.0.is_empty() {
            format!(
                "add `{}` to this file, or to a family this board extends",
                words[0]
            )
        } else {
            format!(
                "add `{}` under [{path}], or to a family this board extends",
                words[0]
            )
        });
        return (field, err);
    }
    let file = origin(chain, path);
    let mut err = BoardError::new(
        file,
        path.to_string(),
        Rule::InvalidValue,
        if msg.starts_with("invalid") {
            msg.to_string()
        } else {
            format!("invalid value: {msg}")
        },
    );
    if msg.starts_with("unknown variant") && words.len() > 1 {
        if let Some(s) = did_you_mean(words[0], &words[1..]) {
            err = err.with_help(format!("did you mean `{s}`?"));
        } else {
            err = err.with_help(format!("one of: {}", words[1..].join(", ")));
        }
    }
    (path.clone(), err)
}

/// Parses one file's text into a table, reporting syntax errors with a
/// line and column.
pub(crate) fn parse_table(file: &str, text: &str) -> Result<Table, BoardError> {
    text.parse::<Table>().map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {col}")
            })
            .unwrap_or_default();
        BoardError::new(
            file,
            "",
            Rule::Syntax,
            format!("not valid TOML{at}: {}", e.message().trim()),
        )
        .with_help("check quoting and that each key appears once per table")
    })
}

/// Deserializes and validates a merged chain into a [`Board`].
pub(crate) fn finish(chain: &[ChainFile]) -> Result<Board, BoardErrors> {
    let merged = merge_chain(chain);
    let board = deserialize(chain, merged).map_err(|errors| BoardErrors { errors })?;
    let problems = validate::validate(&board);
    if problems.is_empty() {
        return Ok(board);
    }
    Err(BoardErrors {
        errors: problems
            .into_iter()
            .map(|p| {
                let path = FieldPath::parse(&p.field);
                let file = origin(chain, &path).to_string();
                let mut e = BoardError::new(file, p.field, p.rule, p.message);
                e.help = p.help;
                e
            })
            .collect(),
    })
}

/// Parses a standalone board (no `extends` resolution) from TOML text.
pub(crate) fn board_from_str(file: &str, text: &str) -> Result<Board, BoardErrors> {
    let table = parse_table(file, text)?;
    let chain = [ChainFile {
        file: file.to_string(),
        table,
    }];
    let merged = merge_chain(&chain);
    deserialize(&chain, merged).map_err(|errors| BoardErrors { errors })
}
