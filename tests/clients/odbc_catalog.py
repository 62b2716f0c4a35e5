"""psqlODBC (Debian odbc-postgresql, through unixODBC and pyodbc) listing schemas, tables and
columns as an ODBC tool's browser does (SQLTables, SQLColumns), then a parameterised query
(psqlODBC's named server-side prepare).

Usage: python3 odbc_catalog.py HOST PORT USER PASSWORD
Prints one tab-separated line per fact for the Rust test to compare.
"""
import glob
import sys

import pyodbc

host, port, user, password = sys.argv[1:5]
drivers = glob.glob("/usr/lib/*/odbc/psqlodbcw.so") + glob.glob("/usr/lib/odbc/psqlodbcw.so")
if not drivers:
    sys.exit("psqlODBC is not installed (Debian package odbc-postgresql)")
conn = pyodbc.connect(
    f"DRIVER={{{drivers[0]}}};SERVER={host};PORT={port};DATABASE=IKHOSPITAL_DW;"
    f"UID={user};PWD={password};SSLmode=require",
    autocommit=True,
)
cur = conn.cursor()
print("dbms", conn.getinfo(pyodbc.SQL_DBMS_NAME), conn.getinfo(pyodbc.SQL_DBMS_VER), sep="\t")
for row in cur.tables(catalog="", schema="%", table="", tableType="").fetchall():
    print("schema", row.table_schem, sep="\t")
for row in cur.tables(schema="dbo").fetchall():
    print("table", row.table_schem, row.table_name, row.table_type, sep="\t")
for row in cur.columns(schema="dbo", table="dim_patient").fetchall():
    print("column", row.column_name, row.type_name, row.data_type, row.nullable, row.ordinal_position, sep="\t")
cur.execute("select name, age from dbo.dim_patient where id_patient = ?", 4)
for row in cur.fetchall():
    print("row", row[0], row[1], sep="\t")


def sweep(name, call):
    """One ODBC catalog function as a tool's browser calls it: every one must answer."""
    try:
        rows = call().fetchall()
        print("meta", name, len(rows), sep="\t")
    except pyodbc.Error as err:
        print("meta", name, "FAILED " + " ".join(str(err).split()), sep="\t")


sweep("SQLPrimaryKeys", lambda: cur.primaryKeys("dim_patient", schema="dbo"))
sweep("SQLForeignKeys", lambda: cur.foreignKeys(table="dim_patient", schema="dbo"))
sweep("SQLForeignKeys_fk", lambda: cur.foreignKeys(foreignTable="fact_events", foreignSchema="dbo"))
sweep("SQLStatistics", lambda: cur.statistics("dim_patient", schema="dbo"))
sweep("SQLGetTypeInfo", lambda: cur.getTypeInfo())
sweep("SQLSpecialColumns_rowid", lambda: cur.rowIdColumns("dim_patient", schema="dbo"))
sweep("SQLSpecialColumns_rowver", lambda: cur.rowVerColumns("dim_patient", schema="dbo"))
sweep("SQLProcedures", lambda: cur.procedures(schema="dbo"))
sweep("SQLProcedureColumns", lambda: cur.procedureColumns(schema="dbo"))
sweep("SQLTablePrivileges_tables", lambda: cur.tables(schema="dbo", tableType="TABLE,VIEW"))
