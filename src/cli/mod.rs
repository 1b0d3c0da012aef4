//! The `customer-list` command: `serve` (default), `migrate`, and `admin` for the
//! section 7 actions from a shell. Admin actions run as the admin principal straight
//! against the database, through the same use cases and input parsers as the API;
//! `erasures` and `reapply-erasures` put erasures back after a restore from a backup;
//! `export` writes an account's list as CSV.

mod erasures;
mod transfer;

use crate::config::{init_logging, Config};
use crate::domain::tenancy::Principal;
use crate::domain::{AccountId, KeyId, ParseId, PartnerId, ProductId};
use crate::error::ApiError;
use crate::input::{parse_object, FromInput};
use crate::service::accounts::{AccountQuery, MAX_PAGE_SIZE};
use crate::service::Hub;
use crate::{storage, App};
use clap::{Parser, Subcommand};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(name = "customer-list", version, about = "The Customer List hub")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API server and the webhook dispatcher (the default).
    Serve {
        /// Serve the API only; run `customer-list dispatch` elsewhere to deliver webhooks.
        #[arg(long)]
        no_dispatcher: bool,
    },
    /// Run only the webhook dispatcher.
    Dispatch,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (as served at /openapi.json) and exit.
    Openapi,
    /// Print the erasure receipts of every account requested at or after a time, one
    /// JSON object per line: ship them off-site (a restore loses those made after its
    /// backup) for `reapply-erasures`.
    Erasures {
        /// RFC 3339, e.g. 2026-12-01T03:00:00Z.
        #[arg(long, value_parser = erasures::since_arg)]
        since: crate::domain::time::Timestamp,
    },
    /// After a restore from a backup: erase again every customer erased at or after a
    /// time (the backup's), from receipts kept where the restore did not reach.
    ReapplyErasures {
        /// RFC 3339: when the restored backup was taken.
        #[arg(long, value_parser = erasures::since_arg)]
        since: crate::domain::time::Timestamp,
        /// Where the receipts are: a database URL (the database as it was before the
        /// restore) or a file of `customer-list erasures` lines (`-` for stdin).
        #[arg(long)]
        from: String,
    },
    /// Write an account's customers as CSV to standard output (the list's filters and
    /// sort; a progress bar on a terminal; a summary on standard error).
    Export {
        #[arg(long, value_parser = id_arg::<AccountId>)]
        account: AccountId,
        #[command(flatten)]
        filters: transfer::ListFilters,
    },
    /// Import a CSV file into an account (its header names the fields; a progress bar
    /// on a terminal; a summary on standard output).
    Import {
        /// The CSV file (UTF-8, a header row, `,` or `;` separated).
        file: std::path::PathBuf,
        #[arg(long, value_parser = id_arg::<AccountId>)]
        account: AccountId,
        /// What a row that duplicates a customer does: conflict, reject or merge.
        #[arg(long, default_value = "conflict")]
        on_duplicate: String,
    },
    /// Manage partners, accounts, products, activations and keys (prints JSON).
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a partner.
    CreatePartner {
        #[arg(long)]
        name: String,
    },
    /// Create an account.
    CreateAccount {
        #[arg(long, value_parser = id_arg::<PartnerId>)]
        partner_id: PartnerId,
        #[arg(long)]
        name: String,
        #[arg(long)]
        default_region: Option<String>,
        #[arg(long)]
        dedupe_policy: Option<String>,
    },
    /// List accounts (the first 500), optionally of one partner.
    ListAccounts {
        #[arg(long, value_parser = id_arg::<PartnerId>)]
        partner_id: Option<PartnerId>,
    },
    /// Show an account.
    GetAccount {
        #[arg(value_parser = id_arg::<AccountId>)]
        account_id: AccountId,
    },
    /// Create a product; prints its API key and webhook secret once.
    CreateProduct {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = id_arg::<PartnerId>)]
        partner_id: Option<PartnerId>,
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Show a product.
    GetProduct {
        #[arg(value_parser = id_arg::<ProductId>)]
        product_id: ProductId,
    },
    /// Change a product's name or webhook URL (`--webhook-url ''` clears it).
    UpdateProduct {
        #[arg(value_parser = id_arg::<ProductId>)]
        product_id: ProductId,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Activate a product on an account (`two_way` or `one_way`).
    Activate {
        #[arg(long, value_parser = id_arg::<AccountId>)]
        account_id: AccountId,
        #[arg(long, value_parser = id_arg::<ProductId>)]
        product_id: ProductId,
        #[arg(long, default_value = "two_way")]
        sync: String,
    },
    /// Deactivate a product on an account.
    Deactivate {
        #[arg(long, value_parser = id_arg::<AccountId>)]
        account_id: AccountId,
        #[arg(long, value_parser = id_arg::<ProductId>)]
        product_id: ProductId,
    },
    /// List an account's activations.
    ListActivations {
        #[arg(long, value_parser = id_arg::<AccountId>)]
        account_id: AccountId,
    },
    /// Issue an API key for a partner, an account or a product.
    CreateKey {
        #[arg(long, group = "subject", required = true, value_parser = id_arg::<PartnerId>)]
        partner_id: Option<PartnerId>,
        #[arg(long, group = "subject", value_parser = id_arg::<AccountId>)]
        account_id: Option<AccountId>,
        #[arg(long, group = "subject", value_parser = id_arg::<ProductId>)]
        product_id: Option<ProductId>,
    },
    /// Revoke an API key.
    RevokeKey {
        #[arg(value_parser = id_arg::<KeyId>)]
        key_id: KeyId,
    },
}

/// An id given on the command line, parsed as its type.
fn id_arg<T: ParseId>(raw: &str) -> Result<T, String> {
    T::parse(raw).ok_or_else(T::malformed)
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        init_logging(self.config.log_format);
        let command = self.command.unwrap_or(Command::Serve {
            no_dispatcher: false,
        });
        match command {
            Command::Serve { no_dispatcher } => serve(&self.config, !no_dispatcher).await,
            Command::Dispatch => {
                let app = App::build(&self.config).await?;
                let shutdown = CancellationToken::new();
                crate::cancel_on_signal(shutdown.clone());
                eprintln!("customer-list dispatching webhooks");
                app.dispatcher().clone().run(shutdown).await;
                Ok(())
            }
            Command::Openapi => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::http::openapi_document())?
                );
                Ok(())
            }
            Command::Migrate => {
                let store = storage::connect(&self.config.database_url).await?;
                store.migrate().await?;
                store.close().await;
                eprintln!("migrations applied ({})", store.backend());
                Ok(())
            }
            Command::Erasures { since } => {
                let store = storage::connect(&self.config.database_url).await?;
                store.migrate().await?;
                let printed = erasures::print_receipts(&store, since).await;
                store.close().await;
                eprintln!("{} receipts since {since}", printed?);
                Ok(())
            }
            Command::ReapplyErasures { since, from } => {
                let store = storage::connect(&self.config.database_url).await?;
                store.migrate().await?;
                let hub = Hub::new(store.clone());
                let summary = erasures::reapply(&hub, since, &from).await;
                store.close().await;
                println!("{}", summary?);
                Ok(())
            }
            Command::Export { account, filters } => {
                let store = storage::connect(&self.config.database_url).await?;
                store.migrate().await?;
                let hub = Hub::new(store.clone());
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let result = transfer::export(&hub, &account, &filters, &mut out).await;
                drop(out);
                store.close().await;
                eprintln!("{}", result.map_err(describe)?);
                Ok(())
            }
            Command::Import {
                file,
                account,
                on_duplicate,
            } => {
                let store = storage::connect(&self.config.database_url).await?;
                store.migrate().await?;
                let hub = std::sync::Arc::new(Hub::new(store.clone()));
                let result = transfer::import(&hub, &file, &account, &on_duplicate).await;
                store.close().await;
                println!("{}", result.map_err(describe)?);
                Ok(())
            }
            Command::Admin { action } => {
                let store = storage::connect(&self.config.database_url).await?;
                store.migrate().await?;
                let hub = Hub::new(store.clone());
                let result = admin(&hub, action).await;
                store.close().await;
                let output = result.map_err(describe)?;
                println!("{}", serde_json::to_string_pretty(&output)?);
                Ok(())
            }
        }
    }
}

async fn serve(config: &Config, dispatch: bool) -> anyhow::Result<()> {
    let mut app = App::build(config).await?;
    app.dispatch = dispatch;
    if let Some(key) = &app.generated_admin_key {
        eprintln!("Generated the admin API key (shown once, store it now): {key}");
    }
    let listener = TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("customer-list listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let shutdown = CancellationToken::new();
    crate::cancel_on_signal(shutdown.clone());
    app.run(listener, shutdown).await
}

/// An API error as one line for the terminal.
fn describe(err: ApiError) -> anyhow::Error {
    let fields = err.field_errors();
    if fields.is_empty() {
        return anyhow::anyhow!("{} ({})", err.detail, err.code);
    }
    let said: Vec<String> = fields
        .iter()
        .map(|(field, message)| format!("{field} {message}"))
        .collect();
    anyhow::anyhow!("{} ({}): {}", err.detail, err.code, said.join("; "))
}

fn input<T: FromInput>(value: Value) -> Result<T, ApiError> {
    let map: Map<String, Value> = match value {
        Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    };
    parse_object(map)
}

fn to_json(value: impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

async fn admin(hub: &Hub, action: AdminCommand) -> Result<Value, ApiError> {
    let admin = &Principal::Admin;
    match action {
        AdminCommand::CreatePartner { name } => to_json(
            hub.create_partner(admin, input(json!({ "name": name }))?)
                .await?,
        ),
        AdminCommand::CreateAccount {
            partner_id,
            name,
            default_region,
            dedupe_policy,
        } => {
            let body = json!({"partner_id": partner_id, "name": name,
                "default_region": default_region, "dedupe_policy": dedupe_policy});
            to_json(hub.create_account(admin, input(body)?).await?)
        }
        AdminCommand::ListAccounts { partner_id } => {
            let query = AccountQuery {
                partner_id: partner_id,
                page_size: MAX_PAGE_SIZE,
                cursor: None,
            };
            let page = hub.list_accounts(admin, query).await?;
            Ok(json!({"accounts": to_json(page.items)?, "has_more": page.has_more}))
        }
        AdminCommand::GetAccount { account_id } => {
            to_json(hub.get_account(admin, &account_id).await?)
        }
        AdminCommand::CreateProduct {
            name,
            partner_id,
            webhook_url,
        } => {
            let body = json!({"name": name, "partner_id": partner_id, "webhook_url": webhook_url});
            to_json(hub.create_product(admin, input(body)?).await?)
        }
        AdminCommand::GetProduct { product_id } => {
            to_json(hub.get_product(admin, &product_id).await?)
        }
        AdminCommand::UpdateProduct {
            product_id,
            name,
            webhook_url,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), json!(name));
            }
            match webhook_url.as_deref() {
                Some("") => body.insert("webhook_url".into(), Value::Null),
                Some(url) => body.insert("webhook_url".into(), json!(url)),
                None => None,
            };
            let patch = parse_object(body)?;
            to_json(hub.update_product(admin, &product_id, patch).await?)
        }
        AdminCommand::Activate {
            account_id,
            product_id,
            sync,
        } => {
            let (activation, _) = hub
                .activate(
                    admin,
                    &account_id,
                    &product_id,
                    input(json!({ "sync": sync }))?,
                )
                .await?;
            to_json(activation)
        }
        AdminCommand::Deactivate {
            account_id,
            product_id,
        } => {
            hub.deactivate(admin, &account_id, &product_id).await?;
            Ok(json!({"deactivated": true}))
        }
        AdminCommand::ListActivations { account_id } => {
            let activations = hub.list_activations(admin, &account_id).await?;
            Ok(json!({ "activations": to_json(activations)? }))
        }
        AdminCommand::CreateKey {
            partner_id,
            account_id,
            product_id,
        } => {
            let subject = match (partner_id, account_id, product_id) {
                (Some(id), _, _) => Principal::Partner(id),
                (_, Some(id), _) => Principal::Account(id),
                (_, _, Some(id)) => Principal::Product(id),
                _ => {
                    return Err(ApiError::invalid_field(
                        "subject",
                        "name one of --partner-id, --account-id, --product-id",
                    ))
                }
            };
            to_json(hub.issue_key(admin, subject).await?)
        }
        AdminCommand::RevokeKey { key_id } => {
            hub.revoke_key(admin, &key_id).await?;
            Ok(json!({"revoked": true}))
        }
    }
}
