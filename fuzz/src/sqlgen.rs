//! A grammar-based SQL generator over the served tables, driven by libFuzzer's bytes through
//! [`arbitrary::Unstructured`] (so coverage guidance mutates the choices, not the text).
//!
//! It writes what BI tools and hostile users write: SELECT lists of typed expressions over the
//! columns of `dbo.dim_patient`, `dbo.fact_events` and `dbo.dim_doctors` (and
//! `information_schema`), WHERE / GROUP BY / HAVING / ORDER BY / LIMIT / OFFSET, joins of every
//! kind, derived tables, VALUES, CTEs, set operations, scalar / IN / EXISTS subqueries (some
//! correlated), casts in three syntaxes, string, numeric, date, array, aggregate and window
//! functions, IN lists and AND/OR chains thousands of terms long, deep nesting of functions,
//! parentheses and subqueries, and EXPLAIN [ANALYZE] [VERBOSE].
//!
//! What it never writes: the letters `z` and `q` inside a string literal or an alias, and no
//! function that turns codes into characters (`chr`, `decode`, ...). The leak oracle relies on
//! that: see [`crate::leak`]. [`Generator::statement`] checks its own output.

use arbitrary::Unstructured;

/// Types of the generated expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// int4
    Int,
    /// int8
    Big,
    /// text
    Text,
    /// boolean
    Bool,
    /// date
    Date,
    /// float8
    Float,
    /// text[]
    TextArr,
    /// bytea
    Bytes,
}

use Ty::*;

/// Types a select item may have when nothing asks for one.
const ITEM_TYPES: [Ty; 10] = [Int, Big, Text, Text, Bool, Date, Float, TextArr, Bytes, Int];
/// Types that compare and sort.
const SCALAR_TYPES: [Ty; 6] = [Int, Big, Text, Bool, Date, Float];

/// A served relation: SQL names that reach it, and its columns.
struct Table {
    names: &'static [&'static str],
    columns: &'static [(&'static str, Ty)],
}

const TABLES: &[Table] = &[
    Table {
        names: &[
            "dbo.dim_patient",
            "dim_patient",
            "\"dbo\".\"dim_patient\"",
            "DBO.DIM_PATIENT",
            "ikhospital_dw.dbo.dim_patient",
        ],
        columns: &[
            ("id_patient", Int),
            ("name", Text),
            ("sex", Text),
            ("age", Int),
            ("address", Text),
            ("country", Text),
            ("number", Text),
            ("email", Text),
        ],
    },
    Table {
        names: &["dbo.fact_events", "fact_events", "\"fact_events\""],
        columns: &[
            ("id", Big),
            ("id_patient", Int),
            ("age", Int),
            ("id_doctor", Int),
            ("id_smoke", Int),
            ("symptoms", Text),
            ("date_of_service", Date),
        ],
    },
    Table {
        names: &["dbo.dim_doctors", "dim_doctors"],
        columns: &[
            ("id_doctor", Int),
            ("area", Text),
            ("name", Text),
            ("shift", Text),
        ],
    },
];

const INFORMATION_SCHEMA: Table = Table {
    names: &["information_schema.columns"],
    columns: &[
        ("table_schema", Text),
        ("table_name", Text),
        ("column_name", Text),
        ("data_type", Text),
    ],
};

/// String literals (no `z`, no `q`; quotes are doubled when written).
const TEXTS: &[&str] = &[
    "Portugal",
    "Germany",
    "Brazil",
    "F",
    "M",
    "Cough",
    "****",
    "",
    "a",
    "%",
    "_",
    "%a%",
    "P%",
    "%7",
    "Patient",
    "Patient 17",
    " Patient 1",
    "Test",
    "Dr. Test 1",
    "Morning",
    "Cardiologist",
    " ",
    ",",
    "x",
    "O'Brien",
    "2020-01-01",
    "1",
    "-1",
    "1e3",
    "NaN",
    "Infinity",
    "t",
    "true",
    "\u{e9}t\u{e9}",
    "\u{1f600}",
    "\\",
    "patient17@example.invalid",
    "Fake Street",
    "+000 555 0017",
    "^[A-P]",
    ".*",
    "(a|b)+",
];

/// Characters of generated strings (no `z`, no `q`).
const ALPHABET: &[u8] =
    b"abcdefghijklmnoprstuvwxyABCDEFGHIJKLMNOPRSTUVWXY0123456789 %_-.,*'/()[]{}";

/// Output size after which the generator only writes leaves.
const BUDGET: usize = 24_000;

/// A column in scope: how to reference it and its type.
#[derive(Clone, Debug)]
struct Col {
    sql: String,
    ty: Ty,
}

/// A CTE visible to the query being written.
#[derive(Clone, Debug)]
struct Cte {
    name: String,
    columns: Vec<(String, Ty)>,
}

/// Where an expression goes: what it may reference and whether aggregates or window
/// functions are allowed there.
#[derive(Clone, Copy)]
struct Ctx<'s> {
    scope: &'s [Col],
    agg: bool,
    window: bool,
}

/// The generator; one per input.
pub struct Generator<'a, 'u> {
    u: &'u mut Unstructured<'a>,
    depth: u32,
    max_depth: u32,
    emitted: usize,
    next_id: u32,
    ctes: Vec<Cte>,
}

impl<'a, 'u> Generator<'a, 'u> {
    /// A generator reading its choices from `u`.
    pub fn new(u: &'u mut Unstructured<'a>) -> Self {
        let max_depth = 3 + u.int_in_range(0..=6u32).unwrap_or(0);
        Generator {
            u,
            depth: 0,
            max_depth,
            emitted: 0,
            next_id: 0,
            ctes: Vec::new(),
        }
    }

    // ---- choices -------------------------------------------------------------------------

    fn pick(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.u.choose_index(n).unwrap_or(0)
    }

    /// `num` in `den`; false once the input is used up (arbitrary's `ratio` says true then).
    fn chance(&mut self, num: u8, den: u8) -> bool {
        !self.u.is_empty() && self.u.ratio(num, den).unwrap_or(false)
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.u.int_in_range(lo..=hi).unwrap_or(lo)
    }

    fn one<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.pick(items.len())]
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn exhausted(&self) -> bool {
        self.emitted > BUDGET || self.depth >= self.max_depth
    }

    fn emit(&mut self, s: String) -> String {
        self.emitted += s.len();
        s
    }

    // ---- statements ----------------------------------------------------------------------

    /// One statement, EXPLAIN or not. Never contains the leak marker.
    pub fn statement(&mut self) -> String {
        let sql = match self.pick(26) {
            0 => self.odd_statement(),
            24 | 25 => {
                // COPY TO STDOUT: the same query path, written as COPY data.
                let options = self.one(&[
                    "",
                    " (FORMAT csv, HEADER)",
                    " (FORMAT csv, FORCE_QUOTE *)",
                    " (FORMAT binary)",
                    " WITH CSV HEADER",
                    " (DELIMITER '|', NULL 'null')",
                ]);
                format!("COPY ({}) TO STDOUT{options}", self.query(None).0)
            }
            1..=5 => {
                let prefix = self.one(&[
                    "EXPLAIN ",
                    "EXPLAIN VERBOSE ",
                    "EXPLAIN ANALYZE ",
                    "EXPLAIN ANALYZE VERBOSE ",
                    "explain ",
                ]);
                format!("{prefix}{}", self.query(None).0)
            }
            _ => self.query(None).0,
        };
        assert!(
            !crate::leak::contains_marker(sql.as_bytes()),
            "generator bug: wrote the leak marker: {sql}"
        );
        sql
    }

    /// Statements that are not a plain query.
    fn odd_statement(&mut self) -> String {
        match self.pick(10) {
            0 => "SHOW search_path".to_string(),
            1 => "SELECT current_user, session_user, current_database(), current_schema()"
                .to_string(),
            2 => "SELECT version()".to_string(),
            3 => {
                let rows = self.int(1, 4);
                let values: Vec<String> = (0..rows)
                    .map(|_| format!("({}, {})", self.literal(Int), self.literal(Text)))
                    .collect();
                format!("VALUES {}", values.join(", "))
            }
            4 => "SHOW ALL".to_string(),
            5 => "BEGIN".to_string(),
            6 => "COMMIT".to_string(),
            7 => {
                // A deep tower of subqueries.
                let n = self.int(1, crate::known::subquery_tower_cap());
                let mut sql = format!("SELECT {}", self.literal(Int));
                for _ in 0..n {
                    sql = format!("SELECT ({sql})");
                }
                self.emit(sql)
            }
            8 => {
                // Many UNION ALL branches.
                let n = self.int(2, 1200);
                let table = self.one(&["dbo.dim_patient", "dbo.dim_doctors"]);
                let branches: Vec<String> = (0..n)
                    .map(|i| {
                        format!(
                            "SELECT name, {i} AS n FROM {table} WHERE id_{} = {}",
                            if table.contains("doctor") {
                                "doctor"
                            } else {
                                "patient"
                            },
                            i % 41
                        )
                    })
                    .collect();
                self.emit(branches.join(" UNION ALL "))
            }
            _ => {
                // Wide select list.
                let n = self.int(1, 1800);
                let items: Vec<String> = (0..n).map(|i| format!("name AS c{i}")).collect();
                self.emit(format!("SELECT {} FROM dbo.dim_patient", items.join(", ")))
            }
        }
    }

    // ---- queries -------------------------------------------------------------------------

    /// A query (WITH, set operations, ORDER BY, LIMIT) and the types of its columns.
    fn query(&mut self, want: Option<Vec<Ty>>) -> (String, Vec<Ty>) {
        self.depth += 1;
        let visible = self.ctes.len();
        let mut sql = String::new();
        if !self.exhausted() && self.chance(1, 5) {
            let n = self.int(1, 2);
            let mut defs = Vec::new();
            for _ in 0..n {
                let name = self.fresh("cte");
                let (body, tys) = self.query(None);
                let columns: Vec<(String, Ty)> = tys
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("x{i}"), *t))
                    .collect();
                let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
                defs.push(format!("{name}({}) AS ({body})", names.join(", ")));
                self.ctes.push(Cte { name, columns });
            }
            sql.push_str("WITH ");
            sql.push_str(&defs.join(", "));
            sql.push(' ');
        }
        let (body, tys) = self.set_expr(want);
        sql.push_str(&body);
        if !tys.is_empty() && self.chance(1, 3) {
            let n = self.int(1, tys.len().min(3) as i64);
            let keys: Vec<String> = (0..n)
                .map(|_| {
                    let position = self.int(1, tys.len() as i64);
                    let direction =
                        self.one(&["", " ASC", " DESC", " DESC NULLS LAST", " NULLS FIRST"]);
                    format!("{position}{direction}")
                })
                .collect();
            sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
        }
        if self.chance(1, 3) {
            let limit = self.one(&[0i64, 1, 2, 5, 10, 100, 1_000_000, i64::MAX]);
            sql.push_str(&format!(" LIMIT {limit}"));
            if self.chance(1, 3) {
                let offset = self.one(&[0i64, 1, 3, 39, 1000]);
                sql.push_str(&format!(" OFFSET {offset}"));
            }
        }
        self.ctes.truncate(visible);
        self.depth -= 1;
        (self.emit(sql), tys)
    }

    fn set_expr(&mut self, want: Option<Vec<Ty>>) -> (String, Vec<Ty>) {
        if !self.exhausted() && self.chance(1, 6) {
            let (left, tys) = self.select(want);
            let op = self.one(&[
                "UNION",
                "UNION ALL",
                "INTERSECT",
                "EXCEPT",
                "INTERSECT ALL",
                "EXCEPT ALL",
            ]);
            let (right, _) = self.select(Some(tys.clone()));
            let sql = if self.chance(1, 3) {
                format!("({left}) {op} ({right})")
            } else {
                format!("{left} {op} {right}")
            };
            return (sql, tys);
        }
        if self.chance(1, 14) {
            let tys = want.unwrap_or_else(|| {
                let n = self.int(1, 3);
                (0..n).map(|_| self.one(&SCALAR_TYPES)).collect()
            });
            let rows = self.int(1, 4);
            let rows: Vec<String> = (0..rows)
                .map(|_| {
                    let values: Vec<String> = tys.iter().map(|t| self.literal(*t)).collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            return (format!("VALUES {}", rows.join(", ")), tys);
        }
        self.select(want)
    }

    fn select(&mut self, want: Option<Vec<Ty>>) -> (String, Vec<Ty>) {
        self.depth += 1;
        let from = if self.chance(1, 10) {
            None
        } else {
            Some(self.from_clause())
        };
        let scope: Vec<Col> = from.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
        let mode = if scope.is_empty() { 0 } else { self.pick(6) };
        // 0-2: plain, 3-4: GROUP BY, 5: aggregates over everything.
        let grouped = mode == 3 || mode == 4;
        let all_agg = mode == 5;
        let group_cols: Vec<Col> = if grouped {
            let n = self.int(1, 2);
            (0..n)
                .map(|_| scope[self.pick(scope.len())].clone())
                .collect()
        } else {
            Vec::new()
        };
        let mut items = Vec::new();
        let mut tys = Vec::new();
        let star = want.is_none() && !grouped && !all_agg && !scope.is_empty() && self.chance(1, 8);
        if star {
            items.push("*".to_string());
            tys.extend(scope.iter().map(|c| c.ty));
        } else {
            let wanted = want.clone().unwrap_or_else(|| {
                let n = if self.chance(1, 40) {
                    self.int(1, 60)
                } else {
                    self.int(1, 4)
                };
                (0..n).map(|_| self.one(&ITEM_TYPES)).collect()
            });
            for (i, ty) in wanted.iter().enumerate() {
                let expr = if grouped {
                    let matching: Vec<&Col> = group_cols.iter().filter(|c| c.ty == *ty).collect();
                    if !matching.is_empty() && self.chance(1, 2) {
                        matching[self.pick(matching.len())].sql.clone()
                    } else {
                        self.aggregate(*ty, &scope)
                    }
                } else if all_agg {
                    self.aggregate(*ty, &scope)
                } else {
                    let ctx = Ctx {
                        scope: &scope,
                        agg: false,
                        window: !scope.is_empty(),
                    };
                    self.expr(*ty, ctx)
                };
                if self.chance(1, 2) {
                    items.push(format!("{expr} AS a{i}"));
                } else {
                    items.push(expr);
                }
                tys.push(*ty);
            }
        }
        let distinct = if self.chance(1, 10) { "DISTINCT " } else { "" };
        let mut sql = format!("SELECT {distinct}{}", items.join(", "));
        if let Some((from_sql, _)) = &from {
            sql.push_str(" FROM ");
            sql.push_str(from_sql);
        }
        if !scope.is_empty() && self.chance(1, 2) {
            let ctx = Ctx {
                scope: &scope,
                agg: false,
                window: false,
            };
            let predicate = self.expr(Bool, ctx);
            sql.push_str(" WHERE ");
            sql.push_str(&predicate);
        }
        if grouped {
            let keys: Vec<String> = group_cols.iter().map(|c| c.sql.clone()).collect();
            sql.push_str(" GROUP BY ");
            sql.push_str(&keys.join(", "));
        }
        if (grouped || all_agg) && self.chance(1, 3) {
            let having = self.having(&scope);
            sql.push_str(" HAVING ");
            sql.push_str(&having);
        }
        self.depth -= 1;
        (self.emit(sql), tys)
    }

    fn having(&mut self, scope: &[Col]) -> String {
        let ty = self.one(&[Int, Big, Text, Date]);
        let left = self.aggregate(ty, scope);
        let right = self.literal(ty);
        let op = self.one(&["=", "<>", "<", ">", "<=", ">="]);
        format!("{left} {op} {right}")
    }

    fn from_clause(&mut self) -> (String, Vec<Col>) {
        let (mut sql, mut scope) = self.table_ref();
        let joins = if self.exhausted() {
            0
        } else {
            self.one(&[0, 0, 0, 1, 1, 2, 3])
        };
        for _ in 0..joins {
            let (right, right_cols) = self.table_ref();
            let kind = self.one(&[
                "JOIN",
                "INNER JOIN",
                "LEFT JOIN",
                "RIGHT JOIN",
                "FULL JOIN",
                "LEFT OUTER JOIN",
                "CROSS JOIN",
                ",",
            ]);
            let mut both = scope.clone();
            both.extend(right_cols.iter().cloned());
            if kind == "CROSS JOIN" || kind == "," {
                sql = format!(
                    "{sql}{} {right}",
                    if kind == "," { "," } else { " CROSS JOIN" }
                );
            } else {
                let on = self.join_condition(&scope, &right_cols, &both);
                sql = format!("{sql} {kind} {right} ON {on}");
            }
            scope = both;
        }
        (self.emit(sql), scope)
    }

    fn join_condition(&mut self, left: &[Col], right: &[Col], both: &[Col]) -> String {
        let ints = |cols: &[Col]| -> Vec<Col> {
            cols.iter()
                .filter(|c| matches!(c.ty, Int | Big))
                .cloned()
                .collect()
        };
        let (l, r) = (ints(left), ints(right));
        if !l.is_empty() && !r.is_empty() && self.chance(3, 4) {
            let a = l[self.pick(l.len())].sql.clone();
            let b = r[self.pick(r.len())].sql.clone();
            if self.chance(1, 4) {
                let ctx = Ctx {
                    scope: both,
                    agg: false,
                    window: false,
                };
                let extra = self.expr(Bool, ctx);
                return format!("{a} = {b} AND {extra}");
            }
            return format!("{a} = {b}");
        }
        let ctx = Ctx {
            scope: both,
            agg: false,
            window: false,
        };
        self.expr(Bool, ctx)
    }

    /// A relation in FROM, with an alias, and its columns.
    fn table_ref(&mut self) -> (String, Vec<Col>) {
        let alias = self.fresh("t");
        let choice = if self.exhausted() {
            self.pick(6)
        } else {
            self.pick(10)
        };
        match choice {
            6 | 7 if !self.exhausted() => {
                let (body, tys) = self.query(None);
                let names: Vec<String> = (0..tys.len()).map(|i| format!("x{i}")).collect();
                let cols = names
                    .iter()
                    .zip(&tys)
                    .map(|(n, t)| Col {
                        sql: format!("{alias}.{n}"),
                        ty: *t,
                    })
                    .collect();
                (format!("({body}) AS {alias}({})", names.join(", ")), cols)
            }
            8 if !self.ctes.is_empty() => {
                let index = self.pick(self.ctes.len());
                let cte = self.ctes[index].clone();
                let cols = cte
                    .columns
                    .iter()
                    .map(|(n, t)| Col {
                        sql: format!("{alias}.{n}"),
                        ty: *t,
                    })
                    .collect();
                (format!("{} AS {alias}", cte.name), cols)
            }
            9 => {
                let tys: Vec<Ty> = (0..self.int(1, 3))
                    .map(|_| self.one(&SCALAR_TYPES))
                    .collect();
                let rows = self.int(1, 5);
                let rows: Vec<String> = (0..rows)
                    .map(|_| {
                        let values: Vec<String> = tys.iter().map(|t| self.literal(*t)).collect();
                        format!("({})", values.join(", "))
                    })
                    .collect();
                let names: Vec<String> = (0..tys.len()).map(|i| format!("x{i}")).collect();
                let cols = names
                    .iter()
                    .zip(&tys)
                    .map(|(n, t)| Col {
                        sql: format!("{alias}.{n}"),
                        ty: *t,
                    })
                    .collect();
                (
                    format!(
                        "(VALUES {}) AS {alias}({})",
                        rows.join(", "),
                        names.join(", ")
                    ),
                    cols,
                )
            }
            _ => {
                let table = if self.chance(1, 30) {
                    &INFORMATION_SCHEMA
                } else {
                    &TABLES[self.pick(TABLES.len())]
                };
                let name = table.names[self.pick(table.names.len())];
                if self.chance(1, 8) {
                    // No alias: columns by their bare names (ambiguous in some joins: fine).
                    let cols = table
                        .columns
                        .iter()
                        .map(|(n, t)| Col {
                            sql: n.to_string(),
                            ty: *t,
                        })
                        .collect();
                    return (name.to_string(), cols);
                }
                let quoted = self.chance(1, 6);
                let cols = table
                    .columns
                    .iter()
                    .map(|(n, t)| Col {
                        sql: if quoted {
                            format!("\"{alias}\".\"{n}\"")
                        } else {
                            format!("{alias}.{n}")
                        },
                        ty: *t,
                    })
                    .collect();
                (format!("{name} AS {alias}"), cols)
            }
        }
    }

    // ---- expressions ---------------------------------------------------------------------

    fn column(&mut self, ty: Ty, scope: &[Col]) -> Option<String> {
        let matching: Vec<&Col> = scope
            .iter()
            .filter(|c| c.ty == ty || (matches!(ty, Int | Big) && matches!(c.ty, Int | Big)))
            .collect();
        if matching.is_empty() {
            return None;
        }
        Some(matching[self.pick(matching.len())].sql.clone())
    }

    fn leaf(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        if self.chance(2, 3)
            && let Some(column) = self.column(ty, ctx.scope)
        {
            return self.emit(column);
        }
        match ty {
            TextArr => {
                let a = self.literal(Text);
                let b = self.literal(Text);
                format!("ARRAY[{a}, {b}]")
            }
            Bytes => {
                if let Some(text) = self.column(Text, ctx.scope) {
                    format!("CAST({text} AS BYTEA)")
                } else {
                    self.literal(Bytes)
                }
            }
            _ => self.literal(ty),
        }
    }

    /// A literal of a type.
    fn literal(&mut self, ty: Ty) -> String {
        let s = match ty {
            Int => {
                let v = self.one(&[
                    0i64,
                    1,
                    2,
                    3,
                    7,
                    13,
                    17,
                    40,
                    41,
                    -1,
                    100,
                    2_147_483_647,
                    -2_147_483_648,
                    i64::MIN + 1,
                ]);
                if v == i64::MIN + 1 {
                    self.int(-1000, 1000).to_string()
                } else {
                    v.to_string()
                }
            }
            Big => self
                .one(&[
                    "9223372036854775807",
                    "-9223372036854775807",
                    "4294967296",
                    "CAST(1 AS BIGINT)",
                    "200",
                    "0",
                ])
                .to_string(),
            Text => self.text_literal(),
            Bool => self
                .one(&["TRUE", "FALSE", "NULL::boolean", "'t'::boolean"])
                .to_string(),
            Date => self
                .one(&[
                    "DATE '2020-01-01'",
                    "DATE '2022-09-26'",
                    "CAST('2021-06-30' AS DATE)",
                    "'2020-02-29'::date",
                    "current_date",
                    "DATE '1970-01-01'",
                    "DATE '9999-12-31'",
                ])
                .to_string(),
            Float => self
                .one(&[
                    "0.5",
                    "-1.25",
                    "1e308",
                    "'NaN'::double precision",
                    "'Infinity'::float8",
                    "3.14159",
                    "CAST(1 AS DOUBLE PRECISION)",
                    "-0.0",
                ])
                .to_string(),
            TextArr => {
                let a = self.text_literal();
                format!("ARRAY[{a}]")
            }
            Bytes => {
                let a = self.text_literal();
                format!("CAST({a} AS BYTEA)")
            }
        };
        self.emit(s)
    }

    fn text_literal(&mut self) -> String {
        let raw: String = if self.chance(1, 4) {
            let n = self.int(0, 16) as usize;
            (0..n)
                .map(|_| ALPHABET[self.pick(ALPHABET.len())] as char)
                .collect()
        } else {
            TEXTS[self.pick(TEXTS.len())].to_string()
        };
        format!("'{}'", raw.replace('\'', "''"))
    }

    /// An expression of type `ty`.
    fn expr(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        if self.exhausted() {
            return self.leaf(ty, ctx);
        }
        self.depth += 1;
        let s = match self.pick(12) {
            0 | 1 => self.leaf(ty, ctx),
            2 => self.generic(ty, ctx),
            _ => match ty {
                Int | Big => self.int_expr(ty, ctx),
                Text => self.text_expr(ctx),
                Bool => self.bool_expr(ctx),
                Date => self.date_expr(ctx),
                Float => self.float_expr(ctx),
                TextArr => self.array_expr(ctx),
                Bytes => self.bytes_expr(ctx),
            },
        };
        self.depth -= 1;
        self.emit(s)
    }

    /// Productions of any type: CASE, COALESCE, NULLIF, casts, scalar subqueries, windows,
    /// parentheses.
    fn generic(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        match self.pick(9) {
            0 => {
                let when = self.expr(Bool, ctx);
                let then = self.expr(ty, ctx);
                let otherwise = self.expr(ty, ctx);
                format!("CASE WHEN {when} THEN {then} ELSE {otherwise} END")
            }
            1 => {
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                if self.chance(1, 2) {
                    format!("COALESCE({a}, {b})")
                } else {
                    format!("NULLIF({a}, {b})")
                }
            }
            2 => self.cast_to(ty, ctx),
            3 if ctx.agg => self.aggregate(ty, ctx.scope),
            4 if ctx.window && !ctx.scope.is_empty() => self.window(ty, ctx),
            5 if !matches!(ty, TextArr | Bytes) => self.scalar_subquery(ty, ctx),
            6 => {
                let inner = self.expr(ty, ctx);
                format!("({inner})")
            }
            7 => {
                let subject = self.expr(Int, ctx);
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                format!("CASE {subject} WHEN 1 THEN {a} WHEN 2 THEN {b} END")
            }
            _ => self.deep(ty, ctx),
        }
    }

    /// Very deep or very long expressions (the statement shape limits must refuse them
    /// cleanly or answer them).
    fn deep(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        let n = if self.chance(1, 4) {
            self.int(1, 1500) as usize
        } else {
            self.int(1, 40) as usize
        };
        let leaf = self.leaf(ty, ctx);
        // Towers of function calls: see `crate::known`.
        let calls = n.min(crate::known::call_tower_cap());
        let s = match ty {
            Int | Big => match self.pick(3) {
                0 => format!("{}{leaf}{}", "abs(".repeat(calls), ")".repeat(calls)),
                1 => format!("{}{leaf}{}", "(".repeat(n), ")".repeat(n)),
                _ => {
                    let terms: Vec<String> = (0..n).map(|i| format!("{leaf} + {i}")).collect();
                    terms.join(" + ")
                }
            },
            Text => match self.pick(3) {
                0 => format!(
                    "{}{leaf}{}",
                    "upper(lower(".repeat(calls / 2),
                    "))".repeat(calls / 2)
                ),
                1 => {
                    let parts: Vec<String> = (0..n).map(|_| leaf.clone()).collect();
                    format!("concat({})", parts.join(", "))
                }
                _ => {
                    let parts: Vec<String> = (0..n.min(300)).map(|_| leaf.clone()).collect();
                    parts.join(" || ")
                }
            },
            Bool => {
                let column = self
                    .column(Int, ctx.scope)
                    .unwrap_or_else(|| "1".to_string());
                match self.pick(4) {
                    0 => {
                        let list: Vec<String> = (0..n * 3).map(|i| i.to_string()).collect();
                        format!("{column} IN ({})", list.join(", "))
                    }
                    1 => {
                        let terms: Vec<String> =
                            (0..n).map(|i| format!("{column} = {i}")).collect();
                        format!("({})", terms.join(" OR "))
                    }
                    2 => {
                        let terms: Vec<String> =
                            (0..n).map(|i| format!("{column} <> {i}")).collect();
                        format!("({})", terms.join(" AND "))
                    }
                    _ => format!("{}{leaf}", "NOT ".repeat(n)),
                }
            }
            _ => format!("{}{leaf}{}", "(".repeat(n), ")".repeat(n)),
        };
        self.emit(s)
    }

    fn type_name(&mut self, ty: Ty) -> &'static str {
        match ty {
            Int => self.one(&["INT", "INTEGER", "INT4", "SMALLINT"]),
            Big => self.one(&["BIGINT", "INT8"]),
            Text => self.one(&["TEXT", "VARCHAR", "VARCHAR(3)", "CHAR(2)"]),
            Bool => self.one(&["BOOLEAN", "BOOL"]),
            Date => self.one(&["DATE", "TIMESTAMP"]),
            Float => self.one(&[
                "DOUBLE PRECISION",
                "FLOAT8",
                "REAL",
                "NUMERIC(10,2)",
                "DECIMAL",
            ]),
            TextArr => "TEXT[]",
            Bytes => "BYTEA",
        }
    }

    fn cast_to(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        let from = self.one(&SCALAR_TYPES);
        let inner = self.expr(from, ctx);
        let name = self.type_name(ty);
        match self.pick(3) {
            0 => format!("CAST({inner} AS {name})"),
            1 => format!("({inner})::{name}"),
            _ => format!("TRY_CAST({inner} AS {name})"),
        }
    }

    fn int_expr(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        match self.pick(16) {
            0..=2 => {
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                let op = self.one(&["+", "-", "*", "/", "%"]);
                format!("{a} {op} {b}")
            }
            3 => {
                let a = self.expr(ty, ctx);
                format!("abs({a})")
            }
            4 => {
                let t = self.expr(Text, ctx);
                let f = self.one(&[
                    "length",
                    "char_length",
                    "octet_length",
                    "bit_length",
                    "ascii",
                ]);
                format!("{f}({t})")
            }
            5 => {
                let a = self.expr(Text, ctx);
                let b = self.expr(Text, ctx);
                if self.chance(1, 2) {
                    format!("strpos({a}, {b})")
                } else {
                    format!("position({b} IN {a})")
                }
            }
            6 => {
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                let f = self.one(&["greatest", "least"]);
                format!("{f}({a}, {b})")
            }
            7 => {
                let d = self.expr(Date, ctx);
                let part = self.one(&["YEAR", "MONTH", "DAY", "DOW", "EPOCH"]);
                format!("CAST(EXTRACT({part} FROM {d}) AS INT)")
            }
            8 => {
                let a = self.expr(TextArr, ctx);
                format!("cardinality({a})")
            }
            9 => {
                let a = self.expr(ty, ctx);
                format!("-{a}")
            }
            10 => {
                let f = self.expr(Float, ctx);
                format!("CAST(round({f}) AS BIGINT)")
            }
            11 => {
                let t = self.expr(Text, ctx);
                format!("CAST({t} AS INT)")
            }
            12 => {
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                let op = self.one(&["&", "|", "#", "<<", ">>"]);
                format!("({a} {op} {b})")
            }
            _ => {
                let a = self.expr(ty, ctx);
                format!("({a})")
            }
        }
    }

    fn text_expr(&mut self, ctx: Ctx<'_>) -> String {
        match self.pick(26) {
            0 => format!("lower({})", self.expr(Text, ctx)),
            1 => format!("upper({})", self.expr(Text, ctx)),
            2 => {
                let t = self.expr(Text, ctx);
                let i = self.expr(Int, ctx);
                format!("substr({t}, {i})")
            }
            3 => {
                let t = self.expr(Text, ctx);
                let i = self.int(-2, 20);
                let j = self.int(-1, 20);
                if self.chance(1, 2) {
                    format!("substr({t}, {i}, {j})")
                } else {
                    format!("substring({t} FROM {i} FOR {j})")
                }
            }
            4 => {
                let t = self.expr(Text, ctx);
                let n = if self.chance(1, 8) {
                    self.expr(Int, ctx)
                } else {
                    self.int(0, 5).to_string()
                };
                format!("repeat({t}, {n})")
            }
            5 => {
                let t = self.expr(Text, ctx);
                let n = self.int(-1, 30);
                let f = self.one(&["lpad", "rpad"]);
                if self.chance(1, 2) {
                    let fill = self.expr(Text, ctx);
                    format!("{f}({t}, {n}, {fill})")
                } else {
                    format!("{f}({t}, {n})")
                }
            }
            6 => {
                let n = self.int(1, 4);
                let parts: Vec<String> = (0..n)
                    .map(|_| {
                        let ty = self.one(&[Text, Text, Int, Date, Bool]);
                        self.expr(ty, ctx)
                    })
                    .collect();
                format!("concat({})", parts.join(", "))
            }
            7 => {
                let a = self.expr(Text, ctx);
                let b = self.expr(Text, ctx);
                format!("{a} || {b}")
            }
            8 => {
                let t = self.expr(Text, ctx);
                let f = self.one(&[
                    "trim", "btrim", "ltrim", "rtrim", "initcap", "reverse", "md5",
                ]);
                format!("{f}({t})")
            }
            9 => {
                let t = self.expr(Text, ctx);
                let n = self.int(-3, 10);
                let f = self.one(&["left", "right"]);
                format!("{f}({t}, {n})")
            }
            10 => {
                let t = self.expr(Text, ctx);
                let a = self.expr(Text, ctx);
                let b = self.expr(Text, ctx);
                format!("replace({t}, {a}, {b})")
            }
            11 => {
                let t = self.expr(Text, ctx);
                let sep = self.text_literal();
                let n = self.int(-1, 4);
                format!("split_part({t}, {sep}, {n})")
            }
            12 => {
                let i = self.expr(Int, ctx);
                format!("to_hex({i})")
            }
            13 => {
                let t = self.expr(Text, ctx);
                let pattern = self.text_literal();
                let with = self.expr(Text, ctx);
                if self.chance(1, 2) {
                    format!("regexp_replace({t}, {pattern}, {with})")
                } else {
                    format!("regexp_replace({t}, {pattern}, {with}, 'g')")
                }
            }
            14 => {
                let sep = self.text_literal();
                let a = self.expr(Text, ctx);
                let b = self.expr(Text, ctx);
                format!("concat_ws({sep}, {a}, {b})")
            }
            15 => {
                let a = self.expr(TextArr, ctx);
                let sep = self.text_literal();
                format!("array_to_string({a}, {sep})")
            }
            16 => {
                let t = self.expr(Text, ctx);
                let from = self.text_literal();
                let to = self.text_literal();
                format!("translate({t}, {from}, {to})")
            }
            17 => {
                let ty = self.one(&SCALAR_TYPES);
                let x = self.expr(ty, ctx);
                format!("CAST({x} AS TEXT)")
            }
            18 => {
                let ty = self.one(&SCALAR_TYPES);
                let x = self.expr(ty, ctx);
                format!("{x}::text")
            }
            19 => {
                let t = self.expr(Text, ctx);
                format!("encode(sha256({t}), 'hex')")
            }
            20 => {
                let t = self.expr(Text, ctx);
                format!("quote_ident({t})")
            }
            21 => {
                let a = self.expr(TextArr, ctx);
                let i = self.int(0, 3);
                format!("{a}[{i}]")
            }
            22 => {
                let t = self.expr(Text, ctx);
                format!("CAST(CAST({t} AS BYTEA) AS TEXT)")
            }
            23 => {
                let t = self.expr(Text, ctx);
                let n = self.int(1, 3);
                format!("substr(upper({t}), {n}) || lower({t})")
            }
            _ => {
                let t = self.expr(Text, ctx);
                format!("({t})")
            }
        }
    }

    fn bool_expr(&mut self, ctx: Ctx<'_>) -> String {
        match self.pick(18) {
            0..=3 => {
                let ty = self.one(&SCALAR_TYPES);
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                let op = self.one(&[
                    "=",
                    "<>",
                    "<",
                    "<=",
                    ">",
                    ">=",
                    "!=",
                    "IS DISTINCT FROM",
                    "IS NOT DISTINCT FROM",
                ]);
                format!("{a} {op} {b}")
            }
            4 => {
                let t = self.expr(Text, ctx);
                let pattern = self.text_literal();
                let op = self.one(&["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "~", "~*", "!~"]);
                format!("{t} {op} {pattern}")
            }
            5 => {
                let ty = self.one(&[Int, Big, Text, Date]);
                let x = self.expr(ty, ctx);
                let n = if self.chance(1, 8) {
                    self.int(1, 2000)
                } else {
                    self.int(1, 6)
                };
                let list: Vec<String> = (0..n).map(|_| self.literal(ty)).collect();
                let not = if self.chance(1, 3) { "NOT " } else { "" };
                format!("{x} {not}IN ({})", list.join(", "))
            }
            6 if !self.exhausted() => {
                let ty = self.one(&[Int, Big, Text, Date]);
                let x = self.expr(ty, ctx);
                let (sub, _, _) = self.subquery(Some(vec![ty]), ctx);
                let not = if self.chance(1, 3) { "NOT " } else { "" };
                format!("{x} {not}IN ({sub})")
            }
            7 if !self.exhausted() => {
                let (sub, _, _) = self.subquery(None, ctx);
                let not = if self.chance(1, 3) { "NOT " } else { "" };
                format!("{not}EXISTS ({sub})")
            }
            8 => {
                let ty = self.one(&[Int, Big, Text, Date, Float]);
                let x = self.expr(ty, ctx);
                let a = self.expr(ty, ctx);
                let b = self.expr(ty, ctx);
                let not = if self.chance(1, 3) { "NOT " } else { "" };
                format!("{x} {not}BETWEEN {a} AND {b}")
            }
            9 => {
                let ty = self.one(&SCALAR_TYPES);
                let x = self.expr(ty, ctx);
                let test = self.one(&["IS NULL", "IS NOT NULL"]);
                format!("{x} {test}")
            }
            10 | 11 => {
                let n = if self.chance(1, 10) {
                    self.int(2, 60)
                } else {
                    2
                };
                let op = self.one(&[" AND ", " OR "]);
                let terms: Vec<String> = (0..n).map(|_| self.expr(Bool, ctx)).collect();
                format!("({})", terms.join(op))
            }
            12 => format!("NOT ({})", self.expr(Bool, ctx)),
            13 => {
                let t = self.expr(Text, ctx);
                let prefix = self.text_literal();
                format!("starts_with({t}, {prefix})")
            }
            14 => {
                let b = self.expr(Bool, ctx);
                let test = self.one(&["IS TRUE", "IS NOT FALSE", "IS UNKNOWN"]);
                format!("({b}) {test}")
            }
            15 => {
                let ty = self.one(&[Int, Text]);
                let x = self.expr(ty, ctx);
                let (sub, _, _) = self.subquery(Some(vec![ty]), ctx);
                let op = self.one(&["= ANY", "<> ALL", "> ANY"]);
                format!("{x} {op} ({sub})")
            }
            _ => self.leaf(Bool, ctx),
        }
    }

    fn date_expr(&mut self, ctx: Ctx<'_>) -> String {
        match self.pick(6) {
            0 => {
                let d = self.expr(Date, ctx);
                let unit = self.one(&["'month'", "'year'", "'day'", "'week'"]);
                format!("CAST(date_trunc({unit}, {d}) AS DATE)")
            }
            1 => {
                let d = self.expr(Date, ctx);
                let interval = self.one(&[
                    "INTERVAL '1 day'",
                    "INTERVAL '1 month'",
                    "INTERVAL '-3 years'",
                ]);
                format!("{d} + {interval}")
            }
            2 => {
                let y = self.int(1, 9999);
                let m = self.int(0, 13);
                let d = self.int(0, 32);
                format!("make_date({y}, {m}, {d})")
            }
            3 => {
                let t = self.expr(Text, ctx);
                format!("CAST({t} AS DATE)")
            }
            4 => {
                let d = self.expr(Date, ctx);
                let n = self.expr(Int, ctx);
                format!("{d} + {n}")
            }
            _ => self.leaf(Date, ctx),
        }
    }

    fn float_expr(&mut self, ctx: Ctx<'_>) -> String {
        match self.pick(6) {
            0 => {
                let ty = self.one(&[Int, Big, Text]);
                let x = self.expr(ty, ctx);
                format!("CAST({x} AS DOUBLE PRECISION)")
            }
            1 => {
                let a = self.expr(Float, ctx);
                let b = self.expr(Float, ctx);
                let op = self.one(&["+", "-", "*", "/"]);
                format!("{a} {op} {b}")
            }
            2 => {
                let a = self.expr(Float, ctx);
                let n = self.int(-2, 6);
                format!("round({a}, {n})")
            }
            3 => {
                let a = self.expr(Float, ctx);
                let f = self.one(&["ln", "exp", "floor", "ceil", "abs", "cbrt", "sin"]);
                format!("{f}({a})")
            }
            4 => {
                let a = self.expr(Float, ctx);
                format!("power({a}, 0.5)")
            }
            _ => self.leaf(Float, ctx),
        }
    }

    fn array_expr(&mut self, ctx: Ctx<'_>) -> String {
        match self.pick(6) {
            0 => {
                let a = self.expr(Text, ctx);
                let b = self.expr(Text, ctx);
                format!("make_array({a}, {b})")
            }
            1 => {
                let t = self.expr(Text, ctx);
                let sep = self.text_literal();
                format!("string_to_array({t}, {sep})")
            }
            2 => {
                let a = self.expr(TextArr, ctx);
                let t = self.expr(Text, ctx);
                format!("array_append({a}, {t})")
            }
            3 if ctx.agg => {
                let t = self.expr(
                    Text,
                    Ctx {
                        agg: false,
                        window: false,
                        ..ctx
                    },
                );
                format!("array_agg({t})")
            }
            4 => {
                let a = self.expr(TextArr, ctx);
                format!("array_distinct({a})")
            }
            _ => self.leaf(TextArr, ctx),
        }
    }

    fn bytes_expr(&mut self, ctx: Ctx<'_>) -> String {
        match self.pick(4) {
            0 => {
                let t = self.expr(Text, ctx);
                format!("CAST({t} AS BYTEA)")
            }
            1 => {
                let t = self.expr(Text, ctx);
                format!("sha256({t})")
            }
            2 => {
                let t = self.expr(Text, ctx);
                format!("{t}::bytea")
            }
            _ => self.leaf(Bytes, ctx),
        }
    }

    /// An aggregate of type `ty` over rows of `scope`.
    fn aggregate(&mut self, ty: Ty, scope: &[Col]) -> String {
        let ctx = Ctx {
            scope,
            agg: false,
            window: false,
        };
        let distinct = if self.chance(1, 6) { "DISTINCT " } else { "" };
        let s = match ty {
            Int | Big => match self.pick(5) {
                0 => "count(*)".to_string(),
                1 => {
                    let ty = self.one(&SCALAR_TYPES);
                    let x = self.expr(ty, ctx);
                    format!("count({distinct}{x})")
                }
                2 => {
                    let x = self.expr(ty, ctx);
                    format!("sum({distinct}{x})")
                }
                3 => {
                    let x = self.expr(ty, ctx);
                    let f = self.one(&["min", "max"]);
                    format!("{f}({x})")
                }
                _ => {
                    let x = self.expr(Int, ctx);
                    format!("CAST(avg({x}) AS BIGINT)")
                }
            },
            Text => match self.pick(4) {
                0 | 1 => {
                    let x = self.expr(Text, ctx);
                    let sep = self.text_literal();
                    if self.chance(1, 3) {
                        let key = self.expr(Text, ctx);
                        format!("string_agg({distinct}{x}, {sep} ORDER BY {key})")
                    } else {
                        format!("string_agg({distinct}{x}, {sep})")
                    }
                }
                2 => {
                    let x = self.expr(Text, ctx);
                    let f = self.one(&["min", "max"]);
                    format!("{f}({x})")
                }
                _ => {
                    let x = self.expr(Text, ctx);
                    format!("array_to_string(array_agg({distinct}{x}), ',')")
                }
            },
            Bool => {
                let x = self.expr(Bool, ctx);
                let f = self.one(&["bool_and", "bool_or"]);
                format!("{f}({x})")
            }
            Date => {
                let x = self.expr(Date, ctx);
                let f = self.one(&["min", "max"]);
                format!("{f}({x})")
            }
            Float => {
                let ty = self.one(&[Int, Big, Float]);
                let x = self.expr(ty, ctx);
                let f = self.one(&["avg", "stddev", "var_pop", "sum"]);
                format!("CAST({f}({x}) AS DOUBLE PRECISION)")
            }
            TextArr => {
                let x = self.expr(Text, ctx);
                format!("array_agg({distinct}{x})")
            }
            Bytes => {
                let x = self.expr(Text, ctx);
                format!("CAST(max({x}) AS BYTEA)")
            }
        };
        self.emit(s)
    }

    fn window(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        let inner = Ctx {
            agg: false,
            window: false,
            ..ctx
        };
        let function = match ty {
            Int | Big => self
                .one(&[
                    "row_number()",
                    "rank()",
                    "dense_rank()",
                    "count(*)",
                    "ntile(3)",
                ])
                .to_string(),
            _ => {
                let x = self.expr(ty, inner);
                let f = self.one(&["first_value", "last_value", "lag", "lead", "min", "max"]);
                format!("{f}({x})")
            }
        };
        let mut over = Vec::new();
        if self.chance(1, 2) {
            let ty = self.one(&SCALAR_TYPES);
            if let Some(c) = self.column(ty, ctx.scope) {
                over.push(format!("PARTITION BY {c}"));
            }
        }
        if self.chance(2, 3) {
            let ty = self.one(&SCALAR_TYPES);
            if let Some(c) = self.column(ty, ctx.scope) {
                over.push(format!("ORDER BY {c}"));
                if self.chance(1, 3) {
                    over.push("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW".to_string());
                }
            }
        }
        format!("{function} OVER ({})", over.join(" "))
    }

    /// A subquery, correlated with the enclosing scope one time in three.
    fn subquery(&mut self, want: Option<Vec<Ty>>, ctx: Ctx<'_>) -> (String, Vec<Ty>, bool) {
        if !ctx.scope.is_empty() && self.chance(1, 3) {
            // Correlated: SELECT <want> FROM <table> WHERE <mixes inner and outer columns>.
            self.depth += 1;
            let (from, inner) = self.table_ref();
            let mut both: Vec<Col> = inner.clone();
            both.extend(ctx.scope.iter().cloned());
            let tys = want.unwrap_or_else(|| vec![self.one(&SCALAR_TYPES)]);
            let inner_ctx = Ctx {
                scope: &inner,
                agg: false,
                window: false,
            };
            let items: Vec<String> = tys.iter().map(|t| self.expr(*t, inner_ctx)).collect();
            let where_ctx = Ctx {
                scope: &both,
                agg: false,
                window: false,
            };
            let predicate = self.expr(Bool, where_ctx);
            self.depth -= 1;
            return (
                format!("SELECT {} FROM {from} WHERE {predicate}", items.join(", ")),
                tys,
                true,
            );
        }
        let (sql, tys) = self.query(want);
        (sql, tys, false)
    }

    fn scalar_subquery(&mut self, ty: Ty, ctx: Ctx<'_>) -> String {
        if self.exhausted() {
            return self.leaf(ty, ctx);
        }
        let (sub, _, correlated) = self.subquery(Some(vec![ty]), ctx);
        if correlated {
            format!("({sub} LIMIT 1)")
        } else {
            let alias = self.fresh("s");
            format!("(SELECT {alias}.x0 FROM ({sub}) AS {alias}(x0) LIMIT 1)")
        }
    }
}

/// The statements of one input in grammar mode: one to three.
pub fn statements(u: &mut Unstructured<'_>) -> Vec<String> {
    let mut generator = Generator::new(u);
    let n = 1 + generator.pick(3);
    (0..n).map(|_| generator.statement()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_writes_the_marker_and_stays_bounded() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..3000usize {
            let bytes: Vec<u8> = (0..len % 700)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            let mut u = Unstructured::new(&bytes);
            for sql in statements(&mut u) {
                assert!(!crate::leak::contains_marker(sql.as_bytes()), "{sql}");
                assert!(sql.len() < 400_000, "{}", sql.len());
            }
        }
    }
}
