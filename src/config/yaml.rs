//! Strict YAML loading with `file:line:col` diagnostics.
//!
//! Every YAML file of the project (`lakehouse.yaml`, `catalog/*.yaml`, `grants/*.yaml`) goes
//! through [`Document::load`]. Serde does the typing (all our specs use
//! `deny_unknown_fields`, so a typo is an error, not a silent default) and a second, marker-only
//! parse builds a [`PathIndex`] so that checks which happen *after* deserialisation (an unknown
//! role, a mask naming a missing column) can still point at the exact line and column.
//!
//! `${NAME}` references to environment variables are expanded by [`EnvString`] at
//! deserialisation time, so a missing variable is reported at the place it is used and secrets
//! never need to be committed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A position in a file, 1-based like every editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file the position is in.
    pub file: PathBuf,
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is; `None` when it concerns the file as a whole (unreadable, say).
    pub location: Option<Location>,
    /// The file, when no precise location is known.
    pub file: PathBuf,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic about a whole file.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            file: file.into(),
            message: message.into(),
        }
    }

    /// A diagnostic at a known location.
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            file: location.file.clone(),
            location: Some(location),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// All problems found while loading a set of files; displayed one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when empty, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Appends every diagnostic of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, diagnostic) in self.0.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic])
    }
}

/// A step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path such as `roles[2].grant[0].table`, used to find where a value was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(pub Vec<Step>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        YamlPath(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_string()));
        YamlPath(steps)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, idx: usize) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Index(idx));
        YamlPath(steps)
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if idx == 0 => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Where each node of a document starts. Keys map to the position of the *value* they hold,
/// which is what a message about that value should point at.
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    positions: HashMap<YamlPath, (usize, usize)>,
}

impl PathIndex {
    /// Builds the index of `text`. Returns the scanner's own error on malformed YAML.
    pub fn build(text: &str) -> Result<PathIndex, (usize, usize, String)> {
        let mut builder = IndexBuilder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).map_err(|err| {
            (
                err.marker().line(),
                err.marker().col() + 1,
                err.info().to_string(),
            )
        })?;
        Ok(PathIndex {
            positions: builder.positions,
        })
    }

    /// The position of `path`, or of its nearest ancestor that was written down.
    pub fn find(&self, path: &YamlPath) -> Option<(usize, usize)> {
        let mut steps = path.0.clone();
        loop {
            if let Some(pos) = self.positions.get(&YamlPath(steps.clone())) {
                return Some(*pos);
            }
            steps.pop()?;
        }
    }
}

/// Container state while walking parser events.
enum Frame {
    Mapping { pending_key: Option<String> },
    Sequence { next_index: usize },
}

#[derive(Default)]
struct IndexBuilder {
    stack: Vec<Frame>,
    path: Vec<Step>,
    positions: HashMap<YamlPath, (usize, usize)>,
}

impl IndexBuilder {
    /// Called when a node (scalar or container) starts at `mark`; returns true if the node is a
    /// mapping key rather than a value.
    fn enter_node(&mut self, mark: Marker, key_text: Option<&str>) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Mapping { pending_key }) => {
                if pending_key.is_none() {
                    // This node is a key. Only scalar keys are indexed.
                    *pending_key = Some(key_text.unwrap_or_default().to_string());
                    return true;
                }
                let key = pending_key.take().unwrap_or_default();
                self.path.push(Step::Key(key));
            }
            Some(Frame::Sequence { next_index }) => {
                self.path.push(Step::Index(*next_index));
                *next_index += 1;
            }
            None => {}
        }
        self.positions
            .insert(YamlPath(self.path.clone()), (mark.line(), mark.col() + 1));
        false
    }

    fn leave_node(&mut self) {
        if !self.stack.is_empty() || !self.path.is_empty() {
            self.path.pop();
        }
    }
}

impl MarkedEventReceiver for IndexBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                let is_key = self.enter_node(mark, Some(&value));
                if !is_key && !self.stack.is_empty() {
                    self.path.pop();
                }
            }
            Event::Alias(_) => {
                let is_key = self.enter_node(mark, None);
                if !is_key && !self.stack.is_empty() {
                    self.path.pop();
                }
            }
            Event::MappingStart(..) => {
                self.enter_node(mark, None);
                self.stack.push(Frame::Mapping { pending_key: None });
            }
            Event::SequenceStart(..) => {
                self.enter_node(mark, None);
                self.stack.push(Frame::Sequence { next_index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                if !self.stack.is_empty() {
                    self.leave_node();
                }
            }
            _ => {}
        }
    }
}

/// A parsed YAML file: the typed value plus what is needed to point into the text.
#[derive(Debug, Clone)]
pub struct Document<T> {
    /// The typed content.
    pub value: T,
    /// The file it came from.
    pub file: PathBuf,
    /// Positions of every node.
    pub index: PathIndex,
}

impl<T: DeserializeOwned> Document<T> {
    /// Reads and parses `file`.
    pub fn load(file: &Path) -> Result<Document<T>, Diagnostic> {
        let text = std::fs::read_to_string(file)
            .map_err(|err| Diagnostic::file(file, format!("cannot read file: {err}")))?;
        Self::parse(file, &text)
    }

    /// Parses `text` as if it were the content of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Document<T>, Diagnostic> {
        let index = PathIndex::build(text).map_err(|(line, col, message)| {
            Diagnostic::at(
                Location {
                    file: file.to_path_buf(),
                    line,
                    col,
                },
                format!("invalid YAML: {message}"),
            )
        })?;
        // An empty file is an empty mapping, so that a file with only comments is valid.
        let value = if text.trim().is_empty() || only_comments(text) {
            serde_norway::from_str("{}")
        } else {
            serde_norway::from_str(text)
        };
        let value = value.map_err(|err| serde_diagnostic(file, &err))?;
        Ok(Document {
            value,
            file: file.to_path_buf(),
            index,
        })
    }
}

impl<T> Document<T> {
    /// The location of `path` in this document (or of its nearest written ancestor).
    pub fn locate(&self, path: &YamlPath) -> Location {
        let (line, col) = self.index.find(path).unwrap_or((1, 1));
        Location {
            file: self.file.clone(),
            line,
            col,
        }
    }

    /// A diagnostic pointing at `path`.
    pub fn error_at(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.locate(path), message)
    }
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    })
}

fn serde_diagnostic(file: &Path, err: &serde_norway::Error) -> Diagnostic {
    let mut message = err.to_string();
    // serde_norway appends " at line L column C"; we print the location in front instead.
    if let Some(pos) = message.rfind(" at line ") {
        message.truncate(pos);
    }
    match err.location() {
        Some(loc) => Diagnostic::at(
            Location {
                file: file.to_path_buf(),
                line: loc.line(),
                col: loc.column(),
            },
            message,
        ),
        None => Diagnostic::file(file, message),
    }
}

/// A string in which `${NAME}` is replaced by the environment variable `NAME` when the file is
/// read, and `${NAME:-default}` falls back to `default` when it is not set. `$${` writes a
/// literal `${`. A variable that is not set and has no default is an error at its location.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnvString(String);

impl EnvString {
    /// Wraps an already expanded value.
    pub fn new(value: impl Into<String>) -> Self {
        EnvString(value.into())
    }

    /// The expanded value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The expanded value, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for EnvString {
    // Values may be secrets: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvString(..)")
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        expand_env(&raw, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

/// Expands `${NAME}` references in `raw` with `lookup`.
pub fn expand_env(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated variable reference in {raw:?}"))?;
            let reference = &body[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            let value = match (lookup(name), default) {
                (Some(value), _) => value,
                (None, Some(default)) => default.to_string(),
                (None, None) => return Err(format!("environment variable {name} is not set")),
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The `*.yaml`/`*.yml` files of `dir`, sorted; an absent directory has none.
pub fn yaml_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, Diagnostic> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(Diagnostic::file(
                dir,
                format!("cannot read directory: {err}"),
            ));
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml") | Some("yml")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Spec {
        users: Vec<User>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct User {
        name: String,
        roles: Vec<String>,
    }

    #[test]
    fn unknown_key_points_at_its_line() {
        let text = "users:\n  - name: a\n    roles: [x]\n  - name: b\n    rolez: [y]\n";
        let err = Document::<Spec>::parse(Path::new("g.yaml"), text).unwrap_err();
        let location = err.location.clone().unwrap();
        assert_eq!((location.line, location.col), (5, 5));
        assert!(err.to_string().starts_with("g.yaml:5:5: "), "{err}");
        assert!(err.message.contains("unknown field `rolez`"), "{err}");
    }

    #[test]
    fn paths_resolve_to_value_positions() {
        let text = "users:\n  - name: a\n    roles: [x, y]\n  - name: b\n    roles:\n      - z\n";
        let doc = Document::<Spec>::parse(Path::new("g.yaml"), text).unwrap();
        let roles = YamlPath::root().key("users").index(0).key("roles");
        assert_eq!(doc.index.find(&roles.index(1)), Some((3, 16)));
        let z = YamlPath::root().key("users").index(1).key("roles").index(0);
        assert_eq!(doc.index.find(&z), Some((6, 9)));
        assert_eq!(
            doc.index
                .find(&YamlPath::root().key("users").index(1).key("name")),
            Some((4, 11))
        );
    }

    #[test]
    fn env_expansion() {
        let lookup = |name: &str| (name == "K").then(|| "v".to_string());
        assert_eq!(expand_env("a${K}b", lookup).unwrap(), "avb");
        assert_eq!(expand_env("$${K}", lookup).unwrap(), "${K}");
        assert_eq!(expand_env("$5", lookup).unwrap(), "$5");
        assert!(expand_env("${NOPE}", lookup).unwrap_err().contains("NOPE"));
        assert!(expand_env("${K", lookup).is_err());
        assert_eq!(expand_env("${NOPE:-d}/${K:-x}", lookup).unwrap(), "d/v");
        assert_eq!(expand_env("${NOPE:-}", lookup).unwrap(), "");
    }

    #[test]
    fn comment_only_file_is_empty() {
        #[derive(Debug, Deserialize, Default)]
        #[serde(deny_unknown_fields, default)]
        struct Opt {
            #[allow(dead_code)]
            a: Option<u32>,
        }
        Document::<Opt>::parse(Path::new("x.yaml"), "# nothing\n").unwrap();
    }
}
