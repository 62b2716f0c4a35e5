"""The Python data stack against a served lake, as an analyst uses it: psycopg 3 and psycopg2
(queries, binary results, COPY in three formats), asyncpg (prepared statements, binary types,
copy_from_query), SQLAlchemy 2's Inspector and Table autoload with both PostgreSQL dialects,
pandas (read_sql, read_sql_table) and polars (read_database_uri with connectorx and ADBC).

Usage: python3 python_clients.py CLIENT HOST PORT USER PASSWORD
Prints one tab-separated line per fact for the Rust test (tests/it/clients_python.rs) to check:
  tables   the dbo tables the client's metadata calls list, comma-separated
  patients how many dim_patient rows the user sees
  first    id_patient and name of the first patient the user sees (names are masked for some)
  copy     FORMAT, and whether COPY's rows equal the SELECT's ("same")
  ...      client-specific facts (types, columns, keys)
"""
import asyncio
import csv
import io
import sys
from urllib.parse import quote

client, host, port, user, password = sys.argv[1:6]
DB = "IKHOSPITAL_DW"
URL = f"{quote(user)}:{quote(password, safe='')}@{host}:{port}/{DB}"
QUERY = "SELECT id_patient, name, age, address, country FROM dbo.dim_patient ORDER BY id_patient"
TYPED = (
    "SELECT id_patient, name, CAST(age AS numeric(10,2)) AS age_n, DATE '2024-02-29' AS d, "
    "TIMESTAMP '2024-02-29 12:34:56.5' AS ts, true AS b, CAST(1.5 AS double precision) AS f "
    "FROM dbo.dim_patient ORDER BY id_patient LIMIT 2"
)


def fact(*values):
    print(*[str(v) for v in values], sep="\t", flush=True)


def as_text(value):
    """A value as COPY's text and CSV formats spell it."""
    if value is None:
        return None
    return str(value)


def expected_rows(rows):
    return [tuple(as_text(v) for v in row) for row in rows]


def common(rows):
    fact("patients", len(rows))
    if rows:
        fact("first", rows[0][0], rows[0][1])


def parse_text_copy(data):
    """COPY's text format: tab-separated, `\\N` for NULL, backslash escapes."""
    escapes = {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "\\": "\\"}
    rows = []
    for line in data.split("\n")[:-1]:
        row = []
        for field in line.split("\t"):
            if field == "\\N":
                row.append(None)
                continue
            out, i = [], 0
            while i < len(field):
                if field[i] == "\\" and i + 1 < len(field):
                    out.append(escapes.get(field[i + 1], field[i + 1]))
                    i += 2
                else:
                    out.append(field[i])
                    i += 1
            row.append("".join(out))
        rows.append(tuple(row))
    return rows


def parse_csv_copy(data, header):
    reader = csv.reader(io.StringIO(data))
    rows = [tuple(None if v == "" else v for v in row) for row in reader]
    return rows[1:] if header else rows


def run_psycopg():
    import psycopg

    conn = psycopg.connect(f"postgresql://{URL}?sslmode=require", autocommit=True)
    cur = conn.cursor()
    tables = cur.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema = 'dbo' ORDER BY 1"
    ).fetchall()
    fact("tables", ",".join(t[0] for t in tables))
    rows = cur.execute(QUERY).fetchall()
    common(rows)
    # Binary results, parameters bound server-side.
    bcur = conn.cursor(binary=True)
    typed = bcur.execute(TYPED + " OFFSET %s", [0]).fetchall()
    if typed:
        fact("binary", *[type(v).__name__ for v in typed[0]])
        fact("binary_values", typed[0][2], typed[0][3], typed[0][4], typed[0][5], typed[0][6])
    expected = expected_rows(rows)
    # COPY text: psycopg parses rows itself.
    with cur.copy(f"COPY ({QUERY}) TO STDOUT") as copy:
        copied = [tuple(row) for row in copy.rows()]
    fact("copy", "text", "same" if copied == expected else f"differs: {copied[:2]} vs {expected[:2]}")
    # COPY binary with the column types told, as psycopg's docs show.
    with cur.copy(f"COPY ({QUERY}) TO STDOUT (FORMAT binary)") as copy:
        copy.set_types(["int4", "text", "int4", "text", "text"])
        copied = [tuple(row) for row in copy.rows()]
    fact("copy", "binary", "same" if copied == [tuple(r) for r in rows] else f"differs: {copied[:2]}")
    # COPY csv with a header, read raw.
    data = b""
    with cur.copy(f"COPY ({QUERY}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
        for chunk in copy:
            data += bytes(chunk)
    text = data.decode()
    fact("csv_header", text.split("\n", 1)[0])
    copied = parse_csv_copy(text, header=True)
    fact("copy", "csv", "same" if copied == expected else f"differs: {copied[:2]}")
    # COPY of a table, columns named.
    with cur.copy("COPY dbo.dim_patient (id_patient, country) TO STDOUT") as copy:
        n = sum(1 for _ in copy.rows())
    fact("copy_table", n)
    conn.close()


def run_psycopg2():
    import psycopg2

    conn = psycopg2.connect(
        host=host, port=port, dbname=DB, user=user, password=password, sslmode="require"
    )
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema = %s ORDER BY 1",
        ("dbo",),
    )
    fact("tables", ",".join(t[0] for t in cur.fetchall()))
    cur.execute(QUERY)
    rows = cur.fetchall()
    common(rows)
    expected = expected_rows(rows)
    buf = io.StringIO()
    cur.copy_expert(f"COPY ({QUERY}) TO STDOUT WITH CSV HEADER", buf)
    fact("copy", "csv", "same" if parse_csv_copy(buf.getvalue(), True) == expected else "differs")
    buf = io.StringIO()
    # psycopg2 quotes the table name whole: the search path (dbo) finds it.
    cur.copy_to(buf, "dim_patient", columns=("id_patient", "name", "age", "address", "country"))
    copied = sorted(parse_text_copy(buf.getvalue()), key=lambda r: int(r[0]))
    fact("copy", "text", "same" if copied == expected else f"differs: {copied[:2]}")
    conn.close()


async def asyncpg_main():
    import asyncpg

    conn = await asyncpg.connect(
        host=host, port=int(port), user=user, password=password, database=DB, ssl="require"
    )
    tables = await conn.fetch(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
        "WHERE table_schema = $1 ORDER BY 1",
        "dbo",
    )
    fact("tables", ",".join(r["t"] for r in tables))
    rows = [tuple(r) for r in await conn.fetch(QUERY)]
    common(rows)
    statement = await conn.prepare(
        "SELECT name, age FROM dbo.dim_patient WHERE id_patient = $1 AND country = $2"
    )
    fact("prepared", *[a.name for a in statement.get_attributes()])
    fact("param_types", *[t.name for t in statement.get_parameters()])
    typed = await conn.fetch(TYPED)
    if typed:
        fact("binary", *[type(v).__name__ for v in typed[0]])
        fact("binary_values", typed[0][2], typed[0][3], typed[0][4], typed[0][5], typed[0][6])
    expected = expected_rows(rows)
    buf = io.BytesIO()
    await conn.copy_from_query(QUERY, output=buf, format="csv", header=True)
    copied = parse_csv_copy(buf.getvalue().decode(), header=True)
    fact("copy", "csv", "same" if copied == expected else f"differs: {copied[:2]}")
    buf = io.BytesIO()
    await conn.copy_from_table("dim_patient", schema_name="dbo", output=buf, columns=["id_patient", "name", "age", "address", "country"])
    copied = sorted(parse_text_copy(buf.getvalue().decode()), key=lambda r: int(r[0]))
    fact("copy", "text", "same" if copied == expected else f"differs: {copied[:2]}")
    await conn.close()


def run_asyncpg():
    asyncio.run(asyncpg_main())


def run_sqlalchemy(driver):
    import sqlalchemy as sa

    engine = sa.create_engine(f"postgresql+{driver}://{URL}?sslmode=require")
    inspector = sa.inspect(engine)
    schemas = inspector.get_schema_names()
    fact("schemas", ",".join(sorted(s for s in schemas if s in ("dbo", "sys"))))
    tables = sorted(inspector.get_table_names(schema="dbo"))
    fact("tables", ",".join(f"dbo.{t}" for t in tables))
    fact("views", len(inspector.get_view_names(schema="dbo")))
    fact("matviews", len(inspector.get_materialized_view_names(schema="dbo")))
    fact("sequences", len(inspector.get_sequence_names(schema="dbo")))
    fact("has_table", inspector.has_table("dim_patient", schema="dbo"), inspector.has_table("dim_doctors", schema="dbo"))
    columns = inspector.get_columns("dim_patient", schema="dbo")
    fact("columns", ",".join(f"{c['name']}:{c['type']}:{c['nullable']}" for c in columns))
    fact("pk", inspector.get_pk_constraint("dim_patient", schema="dbo").get("constrained_columns"))
    fact("fks", len(inspector.get_foreign_keys("fact_events", schema="dbo")))
    fact("indexes", len(inspector.get_indexes("dim_patient", schema="dbo")))
    fact("unique", len(inspector.get_unique_constraints("dim_patient", schema="dbo")))
    fact("checks", len(inspector.get_check_constraints("dim_patient", schema="dbo")))
    fact("comment", inspector.get_table_comment("dim_patient", schema="dbo").get("text"))
    fact("enums", len(inspector.get_enums(schema="dbo")))
    fact("multi_columns", len(inspector.get_multi_columns(schema="dbo")))
    table = sa.Table("dim_patient", sa.MetaData(), schema="dbo", autoload_with=engine)
    fact("autoload", ",".join(c.name for c in table.columns))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.id_patient, table.c.name, table.c.age, table.c.address, table.c.country)
            .order_by(table.c.id_patient)
        ).fetchall()
        common(rows)
        n = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.age > sa.bindparam("a")),
            {"a": 10},
        ).scalar()
        fact("older_than_10", n)


def run_pandas():
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(f"postgresql+psycopg://{URL}?sslmode=require")
    frame = pd.read_sql_table("dim_patient", engine, schema="dbo")
    fact("read_sql_table", len(frame), ",".join(frame.columns))
    frame = pd.read_sql(QUERY, engine)
    common(list(frame.itertuples(index=False, name=None)))
    frame = pd.read_sql("SELECT date_of_service FROM dbo.fact_events ORDER BY id LIMIT 1", engine)
    fact("dtype", frame["date_of_service"].dtype)


def run_polars(engine):
    import polars as pl

    uri = f"postgresql://{URL}?sslmode=require"
    frame = pl.read_database_uri(QUERY, uri, engine=engine)
    common(frame.rows())
    fact("dtypes", ",".join(str(d) for d in frame.dtypes))
    frame = pl.read_database_uri(
        "SELECT id, date_of_service, symptoms FROM dbo.fact_events ORDER BY id", uri, engine=engine
    )
    fact("events", frame.height, ",".join(str(d) for d in frame.dtypes))


RUNNERS = {
    "psycopg": run_psycopg,
    "psycopg2": run_psycopg2,
    "asyncpg": run_asyncpg,
    "sqlalchemy-psycopg": lambda: run_sqlalchemy("psycopg"),
    "sqlalchemy-psycopg2": lambda: run_sqlalchemy("psycopg2"),
    "pandas": run_pandas,
    "polars-connectorx": lambda: run_polars("connectorx"),
    "polars-adbc": lambda: run_polars("adbc"),
}

if __name__ == "__main__":
    RUNNERS[client]()
