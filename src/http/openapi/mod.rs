//! The OpenAPI 3.1 document, generated from the code: every route is registered with
//! its `#[utoipa::path]` through `utoipa_axum`'s router, so the router and the document
//! cannot drift apart. The shapes below document the wire formats of `domain::wire` and
//! the input parsers (which read JSON field by field rather than through serde); the
//! suite validates every body it sends and receives against them (`tests/api/contract.rs`).
//!
//! Declared once here: the problem responses ([`problem`]) and the rules for which
//! operation answers which of them ([`CommonProblems`]); the webhook bodies, under the
//! document's `webhooks` ([`Webhooks`]).

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Required, SchemaFormat};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};

mod closed_sets;
mod customers;
mod events;
mod ids;
mod imports;
mod links;
mod privacy;
mod tenants;
mod text;

pub use closed_sets::*;
pub use customers::*;
pub use events::*;
pub use ids::*;
pub use imports::*;
pub use privacy::*;
pub use tenants::*;
pub use text::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Customer List",
        description = "One customer list per business, kept in sync across every product it uses. \
            Errors are application/problem+json (RFC 9457) with a stable `code`. \
            Webhook bodies are described under `webhooks`.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(
        // Beside what the operations collect: the query parameters' closed sets, and the
        // webhook bodies.
        schemas(
            Problem, OnDuplicate, Sort, IdType, DeliveryStatus, IfMatch, CustomerChanged,
            CustomerDeleted, CustomerMerged, CustomerErased, CustomerSnapshot, PartnerId, AccountId, ProductId, KeyId, ConflictId,
            RecordId, DeliveryId, ErasureId, ImportId, Cursor, VendorId, SearchText, TagText,
        ),
        responses(
            problem::BadRequest, problem::Unauthorized, problem::Forbidden, problem::NotFound,
            problem::Conflict, problem::PreconditionFailed, problem::PayloadTooLarge,
            problem::UnsupportedMediaType, problem::IdempotencyKeyReused,
            problem::TooManyRequests,
        ),
    ),
    tags(
        (name = "partners"), (name = "accounts"), (name = "products"), (name = "keys"),
        (name = "customers"), (name = "conflicts"), (name = "webhooks"), (name = "operations"),
    ),
)]
pub struct ApiDoc;

/// The document as JSON. utoipa 5.5 writes a link's `operationId` and `requestBody` in
/// snake case, which no reader of OpenAPI knows; they are renamed here.
pub fn to_json(document: &utoipa::openapi::OpenApi) -> Value {
    let mut json = serde_json::to_value(document).unwrap_or(Value::Null);
    if let Some(paths) = json.get_mut("paths").and_then(Value::as_object_mut) {
        let responses = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(|operation| operation.get_mut("responses"))
            .filter_map(Value::as_object_mut)
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            let links = response.get_mut("links").and_then(Value::as_object_mut);
            for link in links.into_iter().flat_map(|l| l.values_mut()) {
                let Some(link) = link.as_object_mut() else {
                    continue;
                };
                for (from, to) in [
                    ("operation_id", "operationId"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(from) {
                        link.insert(to.into(), value);
                    }
                }
            }
        }
    }
    json
}

/// Completes the document once every route has added its operation: the rules of
/// [`CommonProblems`] need the operations, and [`Webhooks`] the finished document.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    CommonProblems.modify(document);
    Webhooks.modify(document);
    IdentityRule.modify(document);
    links::Links.modify(document);
    // An erasure's body is optional (its fields have defaults); utoipa's `Option<T>` body
    // would also allow `null`.
    if let Some(body) = document
        .paths
        .paths
        .get_mut("/v1/customers/{customer_id}/erase")
        .and_then(|item| item.post.as_mut())
        .and_then(|operation| operation.request_body.as_mut())
    {
        body.required = Some(Required::False);
    }
}

/// SPEC section 4: a create names at least one of `first_name`, `last_name`, `email`,
/// `phone` (a blank name or an empty list names nothing). Not a shape utoipa derives, so
/// `CustomerInput` becomes `allOf` its properties and an `anyOf` of the four.
struct IdentityRule;

impl Modify for IdentityRule {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder};
        let visible = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("\\S"))
        };
        let some = || {
            OneOfBuilder::new()
                .item(visible())
                .item(ArrayBuilder::new().min_items(Some(1)))
        };
        let named = |field: &str, value: RefOr<Schema>| {
            ObjectBuilder::new().required(field).property(field, value)
        };
        let rule = AnyOfBuilder::new()
            .item(named("first_name", visible().into()))
            .item(named("last_name", visible().into()))
            .item(named("email", some().into()))
            .item(named("phone", some().into()));
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(input) = components.schemas.remove("CustomerInput") else {
            return;
        };
        let merged = AllOfBuilder::new()
            .item(input)
            .item(rule)
            .item(consent_rule(true))
            .description(Some("A create body."));
        components
            .schemas
            .insert("CustomerInput".into(), RefOr::T(merged.into()));
        // A patch's consent object needs a permission_to_contact beside it (whether that
        // changes the stored consent is the stored customer's to say: `400` if not).
        // A suppression is lifted for an email, a phone, or both.
        if let Some(lift) = components.schemas.remove("SuppressionLift") {
            let either = AnyOfBuilder::new()
                .item(ObjectBuilder::new().required("email"))
                .item(ObjectBuilder::new().required("phone"));
            let merged = AllOfBuilder::new()
                .item(lift)
                .item(either)
                .description(Some("The account and an email, a phone, or both."));
            components
                .schemas
                .insert("SuppressionLift".into(), RefOr::T(merged.into()));
        }
        if let Some(patch) = components.schemas.remove("CustomerPatch") {
            let merged = AllOfBuilder::new()
                .item(patch)
                .item(consent_rule(false))
                .description(Some("A JSON merge patch: absent keeps, `null` clears."));
            components
                .schemas
                .insert("CustomerPatch".into(), RefOr::T(merged.into()));
        }
    }
}

/// SPEC section 10: a `consent` object only with `permission_to_contact` (on a create,
/// `true`: a create without a grant changes no consent).
fn consent_rule(create: bool) -> Schema {
    use utoipa::openapi::schema::AnyOfBuilder;
    let mut permission = ObjectBuilder::new().schema_type(Type::Boolean);
    if create {
        permission = permission.enum_values(Some([true]));
    }
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new().property("consent", ObjectBuilder::new().schema_type(Type::Null)),
        )
        .item(
            ObjectBuilder::new()
                .required("permission_to_contact")
                .property("permission_to_contact", permission),
        )
        .build()
        .into()
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: admin, partner, account or product."))
                    .build(),
            ),
        );
    }
}

/// The problem responses, each declared once and referenced by status.
pub mod problem {
    use super::Problem;
    use utoipa::ToResponse;

    /// Invalid input: `validation_failed` (with `errors`, one per bad field) or `malformed_body`.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct BadRequest(Problem);

    /// No key, or one the hub does not know (or was revoked).
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct Unauthorized(Problem);

    /// The key may not do this.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct Forbidden(Problem);

    /// Nothing by that id that this key can reach (`merged_into` names the survivor of a merge).
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct NotFound(Problem);

    /// A duplicate (`duplicate`, with `conflicting_customer_id` and `matched_on`) or another conflict with the current state.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct Conflict(Problem);

    /// `If-Match` named another version (`current_version` names the current one).
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct PreconditionFailed(Problem);

    /// The body is over 1 MiB.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct PayloadTooLarge(Problem);

    /// The body is not `application/json`.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct UnsupportedMediaType(Problem);

    /// This `Idempotency-Key` was used with another request.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct IdempotencyKeyReused(Problem);

    /// Over this key's rate limit; `Retry-After` says when to try again.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct TooManyRequests(Problem);
}

/// What every operation of a kind can answer, added to each by rule rather than listed
/// 35 times: an authenticated operation `401`, `403` and `429`; one with a JSON body
/// `400`, `413` and `415`; a `POST` (which takes `Idempotency-Key`) `400` and `422`.
struct CommonProblems;

fn problem_ref(name: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::Ref(utoipa::openapi::Ref::from_response_name(name))
}

impl CommonProblems {
    fn apply(method: &HttpMethod, operation: &mut Operation, authenticated: bool) {
        let mut add = |status: &str, name: &str| {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| problem_ref(name));
        };
        if authenticated {
            add("401", "Unauthorized");
            add("403", "Forbidden");
            add("429", "TooManyRequests");
        }
        let has_body = operation.request_body.is_some();
        if has_body {
            add("400", "BadRequest");
            add("413", "PayloadTooLarge");
            add("415", "UnsupportedMediaType");
        }
        if *method == HttpMethod::Post {
            add("400", "BadRequest");
            add("422", "IdempotencyKeyReused");
            let header = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Repeats within 24 h with the same body return the first response. A \
                     fresh UUID per request is best; any 1 to 255 visible ASCII characters \
                     are accepted.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::Custom("uuid".into())))
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]+$")),
                ))
                .build();
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(header);
        }
    }
}

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Patch, &mut item.patch),
                (HttpMethod::Delete, &mut item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    // `security(())` marks the open operations (health, metrics).
                    let open = operation
                        .security
                        .as_ref()
                        .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                    Self::apply(&method, operation, !open);
                }
            }
        }
    }
}

/// The webhook bodies (SPEC section 6), one per event type, under the document's
/// `webhooks` (OpenAPI 3.1), so receivers can be generated from the document.
struct Webhooks;

impl Modify for Webhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let hook = |event: &str, schema: &str, summary: &str| {
            json!({"post": {
                "operationId": format!("webhook_{}", event.replace('.', "_")),
                "summary": summary,
                "description": "Standard Webhooks 1.0: signed with `webhook-id`, \
                    `webhook-timestamp` and `webhook-signature`. Answer 2xx to acknowledge; \
                    anything else (or no answer within the timeout) is retried; `410` disables \
                    the webhook.",
                "parameters": [
                    {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                    {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"}},
                ],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
                "responses": {"2XX": {"description": "Acknowledged"}},
            }})
        };
        let webhooks = json!({
            "customer.created": hook("customer.created", "CustomerChanged", "A customer was created"),
            "customer.updated": hook("customer.updated", "CustomerChanged", "A customer changed"),
            "customer.deleted": hook("customer.deleted", "CustomerDeleted", "A customer was deleted"),
            "customer.merged": hook("customer.merged", "CustomerMerged", "Customers were merged into one"),
            "customer.erased": hook("customer.erased", "CustomerErased", "A customer was erased: forget them"),
            "customer.snapshot": hook("customer.snapshot", "CustomerSnapshot",
                "A customer's current state, sent to a product catching up: not a new customer"),
        });
        // utoipa 5 has no field for `webhooks`; its extensions serialize at the top level.
        openapi
            .extensions
            .get_or_insert_with(Default::default)
            .insert("webhooks".into(), webhooks);
    }
}

/// An error (RFC 9457).
#[derive(ToSchema)]
pub struct Problem {
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// Stable and machine-readable: `validation_failed`, `duplicate`, `not_found`, …
    code: String,
    /// Every bad field, for `validation_failed`.
    errors: Option<Vec<FieldProblem>>,
    conflict_id: Option<String>,
    conflicting_customer_id: Option<String>,
    matched_on: Option<Vec<Matched>>,
    merged_into: Option<String>,
    /// A customer erased (SPEC section 10): the erasure's id.
    erasure_id: Option<String>,
    /// `suppressed`: the field whose value was erased with suppression (not echoed).
    field: Option<String>,
    current_version: Option<i64>,
    hint: Option<String>,
}

#[derive(ToSchema)]
pub struct FieldProblem {
    field: String,
    message: String,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Matched {
    field: String,
    value: String,
}
