//! Shared test helpers: a fresh database per test on either backend, the real app
//! served on port 0, and an HTTP client.

use customer_list::config::Config;
use customer_list::App;
use reqwest::Method;
use serde_json::{json, Value};
use std::str::FromStr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `$name(backend)` as two tests, `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )*};
}

/// A fresh, empty database, removed when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

pub const POSTGRES_ENV: &str = "CUSTOMER_LIST_TEST_POSTGRES_URL";

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/hub.db", dir.path().display());
                Self {
                    url,
                    _dir: Some(dir),
                    pg_cleanup: None,
                }
            }
            Backend::Postgres => {
                let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
                    panic!(
                        "{POSTGRES_ENV} is not set: run the suite with scripts/test, which finds \
                         or starts a Postgres server"
                    )
                });
                let name = format!("cl_test_{}", uuid::Uuid::new_v4().simple());
                admin_sql(&base, &format!("CREATE DATABASE {name}")).await;
                let mut url = url::Url::parse(&base).expect("valid postgres URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    _dir: None,
                    pg_cleanup: Some((base, name)),
                }
            }
        }
    }
}

impl TestDb {
    /// No database (what a stopped app keeps once it handed its own back).
    fn none() -> Self {
        Self {
            url: String::new(),
            _dir: None,
            pg_cleanup: None,
        }
    }

    /// A copy of this database as it is now, as a backup would hold it (SQLite:
    /// `VACUUM INTO`; Postgres: a database made from it as a template, which needs it
    /// idle: stop its app first).
    pub async fn backup(&self, backend: Backend) -> TestDb {
        use sqlx::Connection;
        match backend {
            Backend::Sqlite => {
                let copy = TestDb::new(backend).await;
                let mut conn = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open the SQLite database");
                let path = copy.url.trim_start_matches("sqlite://").to_owned();
                sqlx::query("VACUUM INTO $1")
                    .bind(path)
                    .execute(&mut conn)
                    .await
                    .expect("VACUUM INTO");
                copy
            }
            Backend::Postgres => {
                let (base, source) = self.pg_cleanup.clone().expect("a test database");
                let name = format!("cl_test_{}", uuid::Uuid::new_v4().simple());
                admin_sql(&base, &format!("CREATE DATABASE {name} TEMPLATE {source}")).await;
                let mut url = url::Url::parse(&base).expect("valid postgres URL");
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    _dir: None,
                    pg_cleanup: Some((base, name)),
                }
            }
        }
    }
}

impl TestDb {
    /// Runs one statement on the database, as an operator's SQL session would.
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("open the SQLite database");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect to the test database");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
    }
}

async fn admin_sql(base: &str, sql: &str) {
    use sqlx::Connection;
    let options = sqlx::postgres::PgConnectOptions::from_str(base).expect("postgres URL");
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connect to the test Postgres server");
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg_cleanup.take() {
            // Async work cannot run in drop: drop the database from a helper thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(admin_sql(
                    &base,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ));
            })
            .join();
        }
    }
}

/// The real app, served on an ephemeral port with a known admin key.
pub struct TestApp {
    pub base: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub db: TestDb,
    pub backend: Backend,
    pub dispatcher: std::sync::Arc<customer_list::delivery::Dispatcher>,
}

pub fn random_key() -> String {
    format!("test-admin-{}", uuid::Uuid::new_v4().simple())
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns the app with a configuration changed by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_full(backend, configure, true).await
    }

    /// The app without its background dispatcher: tests drive `Dispatcher::step`.
    pub async fn spawn_manual(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_full(backend, configure, false).await
    }

    async fn spawn_full(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        dispatch: bool,
    ) -> Self {
        Self::spawn_on(backend, TestDb::new(backend).await, configure, dispatch).await
    }

    /// The app on a database of an earlier app (`into_database`), or a copy of one.
    pub async fn spawn_on(
        backend: Backend,
        db: TestDb,
        configure: impl FnOnce(&mut Config),
        dispatch: bool,
    ) -> Self {
        let admin_key = random_key();
        let mut config = Config::for_database(&db.url);
        config.admin_key = Some(admin_key.clone());
        // Tests drive the API far faster than a product would; the rate limit has a
        // test of its own.
        config.rate_limit = 1_000_000;
        configure(&mut config);
        let mut app = App::build(&config).await.expect("app builds");
        app.dispatch = dispatch;
        let dispatcher = app.dispatcher().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(listener, shutdown.clone()));
        Self {
            base,
            admin_key,
            client: reqwest::Client::new(),
            shutdown,
            server: Some(server),
            db,
            backend,
            dispatcher,
        }
    }

    /// Stops the server gracefully and hands back its database, kept.
    pub async fn into_database(mut self) -> TestDb {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        std::mem::replace(&mut self.db, TestDb::none())
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// Sends a request and reads the response whole, holding both to the OpenAPI
    /// document (`contract.rs`).
    #[track_caller]
    pub fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> impl std::future::Future<Output = Resp> + '_ {
        let location = std::panic::Location::caller();
        async move {
            let request = request.build().expect("a valid request");
            let (method, path) = (
                request.method().to_string(),
                request.url().path().to_owned(),
            );
            let sent: Option<Value> = request
                .body()
                .and_then(|b| b.as_bytes())
                .and_then(|b| serde_json::from_slice(b).ok());
            let resp = Resp::from(self.client.execute(request).await.expect("request sent")).await;
            let content_type = resp
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let checked = crate::contract::contract().check_exchange(
                &method,
                &path,
                sent.as_ref(),
                resp.status,
                content_type.as_deref(),
                &resp.body,
            );
            if let Err(broken) = checked {
                panic!("{broken}\n(request sent at {location})");
            }
            resp
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Sends raw bytes with a content type, as a client with a broken body would.
    pub async fn post_raw(&self, path: &str, key: &str, content_type: &str, body: Vec<u8>) -> Resp {
        let req = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        self.send(req).await
    }

    pub async fn create_partner(&self) -> String {
        let r = self
            .post("/v1/partners", &self.admin_key, json!({"name": "Reseller"}))
            .await;
        r.expect(201);
        r.str("partner_id")
    }

    pub async fn create_account(&self, partner_id: &str) -> String {
        let body = json!({"partner_id": partner_id, "name": "Salon"});
        let r = self.post("/v1/accounts", &self.admin_key, body).await;
        r.expect(201);
        r.str("account_id")
    }

    /// Returns the created product's JSON (with `product_id` and `api_key`).
    pub async fn create_product(&self, partner_id: Option<&str>) -> Value {
        let body = json!({"name": "Booking app", "partner_id": partner_id});
        let r = self.post("/v1/products", &self.admin_key, body).await;
        r.expect(201);
        r.body
    }

    pub async fn activate(&self, account_id: &str, product_id: &str, sync: &str) {
        let path = format!("/v1/accounts/{account_id}/products/{product_id}");
        let r = self
            .call(
                Method::PUT,
                &path,
                Some(&self.admin_key),
                Some(json!({"sync": sync})),
            )
            .await;
        assert!(r.status == 201 || r.status == 200, "activate: {r:?}");
    }

    /// Issues a key for `kind` (`partners`, `accounts`, `products`) `id`.
    pub async fn issue_key(&self, kind: &str, id: &str) -> (String, String) {
        let r = self
            .post(&format!("/v1/{kind}/{id}/keys"), &self.admin_key, json!({}))
            .await;
        r.expect(201);
        (r.str("key_id"), r.str("api_key"))
    }
}

impl TestApp {
    /// Polls `check` until it yields a value, at most `limit`.
    pub async fn wait_for<T, F, Fut>(&self, limit: std::time::Duration, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(found) = check().await {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met within {limit:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Self {
            status,
            headers,
            body,
        }
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    #[track_caller]
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field:?} in {}", self.body))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json error with this status and code; returns the named fields.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) -> Vec<String> {
        self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
        for member in ["type", "title", "detail"] {
            assert!(
                self.body[member].is_string(),
                "problem lacks {member}: {}",
                self.body
            );
        }
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// The (type, version) of every event row written for a customer, oldest first: the
    /// outbox as the dispatcher will read it.
    pub async fn events_of(&self, customer_id: &str) -> Vec<(String, i64)> {
        let sql = "SELECT type, version FROM events WHERE customer_id = $1 ORDER BY seq";
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.db.url).await.unwrap();
                let rows = sqlx::query_as(sql)
                    .bind(customer_id)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                rows
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
                let rows = sqlx::query_as(sql)
                    .bind(customer_id)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                rows
            }
        }
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }

    /// A `PATCH` conditional on `If-Match: <if_match>`.
    pub async fn patch_if_match(&self, path: &str, key: &str, if_match: &str, body: Value) -> Resp {
        let req = self
            .client
            .patch(format!("{}{}", self.base, path))
            .bearer_auth(key)
            .header("if-match", if_match)
            .json(&body);
        self.send(req).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    pub async fn put(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }
}

/// An account (region CA) with products on it: `a` and `b` two-way, `c` one-way, `d`
/// not activated; plus the account's own key.
pub struct Hub {
    pub app: TestApp,
    pub partner: String,
    pub account: String,
    pub account_key: String,
    pub products: std::collections::HashMap<&'static str, (String, String)>,
}

impl Hub {
    pub async fn new(backend: Backend) -> Self {
        let app = TestApp::spawn(backend).await;
        let partner = app.create_partner().await;
        let body = json!({"partner_id": partner, "name": "Salon", "default_region": "CA"});
        let account = app
            .post("/v1/accounts", &app.admin_key, body)
            .await
            .str("account_id");
        let mut products = std::collections::HashMap::new();
        for (name, sync) in [
            ("a", Some("two_way")),
            ("b", Some("two_way")),
            ("c", Some("one_way")),
            ("d", None),
        ] {
            let product = app.create_product(Some(&partner)).await;
            let id = product["product_id"].as_str().unwrap().to_owned();
            if let Some(sync) = sync {
                app.activate(&account, &id, sync).await;
            }
            products.insert(name, (id, product["api_key"].as_str().unwrap().to_owned()));
        }
        let (_, account_key) = app.issue_key("accounts", &account).await;
        Self {
            app,
            partner,
            account,
            account_key,
            products,
        }
    }

    pub fn key(&self, product: &str) -> &str {
        &self.products[product].1
    }

    pub fn product_id(&self, product: &str) -> &str {
        &self.products[product].0
    }

    /// Creates a customer in the account as `product`; asserts 201 and returns the record.
    pub async fn create(&self, product: &str, mut body: Value) -> Value {
        body["account_id"] = json!(self.account);
        let r = self
            .app
            .post("/v1/customers", self.key(product), body)
            .await;
        r.expect(201);
        r.body
    }
}

/// Lets webhooks reach test receivers on loopback (`spawn_with(backend, loopback_hooks)`).
pub fn loopback_hooks(config: &mut Config) {
    config.webhook_allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
}

/// A webhook receiver whose every body is checked against the document's `webhooks`.
pub async fn receiver() -> testkit::Receiver {
    testkit::Receiver::builder()
        .check(|body| crate::contract::contract().webhook_violations(body))
        .start()
        .await
}

/// The built binary's `serve` on an ephemeral port with `env` (and nothing else of the
/// test's `CUSTOMER_LIST_*` environment), its stderr collected as it comes.
pub async fn server(env: &[(&str, String)]) -> testkit::ServerProcess {
    testkit::Launch::new(env!("CARGO_BIN_EXE_customer-list"))
        .envs(env)
        .start()
        .await
}

/// Two servers (processes) sharing one fresh Postgres database, as replicas run.
pub struct Replicas {
    /// Kept while the servers run (dropping it drops the database).
    pub db: TestDb,
    pub admin: String,
    pub one: testkit::ServerProcess,
    pub two: testkit::ServerProcess,
}

/// Starts [`Replicas`] with an admin key and `extra` in their environment.
pub async fn replicas(extra: &[(&str, String)]) -> Replicas {
    let db = TestDb::new(Backend::Postgres).await;
    let admin = format!("{}{}", random_key(), random_key());
    let mut env = vec![
        ("CUSTOMER_LIST_DATABASE_URL", db.url.clone()),
        ("CUSTOMER_LIST_ADMIN_KEY", admin.clone()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    let one = server(&env).await;
    let two = server(&env).await;
    Replicas {
        db,
        admin,
        one,
        two,
    }
}

/// Two products activated two-way on a new account: one that writes, and one whose
/// webhook is a test receiver.
pub struct Pair {
    pub account: String,
    pub writer_key: String,
    /// The reader's creation response (with `product_id` and `webhook_secret`).
    pub reader: Value,
    pub receiver: testkit::Receiver,
}

impl TestApp {
    pub async fn writer_and_reader(&self) -> Pair {
        let partner = self.create_partner().await;
        let account = self.create_account(&partner).await;
        let receiver = receiver().await;
        let writer = self.create_product(None).await;
        let reader = self
            .post(
                "/v1/products",
                &self.admin_key,
                json!({"name": "reader", "webhook_url": receiver.url}),
            )
            .await;
        reader.expect(201);
        for p in [
            writer["product_id"].as_str().unwrap(),
            reader.body["product_id"].as_str().unwrap(),
        ] {
            self.activate(&account, p, "two_way").await;
        }
        Pair {
            account,
            writer_key: writer["api_key"].as_str().unwrap().to_owned(),
            reader: reader.body,
            receiver,
        }
    }
}
