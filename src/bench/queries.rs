//! The statements the benchmark sends: the hospital overview dashboard in the shapes Power BI
//! DirectQuery folds (clients.md §1.4: nested `"_"`/`"rows"` aliases, `"$Table"`, `"$Outer"`
//! and `"$Inner"` join sides, `limit 1000001` for visuals, `limit 1001` for top-N), Power BI
//! Import's full table reads, and the small queries.
//!
//! Every text names its tables as `"{s}"."table"`; [`for_schema`] fills in the schema of the
//! engine (`dbo` on lakehouse, DuckDB and DataFusion, `bench` on PostgreSQL), so every engine
//! runs the same statement otherwise.

/// One dashboard visual.
#[derive(Debug, Clone, Copy)]
pub struct Visual {
    /// Short name used in the report.
    pub name: &'static str,
    /// The folded SQL, with `{s}` for the schema.
    pub sql: &'static str,
}

/// The hospital overview, as Power BI DirectQuery folds its visuals.
pub const DASHBOARD: &[Visual] = &[
    Visual {
        name: "cards",
        sql: r#"select count(1) as "a0",
    count(distinct("rows"."id_patient")) + max(case when "rows"."id_patient" is null then 1 else 0 end) as "a1"
from 
(
    select "id", "id_patient"
    from "{s}"."fact_events" "$Table"
) "rows"
limit 1000001"#,
    },
    Visual {
        name: "slicer_range",
        sql: r#"select max("rows"."date_of_service") as "a0",
    min("rows"."date_of_service") as "a1"
from 
(
    select "date_of_service"
    from "{s}"."fact_events" "$Table"
) "rows"
limit 1000001"#,
    },
    Visual {
        name: "visits_by_area_2023",
        sql: r#"select "_"."area",
    "_"."a0",
    "_"."a1"
from 
(
    select "rows"."area" as "area",
        count(1) as "a0",
        sum("rows"."age") as "a1"
    from 
    (
        select "_"."id_doctor" as "id_doctor",
            "_"."age" as "age",
            "_"."area" as "area"
        from 
        (
            select "$Outer"."id_doctor", "$Outer"."age", "$Outer"."date_of_service", "$Inner"."area"
            from "{s}"."fact_events" "$Outer"
            left outer join "{s}"."dim_doctors" "$Inner" on ("$Outer"."id_doctor" = "$Inner"."id_doctor")
        ) "_"
        where ("_"."date_of_service" < date '2024-01-01' and "_"."date_of_service" >= date '2023-01-01')
    ) "rows"
    group by "area"
) "_"
where not "_"."a0" is null or not "_"."a1" is null
limit 1000001"#,
    },
    Visual {
        name: "visits_by_shift",
        sql: r#"select "_"."shift",
    "_"."a0"
from 
(
    select "rows"."shift" as "shift",
        count(1) as "a0"
    from 
    (
        select "$Outer"."id", "$Inner"."shift"
        from "{s}"."fact_events" "$Outer"
        left outer join "{s}"."dim_doctors" "$Inner" on ("$Outer"."id_doctor" = "$Inner"."id_doctor")
    ) "rows"
    group by "shift"
) "_"
where not "_"."a0" is null
limit 1000001"#,
    },
    Visual {
        name: "visits_by_month",
        sql: r#"select "_"."year",
    "_"."month",
    "_"."a0"
from 
(
    select "rows"."year" as "year",
        "rows"."month" as "month",
        count(1) as "a0"
    from 
    (
        select "$Outer"."id", "$Inner"."year", "$Inner"."month"
        from "{s}"."fact_events" "$Outer"
        left outer join "{s}"."dim_date" "$Inner" on ("$Outer"."date_of_service" = "$Inner"."date")
    ) "rows"
    group by "year", "month"
) "_"
where not "_"."a0" is null
limit 1000001"#,
    },
    Visual {
        name: "patients_by_country_sex",
        sql: r#"select "_"."country",
    "_"."sex",
    "_"."a0",
    "_"."a1"
from 
(
    select "rows"."country" as "country",
        "rows"."sex" as "sex",
        count(1) as "a0",
        count(distinct("rows"."id_patient")) + max(case when "rows"."id_patient" is null then 1 else 0 end) as "a1"
    from 
    (
        select "$Outer"."id_patient", "$Inner"."country", "$Inner"."sex"
        from "{s}"."fact_events" "$Outer"
        left outer join "{s}"."dim_patient" "$Inner" on ("$Outer"."id_patient" = "$Inner"."id_patient")
    ) "rows"
    group by "country", "sex"
) "_"
where not "_"."a0" is null or not "_"."a1" is null
limit 1000001"#,
    },
    Visual {
        name: "top_symptoms_contains",
        sql: r#"select "_"."symptoms",
    "_"."a0"
from 
(
    select "rows"."symptoms" as "symptoms",
        count(1) as "a0"
    from 
    (
        select "_"."symptoms"
        from 
        (
            select "symptoms"
            from "{s}"."fact_events" "$Table"
        ) "_"
        where strpos((case when "_"."symptoms" is not null then "_"."symptoms" else '' end), 'a') > 0
    ) "rows"
    group by "symptoms"
) "_"
where not "_"."a0" is null
order by "_"."a0" desc, "_"."symptoms"
limit 1001"#,
    },
    Visual {
        name: "visits_by_year_text",
        sql: r#"select "_"."year_text",
    "_"."a0"
from 
(
    select "rows"."year_text" as "year_text",
        count(1) as "a0"
    from 
    (
        select left(cast(extract(year from "_"."date_of_service") as varchar), 4000) as "year_text"
        from 
        (
            select "date_of_service"
            from "{s}"."fact_events" "$Table"
        ) "_"
    ) "rows"
    group by "year_text"
) "_"
where not "_"."a0" is null
limit 1000001"#,
    },
];

/// `select 1`: the protocol and planning overhead of a query that reads nothing.
pub const SELECT_ONE: &str = "select 1";

/// A point lookup of one patient by id (`$1`), as an application would send it.
pub const POINT_LOOKUP: &str = r#"select "id_patient", "sex", "age", "country" from "{s}"."dim_patient" where "id_patient" = $1"#;

/// The statement with the engine's schema filled in.
pub fn for_schema(sql: &str, schema: &str) -> String {
    sql.replace("{s}", schema)
}

/// Power BI Import's read of a whole table: every column named, quoted, from `"$Table"`.
pub fn import_sql(schema: &str, table: &str, columns: &[String]) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    format!(
        "select {} from \"{schema}\".\"{table}\" \"$Table\"",
        list.join(", ")
    )
}
