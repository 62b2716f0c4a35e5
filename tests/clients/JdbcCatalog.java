// pgJDBC (Debian libpostgresql-jdbc-java) listing what a JDBC tool's database browser lists:
// schemas, tables, columns, the whole DatabaseMetaData sweep of a schema browser, result set
// metadata, then a prepared statement with a typed parameter.
// Usage: java -cp .:/usr/share/java/postgresql.jar JdbcCatalog <jdbc url> <user> <password>
// Prints one line per fact, tab separated, for the Rust test to compare.
import java.sql.*;
import java.util.Properties;

public class JdbcCatalog {
    interface Call { ResultSet run() throws SQLException; }

    static void sweep(String name, Call call) {
        try (ResultSet rs = call.run()) {
            int n = 0;
            while (rs.next()) n++;
            System.out.println("meta\t" + name + "\t" + n);
        } catch (SQLException e) {
            System.out.println("meta\t" + name + "\tFAILED " + e.getSQLState() + " " + e.getMessage().replace('\n', ' ').replace('\t', ' '));
        }
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData meta = conn.getMetaData();
            System.out.println("product\t" + meta.getDatabaseProductName() + "\t" + meta.getDatabaseMajorVersion());
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) System.out.println("schema\t" + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = meta.getTables(null, "dbo", "%", new String[] {"TABLE"})) {
                while (rs.next()) System.out.println("table\t" + rs.getString("TABLE_SCHEM") + "\t" + rs.getString("TABLE_NAME") + "\t" + rs.getString("TABLE_TYPE"));
            }
            try (ResultSet rs = meta.getColumns(null, "dbo", "dim_patient", "%")) {
                while (rs.next()) System.out.println("column\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getString("TYPE_NAME") + "\t" + rs.getInt("DATA_TYPE") + "\t" + rs.getString("IS_NULLABLE") + "\t" + rs.getInt("ORDINAL_POSITION"));
            }
            // The sweep a database browser (DBeaver, Metabase, Tableau) makes: every call must
            // answer; "meta" lines carry the row counts.
            sweep("catalogs", () -> meta.getCatalogs());
            sweep("schemas_pattern", () -> meta.getSchemas(null, "d%"));
            sweep("table_types", () -> meta.getTableTypes());
            sweep("all_tables", () -> meta.getTables(null, null, "%", null));
            sweep("all_columns", () -> meta.getColumns(null, null, "%", "%"));
            sweep("primary_keys", () -> meta.getPrimaryKeys(null, "dbo", "dim_patient"));
            sweep("imported_keys", () -> meta.getImportedKeys(null, "dbo", "fact_events"));
            sweep("exported_keys", () -> meta.getExportedKeys(null, "dbo", "dim_patient"));
            sweep("cross_reference", () -> meta.getCrossReference(null, "dbo", "dim_patient", null, "dbo", "fact_events"));
            sweep("index_info", () -> meta.getIndexInfo(null, "dbo", "dim_patient", false, true));
            sweep("type_info", () -> meta.getTypeInfo());
            sweep("functions", () -> meta.getFunctions(null, "pg_catalog", "upper"));
            sweep("function_columns", () -> meta.getFunctionColumns(null, "pg_catalog", "upper", "%"));
            sweep("procedures", () -> meta.getProcedures(null, "dbo", "%"));
            sweep("procedure_columns", () -> meta.getProcedureColumns(null, "dbo", "%", "%"));
            sweep("table_privileges", () -> meta.getTablePrivileges(null, "dbo", "%"));
            sweep("column_privileges", () -> meta.getColumnPrivileges(null, "dbo", "dim_patient", "%"));
            sweep("best_row_identifier", () -> meta.getBestRowIdentifier(null, "dbo", "dim_patient", DatabaseMetaData.bestRowSession, true));
            sweep("version_columns", () -> meta.getVersionColumns(null, "dbo", "dim_patient"));
            sweep("udts", () -> meta.getUDTs(null, "dbo", "%", null));
            sweep("client_info_properties", () -> meta.getClientInfoProperties());
            System.out.println("info\t" + meta.getUserName() + "\t" + meta.isReadOnly() + "\t" + meta.getIdentifierQuoteString() + "\t" + meta.supportsTransactions());
            try (ResultSet rs = meta.getTablePrivileges(null, "dbo", "%")) {
                while (rs.next()) System.out.println("privilege\t" + rs.getString("TABLE_NAME") + "\t" + rs.getString("GRANTEE") + "\t" + rs.getString("PRIVILEGE"));
            }
            try (ResultSet rs = meta.getPrimaryKeys(null, "dbo", "dim_patient")) {
                while (rs.next()) System.out.println("pk\t" + rs.getString("COLUMN_NAME"));
            }
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("select * from dbo.dim_patient limit 1")) {
                ResultSetMetaData md = rs.getMetaData();
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    System.out.println("rsmd\t" + md.getColumnName(i) + "\t" + md.getColumnTypeName(i) + "\t" + md.getTableName(i) + "\t" + md.getSchemaName(i) + "\t" + md.isNullable(i) + "\t" + md.isAutoIncrement(i));
                }
            }
            try (PreparedStatement ps = conn.prepareStatement("select name, age from dbo.dim_patient where id_patient = ?")) {
                ps.setLong(1, 4L);
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    while (rs.next()) System.out.println("row\t" + md.getColumnName(1) + "\t" + rs.getString(1) + "\t" + md.getColumnTypeName(2) + "\t" + rs.getInt(2));
                }
            }
        }
    }
}
