//! The `customer-list` binary itself: `serve` as a newcomer runs it, and `admin`.

use crate::on_both_backends;
use crate::support::{Backend, TestDb};
use serde_json::Value;
use testkit::{Launch, ServerProcess};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_customer-list");

fn command(db: &TestDb, backend: Backend) -> Command {
    in_shell(Command::new(BIN), db, backend)
}

/// `cmd` as a user's shell starts it: no test settings, the database of `db`.
fn in_shell(mut cmd: Command, db: &TestDb, backend: Backend) -> Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("CUSTOMER_LIST_") {
            cmd.env_remove(name);
        }
    }
    // SQLite uses the default: a file in the working directory.
    match backend {
        Backend::Sqlite => cmd.current_dir(sqlite_dir(db)),
        Backend::Postgres => cmd.env("CUSTOMER_LIST_DATABASE_URL", &db.url),
    };
    cmd.kill_on_drop(true);
    cmd
}

async fn admin(db: &TestDb, backend: Backend, args: &[&str]) -> Result<Value, String> {
    let out = command(db, backend)
        .arg("admin")
        .args(args)
        .output()
        .await
        .expect("run customer-list admin");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("admin prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Starts `serve` on an ephemeral port as a newcomer would (SQLite: the default file in
/// the working directory); returns it and the admin key it printed (if any).
async fn serve(db: &TestDb, backend: Backend) -> (ServerProcess, Option<String>) {
    let launch = Launch::new(BIN);
    let server = match backend {
        Backend::Sqlite => launch.current_dir(sqlite_dir(db)),
        Backend::Postgres => launch.env("CUSTOMER_LIST_DATABASE_URL", &db.url),
    }
    .start()
    .await;
    let key = server
        .log()
        .iter()
        .find_map(|line| Some(line.split("store it now): ").nth(1)?.trim().to_owned()));
    (server, key)
}

fn sqlite_dir(db: &TestDb) -> &str {
    db.url
        .trim_start_matches("sqlite://")
        .trim_end_matches("/hub.db")
}

async fn terminate(server: ServerProcess) {
    let exit = server.terminate().await;
    assert!(exit.success(), "graceful exit, got {exit:?}");
}

on_both_backends!(
    serve_bootstraps_an_admin_key_once_and_stops_on_sigterm,
    admin_cli_covers_section_7,
    import_and_export_run_from_a_shell,
);

async fn serve_bootstraps_an_admin_key_once_and_stops_on_sigterm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (child, key) = serve(&db, backend).await;
    let base = child.base.clone();
    let key = key.expect("first start prints the generated admin key");
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/v1/partners"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "Reseller"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    terminate(child).await;
    if backend == Backend::Sqlite {
        assert!(std::path::Path::new(
            &db.url
                .replace("sqlite://", "")
                .replace("hub.db", "customer-list.db")
        )
        .exists());
    }

    // A second start keeps the data and the key, and prints no new key.
    let (child, second_key) = serve(&db, backend).await;
    let base = child.base.clone();
    assert_eq!(second_key, None);
    let listed = client
        .get(format!("{base}/v1/accounts"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    terminate(child).await;
}

async fn admin_cli_covers_section_7(backend: Backend) {
    let db = TestDb::new(backend).await;
    let partner = admin(&db, backend, &["create-partner", "--name", "Reseller"])
        .await
        .unwrap();
    let partner_id = partner["partner_id"].as_str().unwrap();
    let account = admin(
        &db,
        backend,
        &[
            "create-account",
            "--partner-id",
            partner_id,
            "--name",
            "Salon",
            "--default-region",
            "CA",
        ],
    )
    .await
    .unwrap();
    assert_eq!(account["default_region"], "CA");
    let account_id = account["account_id"].as_str().unwrap();
    let product = admin(
        &db,
        backend,
        &[
            "create-product",
            "--name",
            "CRM",
            "--partner-id",
            partner_id,
        ],
    )
    .await
    .unwrap();
    assert!(product["api_key"].is_string() && product["webhook_secret"].is_string());
    let product_id = product["product_id"].as_str().unwrap();
    let activation = admin(
        &db,
        backend,
        &[
            "activate",
            "--account-id",
            account_id,
            "--product-id",
            product_id,
            "--sync",
            "one_way",
        ],
    )
    .await
    .unwrap();
    assert_eq!(activation["sync"], "one_way");
    let list = admin(
        &db,
        backend,
        &["list-activations", "--account-id", account_id],
    )
    .await
    .unwrap();
    assert_eq!(list["activations"].as_array().unwrap().len(), 1);
    let accounts = admin(&db, backend, &["list-accounts", "--partner-id", partner_id])
        .await
        .unwrap();
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 1);
    let updated = admin(
        &db,
        backend,
        &[
            "update-product",
            product_id,
            "--webhook-url",
            "https://crm.example.com/h",
        ],
    )
    .await
    .unwrap();
    assert_eq!(updated["webhook_url"], "https://crm.example.com/h");
    let key = admin(&db, backend, &["create-key", "--account-id", account_id])
        .await
        .unwrap();
    assert_eq!(key["kind"], "account");
    let revoked = admin(
        &db,
        backend,
        &["revoke-key", key["key_id"].as_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(revoked["revoked"], true);
    admin(
        &db,
        backend,
        &[
            "deactivate",
            "--account-id",
            account_id,
            "--product-id",
            product_id,
        ],
    )
    .await
    .unwrap();

    let err = admin(
        &db,
        backend,
        &[
            "create-account",
            "--partner-id",
            partner_id,
            "--name",
            "X",
            "--default-region",
            "ZZ",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("default_region"), "{err}");
    let unknown = customer_list::domain::AccountId::generate().to_string();
    let err = admin(&db, backend, &["get-account", &unknown])
        .await
        .unwrap_err();
    assert!(err.contains("not_found"), "{err}");
    // A malformed id is refused by the argument parser, naming the argument.
    let err = admin(&db, backend, &["get-account", "AG-missing"])
        .await
        .unwrap_err();
    assert!(err.contains("must be an account id"), "{err}");
}

#[tokio::test]
async fn bad_configuration_is_a_clear_startup_error() {
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("migrate").env_remove("CUSTOMER_LIST_ADMIN_KEY");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().expect("run")
    };
    let out = run(&[("CUSTOMER_LIST_DATABASE_URL", "mysql://user:secret@db/hub")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL scheme \"mysql\""),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the URL's password is never printed: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/hub.db", dir.path().display());
    let mut cmd = std::process::Command::new(BIN);
    let out = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CUSTOMER_LIST_DATABASE_URL", &url)
        .env("CUSTOMER_LIST_ADMIN_KEY", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
}

/// `customer-list import` and `export` as a user runs them: piped (no progress bar, the
/// summary alone) and on a pseudo-terminal (`script`), where the bar is drawn.
async fn import_and_export_run_from_a_shell(backend: Backend) {
    let db = TestDb::new(backend).await;
    let partner = admin(&db, backend, &["create-partner", "--name", "Reseller"])
        .await
        .unwrap();
    let account = admin(
        &db,
        backend,
        &[
            "create-account",
            "--partner-id",
            partner["partner_id"].as_str().unwrap(),
            "--name",
            "Salon",
        ],
    )
    .await
    .unwrap();
    let account = account["account_id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("customers.csv");
    let mut text = "first_name;email;tags\n".to_owned();
    for i in 0..1_200 {
        text.push_str(&format!("Shell{i};shell{i}@example.com;cli|import\n"));
    }
    text.push_str("Broken;not-an-email;x\n");
    std::fs::write(&file, &text).unwrap();

    let out = command(&db, backend)
        .args(["import", file.to_str().unwrap(), "--account", &account])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!("1201 of 1201 rows imported into {account}: 1200 created, 0 merged, 0 conflicts, 1 failed")),
        "{stdout}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("rows ("),
        "no bar when piped: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A bad file: a clear message and a non-zero exit, nothing stored.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,email\nAda,ada@example.com\n").unwrap();
    let out = command(&db, backend)
        .args(["import", bad.to_str().unwrap(), "--account", &account])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("column 1 (\"name\") is not a field"),
        "{said}"
    );

    // Export, piped: the file on stdout, the summary on stderr.
    let out = command(&db, backend)
        .args(["export", "--account", &account, "--tag", "cli"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.lines().count(), 1 + 1_200);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1200 customers of"));

    // On a pseudo-terminal (`script`; the bar of so short an import may not be drawn).
    let again = dir.path().join("again.csv");
    std::fs::write(&again, "email\nterminal@example.com\n").unwrap();
    let line = format!(
        "{BIN} import {} --account {account}",
        again.to_str().unwrap()
    );
    let out = in_shell(Command::new("script"), &db, backend)
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .await
        .expect("run script (util-linux)");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("1 of 1 rows imported"), "{seen}");
}
