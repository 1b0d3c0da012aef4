//! OpenAPI links: which response hands out an id, and which operations take it. Clients
//! (and the fuzz run's stateful phase) follow them: create a partner, then an account in
//! it, then a customer in that; a product, then its key; and so on.

use super::*;
use utoipa::openapi::link::LinkBuilder;

/// Where a link puts the value it carries.
enum Into {
    /// Path or query parameters, each from the response field of the same name.
    Parameters(&'static [&'static str]),
    /// The target's request body, with these fields.
    Body(Value),
}

/// (producing operation, its status, target operation, what goes where).
fn links() -> Vec<(&'static str, &'static str, &'static str, Into)> {
    use Into::{Body, Parameters};
    let id = |field: &str| format!("$response.body#/{field}");
    let partner = || Parameters(&["partner_id"]);
    let account = || Parameters(&["account_id"]);
    let product = || Parameters(&["product_id"]);
    let customer = || Parameters(&["customer_id"]);
    let mut links = vec![
        ("partners_create", "201", "partners_create_key", partner()),
        (
            "partners_create",
            "201",
            "accounts_create",
            Body(json!({"partner_id": id("partner_id"), "name": "Linked salon"})),
        ),
        (
            "partners_create",
            "201",
            "products_create",
            Body(json!({"partner_id": id("partner_id"), "name": "Linked app"})),
        ),
        (
            "accounts_create",
            "201",
            "customers_create",
            Body(json!({"account_id": id("account_id"), "first_name": "Ada"})),
        ),
    ];
    for target in [
        "accounts_show",
        "accounts_create_key",
        "accounts_list_activations",
        "customers_list",
        "conflicts_list",
    ] {
        links.push(("accounts_create", "201", target, account()));
    }
    for target in [
        "products_show",
        "products_update",
        "products_create_key",
        "webhooks_deliveries",
        "webhooks_enable",
        "webhooks_rotate",
    ] {
        links.push(("products_create", "201", target, product()));
    }
    for status in ["200", "201"] {
        let both = Parameters(&["account_id", "product_id"]);
        links.push(("accounts_activate", status, "accounts_deactivate", both));
    }
    for target in [
        "customers_show",
        "customers_update",
        "customers_remove",
        "customers_set_vendor_id",
        "customers_merge",
    ] {
        links.push(("customers_create", "201", target, customer()));
    }
    for producer in [
        "partners_create_key",
        "accounts_create_key",
        "products_create_key",
    ] {
        links.push((producer, "201", "keys_revoke", Parameters(&["key_id"])));
    }
    links
}

/// Adds [`links`] to the responses they start from.
pub(super) struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // The operation ids of the document, to find producers and to check targets.
        let mut known = std::collections::BTreeSet::new();
        for item in openapi.paths.paths.values() {
            for operation in operations(item) {
                known.extend(operation.operation_id.clone());
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let Some(producer) = operation.operation_id.clone() else {
                    continue;
                };
                for (from, status, target, into) in links() {
                    if from != producer {
                        continue;
                    }
                    assert!(known.contains(target), "link to unknown operation {target}");
                    let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status)
                    else {
                        panic!("{producer} has no inline {status} response to link from");
                    };
                    let link = LinkBuilder::new().operation_id(target);
                    let (name, link) = match into {
                        Into::Parameters(names) => (
                            format!("{target}.{}", names.join(".")),
                            names.iter().fold(link, |link, name| {
                                link.parameter(*name, format!("$response.body#/{name}"))
                            }),
                        ),
                        Into::Body(body) => {
                            (format!("{target}.body"), link.request_body(Some(body)))
                        }
                    };
                    response.links.insert(name, RefOr::T(link.build()));
                }
            }
        }
    }
}

fn operations(item: &utoipa::openapi::PathItem) -> impl Iterator<Item = &Operation> {
    [&item.get, &item.put, &item.post, &item.delete, &item.patch]
        .into_iter()
        .flatten()
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}
