//! Table-driven policy tests: one YAML policy, many (user, table, columns) → expected answers.

use std::path::Path;

use super::*;

const SCRAM: &str = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";

fn policy(text: &str) -> Result<Policy, Diagnostics> {
    let doc = Document::<GrantsFileSpec>::parse(Path::new("grants/g.yaml"), text)
        .map_err(Diagnostics::from)?;
    Policy::from_docs(&[doc])
}

fn hospital() -> Policy {
    let text = format!(
        r#"
users:
  - name: PBI_Reader
    scram: "{SCRAM}"
    roles: [db_datareader, pii_masked]
  - name: analyst_pt
    scram: "{SCRAM}"
    roles: [portugal_analysts]
  - name: lakehouse_admin
    scram: "{SCRAM}"
    roles: [db_datareader, auditors]
  - name: nobody
    scram: "{SCRAM}"
  - name: partial_user
    scram: "{SCRAM}"
    grant:
      - table: dbo.dim_patient
        columns: [id_patient, Age]
  - name: denied_user
    scram: "{SCRAM}"
    roles: [db_datareader]
    deny:
      - table: dbo.dim_patient
        columns: [email]
      - schema: secret
roles:
  - name: db_datareader
    grant:
      - database: IKHOSPITAL_DW
  - name: pii_masked
  - name: auditors
    grant:
      - schema: sys
  - name: portugal_analysts
    roles: [pt_base]
  - name: pt_base
    grant:
      - table: dbo.dim_patient
      - table: fact_events
masks:
  - table: dbo.dim_patient
    column: name
    function: redact
    to: [pii_masked]
row_filters:
  - table: dbo.dim_patient
    filter: country = 'Portugal'
    to: [portugal_analysts]
"#
    );
    policy(&text).unwrap()
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Compact expectation: one letter per column, A allowed, M masked, D denied; then the number of
/// row filters.
fn check(policy: &Policy, user: &str, table: &str, columns: &[&str], expect: &str) {
    let principal = policy.principal(user).unwrap();
    let (schema, table_name) = table.split_once('.').unwrap();
    let access = policy.table_access(&principal, schema, table_name, &cols(columns));
    let mut got: String = access
        .columns
        .iter()
        .map(|c| match c {
            ColumnAccess::Allowed => 'A',
            ColumnAccess::Masked(..) => 'M',
            ColumnAccess::Denied => 'D',
        })
        .collect();
    got.push_str(&format!(" {}", access.row_filters.len()));
    assert_eq!(got, expect, "{user} on {table}");
}

#[test]
fn decisions() {
    let p = hospital();
    let patient = ["id_patient", "name", "age", "email"];
    let cases: &[(&str, &str, &[&str], &str)] = &[
        ("PBI_Reader", "dbo.dim_patient", &patient, "AMAA 0"),
        ("pbi_reader", "dbo.fact_events", &["id"], "A 0"),
        ("PBI_Reader", "sys.audit_log", &["user"], "D 0"),
        ("analyst_pt", "dbo.dim_patient", &patient, "AAAA 1"),
        ("analyst_pt", "dbo.fact_events", &["id"], "A 0"),
        ("analyst_pt", "dbo.dim_medicine", &["id"], "D 0"),
        ("lakehouse_admin", "dbo.dim_patient", &patient, "AAAA 0"),
        ("lakehouse_admin", "sys.audit_log", &["user"], "A 0"),
        ("nobody", "dbo.dim_patient", &patient, "DDDD 0"),
        ("partial_user", "dbo.dim_patient", &patient, "ADAD 0"),
        ("denied_user", "dbo.dim_patient", &patient, "AAAD 0"),
        ("denied_user", "secret.t", &["a"], "D 0"),
    ];
    for (user, table, columns, expect) in cases {
        check(&p, user, table, columns, expect);
    }
}

#[test]
fn visibility() {
    let p = hospital();
    let nobody = p.principal("nobody").unwrap();
    assert!(!p.database_granted(&nobody));
    let reader = p.principal("PBI_Reader").unwrap();
    assert!(p.schema_granted(&reader, "dbo"));
    assert!(!p.schema_granted(&reader, "sys"));
    let analyst = p.principal("analyst_pt").unwrap();
    assert!(!p.schema_granted(&analyst, "dbo"), "table grants only");
    assert!(analyst.is("pt_base"), "roles are transitive");
}

#[test]
fn logins() {
    let text = format!(
        r#"
users:
  - name: off
    scram: "{SCRAM}"
    enabled: false
  - name: old
    scram: "{SCRAM}"
    valid_until: 2020-01-01T00:00:00Z
  - name: demo
    scram: "{SCRAM}"
    demo: true
"#
    );
    let p = policy(&text).unwrap();
    let now = 1_800_000_000_000_000;
    assert_eq!(
        p.check_login("OFF", now, true).unwrap_err(),
        LoginRefusal::Disabled
    );
    assert_eq!(
        p.check_login("old", now, true).unwrap_err(),
        LoginRefusal::Expired
    );
    assert_eq!(
        p.check_login("ghost", now, true).unwrap_err(),
        LoginRefusal::UnknownUser
    );
    assert!(p.check_login("demo", now, true).is_ok());
    assert_eq!(
        p.check_login("demo", now, false).unwrap_err(),
        LoginRefusal::DemoPasswordOffLoopback
    );
}

#[test]
fn validation_errors_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "users:\n  - name: a\n    scram: x\n",
            "grants/g.yaml:3:12: scram must look like",
        ),
        (
            &format!("users:\n  - name: a\n    scram: \"{SCRAM}\"\n    roles: [ghost]\n"),
            "grants/g.yaml:4:13: unknown role \"ghost\"",
        ),
        (
            &format!(
                "users:\n  - name: a\n    scram: \"{SCRAM}\"\n  - name: A\n    scram: \"{SCRAM}\"\n"
            ),
            "grants/g.yaml:4:11: user \"A\" is defined twice",
        ),
        (
            "roles:\n  - name: r\n    grant:\n      - database: OTHER\n",
            "grants/g.yaml:4:19: unknown database \"OTHER\"",
        ),
        (
            "roles:\n  - name: r\n    grant:\n      - schema: dbo\n        table: dbo.x\n",
            "grants/g.yaml:4:15: name exactly one of",
        ),
        (
            "roles:\n  - name: r\nmasks:\n  - table: dbo.t\n    column: c\n    to: [r]\n",
            "grants/g.yaml:4:10: a mask needs exactly one of",
        ),
        (
            "roles:\n  - name: r\n    rolez: []\n",
            "grants/g.yaml:3:5: roles[0]: unknown field `rolez`",
        ),
        (
            "roles:\n  - name: a\n    roles: [b]\n  - name: b\n    roles: [a]\n",
            "member of itself",
        ),
    ];
    for (text, expect) in cases {
        let err = policy(text).unwrap_err().to_string();
        assert!(err.contains(expect), "expected {expect:?} in:\n{err}");
    }
}

#[test]
fn two_masks_for_one_user_are_refused() {
    let text = format!(
        r#"
users:
  - name: u
    scram: "{SCRAM}"
    roles: [a, b]
roles:
  - name: a
  - name: b
masks:
  - table: dbo.t
    column: c
    function: "null"
    to: [a]
  - table: dbo.t
    column: C
    function: hash
    to: [b]
"#
    );
    let err = policy(&text).unwrap_err().to_string();
    assert!(err.contains("gets two masks on column \"c\""), "{err}");
}

struct FakeCatalog;

impl CatalogInfo for FakeCatalog {
    fn schema_exists(&self, schema: &str) -> bool {
        schema == "dbo"
    }
    fn table_columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        (schema == "dbo" && table == "dim_patient").then(|| cols(&["id_patient", "name"]))
    }
    fn schema_is_discovered(&self, schema: &str) -> bool {
        schema == "dbo"
    }
}

#[test]
fn objects_are_checked_against_the_catalog() {
    let text = r#"
roles:
  - name: r
    grant:
      - table: dbo.dim_patient
        columns: [id_patient, nme]
      - schema: nope
      - table: dbo.later
masks:
  - table: dbo.dim_patient
    column: emial
    function: "null"
    to: [r]
"#;
    let p = policy(text).unwrap();
    let (errors, warnings) = p.validate_objects(&FakeCatalog);
    let errors = errors.to_string();
    assert!(
        errors.contains("grants/g.yaml:6:31: unknown column \"nme\""),
        "{errors}"
    );
    assert!(errors.contains("unknown schema \"nope\""), "{errors}");
    assert!(errors.contains("unknown column \"emial\""), "{errors}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("dbo.later"));
}
