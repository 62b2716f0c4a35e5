//! Serving basics over the wire: queries, protocols, TLS, auth, refusals, limits, refresh.

use crate::support::{TestServer, rows, sqlstate};

#[tokio::test]
async fn simple_and_extended_queries_read_delta() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    assert_eq!(rows(&client, "select count(*) from dbo.fact_events").await, vec![vec![Some("200".to_string())]]);
    assert_eq!(rows(&client, "select count(*) from fact_events").await, vec![vec![Some("200".to_string())]]);
    assert_eq!(
        rows(&client, "select count(*) from \"IKHOSPITAL_DW\".dbo.fact_events").await,
        vec![vec![Some("200".to_string())]]
    );
    // Extended protocol with a typed parameter, binary results.
    let row = client
        .query_one("select id_patient, name, age from dim_patient where id_patient = $1", &[&7i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert_eq!(row.get::<_, String>(1), "Test Patient 7");
    let n: i64 = client
        .query_one("select count(*) from fact_events where date_of_service >= $1", &[&chrono::NaiveDate::from_ymd_opt(2020, 6, 1).unwrap()])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0 && n < 200, "{n}");
    server.stop().await;
}
