// pgJDBC (Debian libpostgresql-jdbc-java) listing what a JDBC tool's database browser lists:
// schemas, tables, columns, then a prepared statement with a typed parameter.
// Usage: java -cp .:/usr/share/java/postgresql.jar JdbcCatalog <jdbc url> <user> <password>
// Prints one line per fact, tab separated, for the Rust test to compare.
import java.sql.*;
import java.util.Properties;

public class JdbcCatalog {
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
