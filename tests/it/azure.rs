//! ADLS Gen2 / Blob data sources against Azurite (npm `azurite`, started here on loopback):
//! a Delta table written over `abfss://`, served through an account key and a SAS token.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::process::Command;

use crate::support::{Setup, TestServer, fixture, rows, sqlstate};

/// Azurite's well-known development account.
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Azurite {
    child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn azurite() -> Azurite {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("azurite-blob")
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ])
        .arg("--location")
        .arg(dir.path())
        .kill_on_drop(true)
        .spawn()
        .expect("azurite-blob must be installed (npm install -g azurite)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Azurite {
                child,
                port,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("azurite did not start");
}

/// Creates a container and returns a read/list SAS token for it (Azure's own Python SDK does
/// the signing).
async fn container_with_sas(port: u16, container: &str) -> String {
    let script = format!(
        "from datetime import datetime, timedelta, timezone\n\
         from azure.storage.blob import BlobServiceClient, generate_container_sas, ContainerSasPermissions\n\
         conn = 'DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};'\n\
         BlobServiceClient.from_connection_string(conn).create_container('{container}')\n\
         print(generate_container_sas('{ACCOUNT}', '{container}', account_key='{KEY}', permission=ContainerSasPermissions(read=True, list=True), expiry=datetime.now(timezone.utc) + timedelta(hours=1)))\n"
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .unwrap();
    crate::support::succeeded(&output, "azure-storage-blob (pip) must be installed");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abfss_and_az_data_sources_with_key_and_sas() {
    let azurite = azurite().await;
    let endpoint = format!("http://127.0.0.1:{}/{ACCOUNT}", azurite.port);
    let sas = container_with_sas(azurite.port, "lake").await;

    // Write a Delta table into Azurite with the account key.
    let options: BTreeMap<String, String> = [
        ("azure_storage_account_name", ACCOUNT),
        ("azure_storage_account_key", KEY),
        ("azure_storage_endpoint", endpoint.as_str()),
        ("azure_allow_http", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let location = lakehouse::lake::StorageLocation::parse(
        &format!("abfss://lake@{ACCOUNT}.dfs.core.windows.net/gold/visits"),
        options,
    )
    .unwrap();
    lakehouse::lake::write::append(
        &location,
        vec![fixture::events(1, 120, 10)],
        &Default::default(),
    )
    .await
    .unwrap();

    let catalog = format!(
        r#"
database: IKHOSPITAL_DW
credentials:
  adls_key:
    kind: azure_account_key
    account: {ACCOUNT}
    key: "{KEY}"
    options:
      azure_storage_endpoint: {endpoint}
      azure_allow_http: "true"
  adls_sas:
    kind: azure_sas
    account: {ACCOUNT}
    token: "{sas}"
    options:
      azure_storage_endpoint: {endpoint}
      azure_allow_http: "true"
  wrong_key:
    kind: azure_account_key
    account: {ACCOUNT}
    key: "AAAA{}"
    options:
      azure_storage_endpoint: {endpoint}
      azure_allow_http: "true"
data_sources:
  archive_key:
    location: abfss://lake@{ACCOUNT}.dfs.core.windows.net/
    credential: adls_key
  archive_sas:
    location: az://lake/
    credential: adls_sas
  archive_wrong:
    location: az://lake/
    credential: wrong_key
external_tables:
  - name: dbo.visits_key
    data_source: archive_key
    location: gold/visits
  - name: dbo.visits_sas
    data_source: archive_sas
    location: gold/visits
  - name: dbo.visits_wrong_key
    data_source: archive_wrong
    location: gold/visits
discover:
  - data_source: lake
    prefix: gold/ikhospital/
"#,
        &KEY[4..]
    );
    let server = TestServer::start_with(Setup {
        catalog: vec![("ikhospital_dw.yaml".into(), catalog)],
        ..Setup::default()
    })
    .await;
    let client = server.connect("alice").await;
    let one = |v: &str| vec![vec![Some(v.to_string())]];
    assert_eq!(
        rows(&client, "select count(*) from visits_key").await,
        one("120")
    );
    assert_eq!(
        rows(&client, "select count(*) from visits_sas").await,
        one("120")
    );
    assert_eq!(
        rows(
            &client,
            "select count(*) from visits_key k join visits_sas s using (id)"
        )
        .await,
        one("120")
    );
    // A wrong key fails only the queries that touch that table; the local lake still serves.
    assert_eq!(
        sqlstate(&client, "select count(*) from visits_wrong_key").await,
        "55000"
    );
    assert_eq!(
        rows(&client, "select count(*) from fact_events").await,
        one("200")
    );
    server.stop().await;
}
