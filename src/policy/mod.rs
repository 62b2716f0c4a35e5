//! Users, roles, grants, row filters and masks: the access policy from `grants/*.yaml`.
//!
//! Pure: no async, no DataFusion, no I/O except reading the YAML in [`Policy::load`]. The same
//! policy and the same question always give the same answer. The `sql` module asks
//! [`Policy::table_access`] for every table a plan touches and enforces the answer on the plan;
//! the catalogs ask the same question to decide what a user can see.
//!
//! Semantics, as SQL Server and Trino DBAs expect them:
//! - default deny: nothing is visible without a grant;
//! - a grant or deny names the database, a schema, a table, or columns of a table;
//! - DENY wins over GRANT at any level;
//! - a database grant covers every schema except `sys` (system tables need an explicit grant);
//! - names are case-insensitive, like PostgreSQL's unquoted identifiers;
//! - a user gets the masks and row filters whose `to:` lists the user or one of its roles
//!   (transitively); several row filters on one table are combined with AND.

pub mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::config::yaml::yaml_files;
use crate::config::{Diagnostic, Diagnostics, Document, Location, YamlPath};
pub use spec::MaskFunction;
use spec::{GrantsFileSpec, ObjectSpec};

/// Schema whose tables a database-level grant does not cover.
pub const SYSTEM_SCHEMA: &str = "sys";

/// A compiled, validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
    masks: Vec<Mask>,
    row_filters: Vec<RowFilter>,
}

/// A login.
#[derive(Debug, Clone)]
pub struct User {
    /// Name as written in YAML (what `current_user` returns).
    pub name: String,
    /// SCRAM-SHA-256 verifier.
    pub scram: Option<String>,
    /// argon2id hash.
    pub password_hash: Option<String>,
    /// Direct roles, lowercase.
    pub roles: Vec<String>,
    /// Whether the user may log in.
    pub enabled: bool,
    /// Unix microseconds after which logins are refused.
    pub valid_until: Option<i64>,
    /// Whether the password is a shipped demo password.
    pub demo: bool,
    grants: Vec<Object>,
    denies: Vec<Object>,
    /// Where the user is defined.
    pub origin: Location,
}

#[derive(Debug, Clone)]
struct Role {
    roles: Vec<String>,
    grants: Vec<Object>,
    denies: Vec<Object>,
    origin: Location,
}

/// What a grant or deny is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRef {
    /// The whole database.
    Database,
    /// A schema.
    Schema(String),
    /// A table, or some of its columns.
    Table {
        /// Lowercase schema.
        schema: String,
        /// Lowercase table.
        table: String,
        /// Lowercase columns; `None` = all.
        columns: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone)]
struct Object {
    target: ObjectRef,
    origin: Location,
    columns_origin: Vec<Location>,
}

/// How a masked column is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskKind {
    /// A built-in mask.
    Builtin {
        /// Which one.
        function: MaskFunction,
        /// For `partial`.
        keep_first: usize,
        /// For `partial`.
        keep_last: usize,
    },
    /// A SQL expression written by the DBA.
    Expression(String),
}

/// A column mask.
#[derive(Debug, Clone)]
pub struct Mask {
    /// Lowercase schema.
    pub schema: String,
    /// Lowercase table.
    pub table: String,
    /// Lowercase column.
    pub column: String,
    /// How the value is masked.
    pub kind: MaskKind,
    /// Lowercase users and roles.
    pub to: Vec<String>,
    /// Where the mask is defined.
    pub origin: Location,
}

/// A row filter.
#[derive(Debug, Clone)]
pub struct RowFilter {
    /// Lowercase schema.
    pub schema: String,
    /// Lowercase table.
    pub table: String,
    /// SQL boolean expression.
    pub filter: String,
    /// Lowercase users and roles.
    pub to: Vec<String>,
    /// Where the filter is defined.
    pub origin: Location,
}

/// An authenticated user with every role it holds, directly or through other roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's name as written in YAML.
    pub user: String,
    /// Lowercase user name and all its roles.
    pub memberships: BTreeSet<String>,
}

impl Principal {
    /// Whether the principal is, or is a member of, `name` (lowercase).
    pub fn is(&self, name: &str) -> bool {
        self.memberships.contains(name)
    }
}

/// The answer to "what may this principal read of this table".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAccess {
    /// One entry per column asked about, in the same order.
    pub columns: Vec<ColumnAccess>,
    /// Row filters to apply (combined with AND), with where they are defined.
    pub row_filters: Vec<(String, Location)>,
}

/// The answer for one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnAccess {
    /// Readable as is.
    Allowed,
    /// Readable only through this mask.
    Masked(MaskKind, Location),
    /// Not readable.
    Denied,
}

impl TableAccess {
    /// A table is visible when at least one of its columns is readable.
    pub fn visible(&self) -> bool {
        self.columns.iter().any(|c| *c != ColumnAccess::Denied)
    }

    /// Whether nothing restricts the table (no filter, no mask, no denied column).
    pub fn unrestricted(&self) -> bool {
        self.row_filters.is_empty() && self.columns.iter().all(|c| *c == ColumnAccess::Allowed)
    }
}

/// What the policy needs to know about the catalog to validate names.
pub trait CatalogInfo {
    /// Whether a schema exists or may hold tables later (a discovery target).
    fn schema_exists(&self, schema: &str) -> bool;
    /// The lowercase column names of a table, if it exists now.
    fn table_columns(&self, schema: &str, table: &str) -> Option<Vec<String>>;
    /// Whether tables of this schema appear by discovery (so a missing one may appear later).
    fn schema_is_discovered(&self, schema: &str) -> bool;
}

/// Why a login is refused (all are reported to the client identically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No such user.
    UnknownUser,
    /// `enabled: false`.
    Disabled,
    /// `valid_until` has passed.
    Expired,
    /// A demo password while listening beyond loopback.
    DemoPasswordOffLoopback,
}

impl Policy {
    /// Loads and validates every `*.yaml` of `dir`.
    pub fn load(dir: &Path) -> Result<Policy, Diagnostics> {
        let files = yaml_files(dir).map_err(Diagnostics::from)?;
        let mut docs = Vec::new();
        let mut diagnostics = Diagnostics::default();
        for file in files {
            match Document::<GrantsFileSpec>::load(&file) {
                Ok(doc) => docs.push(doc),
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
        if !diagnostics.is_empty() {
            return Err(diagnostics);
        }
        Policy::from_docs(&docs)
    }

    /// Validates parsed files together.
    pub fn from_docs(docs: &[Document<GrantsFileSpec>]) -> Result<Policy, Diagnostics> {
        let mut diagnostics = Diagnostics::default();
        let mut policy = Policy::default();

        for doc in docs {
            for (idx, role) in doc.value.roles.iter().enumerate() {
                let path = YamlPath::root().key("roles").index(idx);
                let key = role.name.to_lowercase();
                if !valid_name(&key) {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("invalid role name \"{}\"", role.name),
                    ));
                    continue;
                }
                if policy.roles.contains_key(&key) {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("role \"{}\" is defined twice", role.name),
                    ));
                    continue;
                }
                let grants =
                    compile_objects(doc, &path.key("grant"), &role.grant, &mut diagnostics);
                let denies = compile_objects(doc, &path.key("deny"), &role.deny, &mut diagnostics);
                policy.roles.insert(
                    key,
                    Role {
                        roles: role.roles.iter().map(|r| r.to_lowercase()).collect(),
                        grants,
                        denies,
                        origin: doc.locate(&path),
                    },
                );
            }
        }
        for doc in docs {
            for (idx, user) in doc.value.users.iter().enumerate() {
                let path = YamlPath::root().key("users").index(idx);
                let key = user.name.to_lowercase();
                if !valid_name(&key) {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("invalid user name \"{}\"", user.name),
                    ));
                    continue;
                }
                if policy.users.contains_key(&key) {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("user \"{}\" is defined twice", user.name),
                    ));
                    continue;
                }
                if policy.roles.contains_key(&key) {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("user \"{}\" has the name of a role", user.name),
                    ));
                    continue;
                }
                if user.scram.is_none() && user.password_hash.is_none() {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!(
                            "user \"{}\" has neither scram nor password_hash: it could never log in (run `lakehouse passwd {}`)",
                            user.name, user.name
                        ),
                    ));
                }
                if let Some(scram) = &user.scram
                    && let Err(reason) = check_scram_format(scram)
                {
                    diagnostics.push(doc.error_at(&path.key("scram"), reason));
                }
                if let Some(hash) = &user.password_hash
                    && !hash.starts_with("$argon2id$")
                {
                    diagnostics.push(doc.error_at(
                        &path.key("password_hash"),
                        "password_hash must be an argon2id PHC string ($argon2id$...); run `lakehouse passwd`",
                    ));
                }
                let grants =
                    compile_objects(doc, &path.key("grant"), &user.grant, &mut diagnostics);
                let denies = compile_objects(doc, &path.key("deny"), &user.deny, &mut diagnostics);
                for (role_idx, role) in user.roles.iter().enumerate() {
                    if !policy.roles.contains_key(&role.to_lowercase()) {
                        diagnostics.push(doc.error_at(
                            &path.key("roles").index(role_idx),
                            format!("unknown role \"{role}\""),
                        ));
                    }
                }
                policy.users.insert(
                    key,
                    User {
                        name: user.name.clone(),
                        scram: user.scram.clone(),
                        password_hash: user.password_hash.clone(),
                        roles: user.roles.iter().map(|r| r.to_lowercase()).collect(),
                        enabled: user.enabled,
                        valid_until: user.valid_until.map(|t| t.0),
                        demo: user.demo,
                        grants,
                        denies,
                        origin: doc.locate(&path),
                    },
                );
            }
        }
        // Role membership must name known roles and must not loop.
        for doc in docs {
            for (idx, role) in doc.value.roles.iter().enumerate() {
                for (member_idx, parent) in role.roles.iter().enumerate() {
                    if !policy.roles.contains_key(&parent.to_lowercase()) {
                        diagnostics.push(
                            doc.error_at(
                                &YamlPath::root()
                                    .key("roles")
                                    .index(idx)
                                    .key("roles")
                                    .index(member_idx),
                                format!("unknown role \"{parent}\""),
                            ),
                        );
                    }
                }
            }
        }
        for (name, role) in &policy.roles {
            if policy.role_closure(name).contains(name) && role.roles.iter().any(|_| true) {
                diagnostics.push(Diagnostic::at(
                    role.origin.clone(),
                    format!("role \"{name}\" is a member of itself through its roles"),
                ));
            }
        }

        for doc in docs {
            for (idx, mask) in doc.value.masks.iter().enumerate() {
                let path = YamlPath::root().key("masks").index(idx);
                let Some((schema, table)) = split_table(&mask.table) else {
                    diagnostics.push(doc.error_at(
                        &path.key("table"),
                        format!("invalid table name \"{}\"", mask.table),
                    ));
                    continue;
                };
                let kind = match (&mask.function, &mask.expression) {
                    (Some(function), None) => MaskKind::Builtin {
                        function: *function,
                        keep_first: mask.keep_first.unwrap_or(1),
                        keep_last: mask.keep_last.unwrap_or(0),
                    },
                    (None, Some(expression)) => MaskKind::Expression(expression.clone()),
                    _ => {
                        diagnostics.push(doc.error_at(
                            &path,
                            "a mask needs exactly one of `function` or `expression`",
                        ));
                        continue;
                    }
                };
                let to = policy.check_grantees(doc, &path.key("to"), &mask.to, &mut diagnostics);
                policy.masks.push(Mask {
                    schema,
                    table,
                    column: mask.column.to_lowercase(),
                    kind,
                    to,
                    origin: doc.locate(&path.key("column")),
                });
            }
            for (idx, filter) in doc.value.row_filters.iter().enumerate() {
                let path = YamlPath::root().key("row_filters").index(idx);
                let Some((schema, table)) = split_table(&filter.table) else {
                    diagnostics.push(doc.error_at(
                        &path.key("table"),
                        format!("invalid table name \"{}\"", filter.table),
                    ));
                    continue;
                };
                let to = policy.check_grantees(doc, &path.key("to"), &filter.to, &mut diagnostics);
                policy.row_filters.push(RowFilter {
                    schema,
                    table,
                    filter: filter.filter.clone(),
                    to,
                    origin: doc.locate(&path.key("filter")),
                });
            }
        }

        // One mask per column per user: two masks on the same column for one user would make the
        // result depend on rule order.
        for (user_key, user) in &policy.users {
            let principal = policy.principal_of(user_key, user);
            let mut seen: BTreeMap<(String, String, String), &Mask> = BTreeMap::new();
            for mask in &policy.masks {
                if mask.to.iter().any(|g| principal.is(g)) {
                    let key = (mask.schema.clone(), mask.table.clone(), mask.column.clone());
                    if let Some(first) = seen.insert(key, mask) {
                        diagnostics.push(Diagnostic::at(
                            mask.origin.clone(),
                            format!(
                                "user \"{}\" gets two masks on column \"{}\" of \"{}.{}\" (the other is at {})",
                                user.name, mask.column, mask.schema, mask.table, first.origin
                            ),
                        ));
                    }
                }
            }
        }
        diagnostics.into_result(policy)
    }

    fn check_grantees(
        &self,
        doc: &Document<GrantsFileSpec>,
        path: &YamlPath,
        names: &[String],
        diagnostics: &mut Diagnostics,
    ) -> Vec<String> {
        if names.is_empty() {
            diagnostics.push(doc.error_at(path, "`to` must name at least one user or role"));
        }
        let mut out = Vec::new();
        for (idx, name) in names.iter().enumerate() {
            let key = name.to_lowercase();
            if !self.roles.contains_key(&key) && !self.users.contains_key(&key) {
                diagnostics.push(
                    doc.error_at(&path.index(idx), format!("unknown user or role \"{name}\"")),
                );
            }
            out.push(key);
        }
        out
    }

    /// All users, by lowercase name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// All role names, lowercase.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// All masks.
    pub fn masks(&self) -> &[Mask] {
        &self.masks
    }

    /// All row filters.
    pub fn row_filters(&self) -> &[RowFilter] {
        &self.row_filters
    }

    /// Looks up a user case-insensitively.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(&name.to_lowercase())
    }

    /// Decides whether `name` may log in now (`now_micros`); `loopback_only` tells whether the
    /// server listens on loopback only (demo passwords are refused otherwise).
    pub fn check_login(
        &self,
        name: &str,
        now_micros: i64,
        loopback_only: bool,
    ) -> Result<(&User, Principal), LoginRefusal> {
        let key = name.to_lowercase();
        let user = self.users.get(&key).ok_or(LoginRefusal::UnknownUser)?;
        if !user.enabled {
            return Err(LoginRefusal::Disabled);
        }
        if user.valid_until.is_some_and(|until| now_micros >= until) {
            return Err(LoginRefusal::Expired);
        }
        if user.demo && !loopback_only {
            return Err(LoginRefusal::DemoPasswordOffLoopback);
        }
        Ok((user, self.principal_of(&key, user)))
    }

    /// The principal for a user name, ignoring login restrictions (for tests and `check`).
    pub fn principal(&self, name: &str) -> Option<Principal> {
        let key = name.to_lowercase();
        self.users
            .get(&key)
            .map(|user| self.principal_of(&key, user))
    }

    fn principal_of(&self, key: &str, user: &User) -> Principal {
        let mut memberships = BTreeSet::new();
        memberships.insert(key.to_string());
        for role in &user.roles {
            memberships.insert(role.clone());
            memberships.extend(self.role_closure(role));
        }
        Principal {
            user: user.name.clone(),
            memberships,
        }
    }

    /// Every role reachable from `role` through role membership (not including itself unless
    /// there is a cycle).
    fn role_closure(&self, role: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<&str> = self
            .roles
            .get(role)
            .map(|r| r.roles.iter().map(String::as_str).collect())
            .unwrap_or_default();
        while let Some(next) = stack.pop() {
            if out.insert(next.to_string())
                && let Some(r) = self.roles.get(next)
            {
                stack.extend(r.roles.iter().map(String::as_str));
            }
        }
        out
    }

    /// Grants and denies that apply to `principal`.
    fn objects<'a>(&'a self, principal: &Principal) -> (Vec<&'a Object>, Vec<&'a Object>) {
        let mut grants = Vec::new();
        let mut denies = Vec::new();
        for member in &principal.memberships {
            if let Some(user) = self.users.get(member) {
                grants.extend(user.grants.iter());
                denies.extend(user.denies.iter());
            }
            if let Some(role) = self.roles.get(member) {
                grants.extend(role.grants.iter());
                denies.extend(role.denies.iter());
            }
        }
        (grants, denies)
    }

    /// What `principal` may read of `schema.table`, column by column (names lowercase).
    pub fn table_access(
        &self,
        principal: &Principal,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> TableAccess {
        let (grants, denies) = self.objects(principal);
        let covers = |object: &Object, column: &str| -> bool {
            match &object.target {
                ObjectRef::Database => schema != SYSTEM_SCHEMA,
                ObjectRef::Schema(s) => s == schema,
                ObjectRef::Table {
                    schema: s,
                    table: t,
                    columns: cols,
                } => {
                    s == schema
                        && t == table
                        && cols
                            .as_ref()
                            .is_none_or(|cols| cols.iter().any(|c| c == column))
                }
            }
        };
        // Denies of the whole database reach `sys` too.
        let denied = |column: &str| -> bool {
            denies.iter().any(|object| {
                matches!(object.target, ObjectRef::Database) || covers(object, column)
            })
        };
        let column_access = columns
            .iter()
            .map(|column| {
                if denied(column) || !grants.iter().any(|g| covers(g, column)) {
                    return ColumnAccess::Denied;
                }
                match self.masks.iter().find(|m| {
                    m.schema == schema
                        && m.table == table
                        && &m.column == column
                        && m.to.iter().any(|g| principal.is(g))
                }) {
                    Some(mask) => ColumnAccess::Masked(mask.kind.clone(), mask.origin.clone()),
                    None => ColumnAccess::Allowed,
                }
            })
            .collect();
        let row_filters = self
            .row_filters
            .iter()
            .filter(|f| {
                f.schema == schema && f.table == table && f.to.iter().any(|g| principal.is(g))
            })
            .map(|f| (f.filter.clone(), f.origin.clone()))
            .collect();
        TableAccess {
            columns: column_access,
            row_filters,
        }
    }

    /// Whether a schema is visible to `principal`: granted at database or schema level and not
    /// denied, or holding a visible table (the caller checks tables).
    pub fn schema_granted(&self, principal: &Principal, schema: &str) -> bool {
        let (grants, denies) = self.objects(principal);
        let hits = |object: &Object| match &object.target {
            ObjectRef::Database => schema != SYSTEM_SCHEMA,
            ObjectRef::Schema(s) => s == schema,
            ObjectRef::Table { .. } => false,
        };
        let denied = denies.iter().any(|o| {
            matches!(o.target, ObjectRef::Database)
                || matches!(&o.target, ObjectRef::Schema(s) if s == schema)
        });
        !denied && grants.iter().any(|o| hits(o))
    }

    /// Whether `principal` may connect to the database at all: it has some grant and no
    /// database-wide deny.
    pub fn database_granted(&self, principal: &Principal) -> bool {
        let (grants, denies) = self.objects(principal);
        !grants.is_empty()
            && !denies
                .iter()
                .any(|o| matches!(o.target, ObjectRef::Database))
    }

    /// Checks that every schema, table and column named by the policy exists in `catalog`.
    /// Tables of discovered schemas that are not in the lake yet give warnings, not errors.
    pub fn validate_objects(&self, catalog: &dyn CatalogInfo) -> (Diagnostics, Vec<String>) {
        let mut errors = Diagnostics::default();
        let mut warnings = Vec::new();
        let mut check_table =
            |schema: &str, table: &str, columns: &[(String, Location)], origin: &Location| {
                check_table_exists(
                    catalog,
                    schema,
                    table,
                    columns,
                    origin,
                    &mut errors,
                    &mut warnings,
                )
            };
        let objects = self
            .users
            .values()
            .flat_map(|u| u.grants.iter().chain(u.denies.iter()))
            .chain(
                self.roles
                    .values()
                    .flat_map(|r| r.grants.iter().chain(r.denies.iter())),
            );
        for object in objects {
            match &object.target {
                ObjectRef::Database => {}
                ObjectRef::Schema(schema) => {
                    if schema != SYSTEM_SCHEMA && !catalog.schema_exists(schema) {
                        check_table(schema, "", &[], &object.origin);
                    }
                }
                ObjectRef::Table {
                    schema,
                    table,
                    columns,
                } => {
                    let columns: Vec<(String, Location)> = columns
                        .iter()
                        .flatten()
                        .cloned()
                        .zip(object.columns_origin.iter().cloned())
                        .collect();
                    check_table(schema, table, &columns, &object.origin);
                }
            }
        }
        for mask in &self.masks {
            check_table(
                &mask.schema,
                &mask.table,
                &[(mask.column.clone(), mask.origin.clone())],
                &mask.origin,
            );
        }
        for filter in &self.row_filters {
            check_table(&filter.schema, &filter.table, &[], &filter.origin);
        }
        (errors, warnings)
    }
}

/// Reports an unknown schema, table or column; tables of discovered schemas that are not in
/// the lake yet are warnings.
fn check_table_exists(
    catalog: &dyn CatalogInfo,
    schema: &str,
    table: &str,
    columns: &[(String, Location)],
    origin: &Location,
    errors: &mut Diagnostics,
    warnings: &mut Vec<String>,
) {
    if schema != SYSTEM_SCHEMA && !catalog.schema_exists(schema) {
        errors.push(Diagnostic::at(
            origin.clone(),
            format!("unknown schema \"{schema}\""),
        ));
        return;
    }
    if schema == SYSTEM_SCHEMA {
        return;
    }
    match catalog.table_columns(schema, table) {
        Some(existing) => {
            for (column, at) in columns {
                if !existing.iter().any(|c| c == column) {
                    errors.push(Diagnostic::at(
                        at.clone(),
                        format!("unknown column \"{column}\" of table \"{schema}.{table}\""),
                    ));
                }
            }
        }
        None if catalog.schema_is_discovered(schema) => warnings.push(format!(
            "{origin}: table \"{schema}.{table}\" is not in the lake yet; the rule applies when it appears"
        )),
        None => errors.push(Diagnostic::at(
            origin.clone(),
            format!("unknown table \"{schema}.{table}\""),
        )),
    }
}

fn compile_objects(
    doc: &Document<GrantsFileSpec>,
    path: &YamlPath,
    specs: &[ObjectSpec],
    diagnostics: &mut Diagnostics,
) -> Vec<Object> {
    let mut out = Vec::new();
    for (idx, spec) in specs.iter().enumerate() {
        let path = path.index(idx);
        let origin = doc.locate(&path);
        let target = match (&spec.database, &spec.schema, &spec.table) {
            (Some(database), None, None) => {
                if !database.eq_ignore_ascii_case(crate::config::DATABASE_NAME) {
                    diagnostics.push(doc.error_at(
                        &path.key("database"),
                        format!(
                            "unknown database \"{database}\": this server serves \"{}\"",
                            crate::config::DATABASE_NAME
                        ),
                    ));
                    continue;
                }
                ObjectRef::Database
            }
            (None, Some(schema), None) => ObjectRef::Schema(schema.to_lowercase()),
            (None, None, Some(table)) => match split_table(table) {
                Some((schema, table)) => ObjectRef::Table {
                    schema,
                    table,
                    columns: spec
                        .columns
                        .as_ref()
                        .map(|cols| cols.iter().map(|c| c.to_lowercase()).collect()),
                },
                None => {
                    diagnostics.push(doc.error_at(
                        &path.key("table"),
                        format!("invalid table name \"{table}\": expected schema.table"),
                    ));
                    continue;
                }
            },
            _ => {
                diagnostics.push(
                    doc.error_at(&path, "name exactly one of `database`, `schema` or `table`"),
                );
                continue;
            }
        };
        if spec.columns.is_some() && spec.table.is_none() {
            diagnostics.push(doc.error_at(
                &path.key("columns"),
                "`columns` is only allowed with `table`",
            ));
        }
        let columns_origin = spec
            .columns
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, _)| doc.locate(&path.key("columns").index(i)))
            .collect();
        out.push(Object {
            target,
            origin,
            columns_origin,
        });
    }
    out
}

/// `schema.table` or `table` (schema `dbo`), lowercase.
fn split_table(name: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = name.trim().split('.').collect();
    let (schema, table) = match parts.as_slice() {
        [table] => ("dbo", *table),
        [schema, table] => (*schema, *table),
        _ => return None,
    };
    let (schema, table) = (schema.to_lowercase(), table.to_lowercase());
    (valid_name(&schema) && valid_name(&table)).then_some((schema, table))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// Checks the shape `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
fn check_scram_format(text: &str) -> Result<(), String> {
    let invalid = || {
        "scram must look like SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>; run `lakehouse passwd`"
            .to_string()
    };
    let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(invalid)?;
    let (params, keys) = rest.split_once('$').ok_or_else(invalid)?;
    let (iterations, salt) = params.split_once(':').ok_or_else(invalid)?;
    let (stored, server) = keys.split_once(':').ok_or_else(invalid)?;
    let iterations: u32 = iterations.parse().map_err(|_| invalid())?;
    if iterations < 4096 {
        return Err(format!(
            "scram iteration count {iterations} is below 4096, PostgreSQL's minimum default"
        ));
    }
    if salt.is_empty() || stored.is_empty() || server.is_empty() {
        return Err(invalid());
    }
    Ok(())
}

/// A policy with the generation it was published at.
#[derive(Debug, Clone, Default)]
pub struct PolicySnapshot {
    /// Increases with every accepted reload.
    pub generation: u64,
    /// The policy.
    pub policy: Policy,
}

/// The current policy, swapped atomically on reload: a statement sees the old policy or the new
/// one, never half of each.
#[derive(Debug, Default)]
pub struct PolicyStore {
    current: arc_swap::ArcSwap<PolicySnapshot>,
}

impl PolicyStore {
    /// A store holding `policy` at generation 1.
    pub fn new(policy: Policy) -> PolicyStore {
        PolicyStore {
            current: arc_swap::ArcSwap::from_pointee(PolicySnapshot {
                generation: 1,
                policy,
            }),
        }
    }

    /// The current snapshot.
    pub fn load(&self) -> std::sync::Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Publishes a new policy; returns its generation.
    pub fn replace(&self, policy: Policy) -> u64 {
        let generation = self.current.load().generation + 1;
        self.current
            .store(std::sync::Arc::new(PolicySnapshot { generation, policy }));
        generation
    }
}

#[cfg(test)]
mod tests;
