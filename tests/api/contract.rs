//! The OpenAPI document as a contract the suite holds the hub to (SPEC section 8): every
//! request the tests send through [`TestApp`](crate::support::TestApp) and every response
//! they receive is checked against `/openapi.json`'s schemas with an independent JSON
//! Schema validator, and so is every webhook the tests' receivers are sent.
//!
//! - A response's status must be documented for its operation, and its JSON body must
//!   validate against that status's schema.
//! - A request body the hub accepted (2xx) must validate against the operation's request
//!   schema: the document may not be stricter than the hub. (A refused body proves
//!   nothing: tests send invalid ones on purpose.)
//! - A webhook body must validate against its event type's schema under `webhooks`.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// The document and the validators compiled from it, one per schema location.
pub struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let document = customer_list::http::openapi_document();
    Contract {
        document,
        validators: Mutex::default(),
    }
});

pub fn contract() -> &'static Contract {
    &CONTRACT
}

impl Contract {
    /// The path template of the documented operation `method` `path` matches (literal
    /// segments win over parameters: `/v1/customers/batch` over `/{customer_id}`).
    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let segments: Vec<&str> = path.split('/').collect();
        let method = method.to_ascii_lowercase();
        self.document["paths"]
            .as_object()?
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literals = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') {
                        continue;
                    }
                    if part != segment {
                        return None;
                    }
                    literals += 1;
                }
                let operation = item.get(&method)?;
                Some((literals, template.clone(), operation))
            })
            .max_by_key(|(literals, _, _)| *literals)
            .map(|(_, template, operation)| (template, operation))
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(pointer) => self
                .document
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or(&Value::Null),
            None => value,
        }
    }

    /// A validator for `schema`, which may refer to the document's components.
    fn validator(&self, location: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(location.to_owned())
            .or_insert_with(|| {
                // The schema with the document's components beside it, so that
                // `#/components/schemas/...` resolves.
                let mut wrapped = schema.clone();
                if let Value::Object(map) = &mut wrapped {
                    map.insert("components".into(), self.document["components"].clone());
                } else {
                    wrapped = json!({"allOf": [schema], "components": self.document["components"]});
                }
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(true)
                    .build(&wrapped)
                    .unwrap_or_else(|e| panic!("the schema at {location} compiles: {e}"));
                Arc::new(validator)
            })
            .clone()
    }

    fn violations(&self, location: &str, schema: &Value, instance: &Value) -> Vec<String> {
        self.validator(location, schema)
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Checks one exchange: what broke the contract, if anything did.
    pub fn check_exchange(
        &self,
        method: &str,
        path: &str,
        request: Option<&Value>,
        status: u16,
        content_type: Option<&str>,
        response: &Value,
    ) -> Result<(), String> {
        let path = path.split('?').next().unwrap_or(path);
        let Some((template, operation)) = self.operation(method, path) else {
            if status == 404 || status == 405 {
                return Ok(()); // an unknown route or method, answered as such
            }
            return Err(format!(
                "{method} {path} answered {status} but is not in the document"
            ));
        };
        let what = format!("{method} {template}");
        // Only an accepted body is evidence: tests send refused ones on purpose.
        if let Some(body) = request.filter(|_| (200..300).contains(&status)) {
            if let Some(schema) = operation
                .pointer("/requestBody/content/application~1json/schema")
                .map(|s| self.resolve(s))
            {
                let problems = self.violations(&format!("{what} request"), schema, body);
                if !problems.is_empty() {
                    return Err(format!(
                        "{what} accepted ({status}) a body the document refuses: {problems:?}\nbody: {body}"
                    ));
                }
            }
        }
        // 500 is never documented: the suite fails on it anyway where it matters.
        if status == 500 {
            return Ok(());
        }
        let responses = &operation["responses"];
        let documented = responses
            .get(status.to_string())
            .or_else(|| responses.get(format!("{}XX", status / 100)))
            .or_else(|| responses.get("default"));
        let Some(documented) = documented.map(|r| self.resolve(r)) else {
            return Err(format!(
                "{what} answered {status}, which the document does not list"
            ));
        };
        let Some(content_type) = content_type.filter(|c| c.contains("json")) else {
            return Ok(());
        };
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some(schema) = documented["content"]
            .get(media)
            .or_else(|| documented["content"].get("application/json"))
            .and_then(|c| c.get("schema"))
            .map(|s| self.resolve(s))
        else {
            return Err(format!(
                "{what} answered {status} with {media}, which the document does not describe"
            ));
        };
        let problems = self.violations(&format!("{what} {status} {media}"), schema, response);
        if !problems.is_empty() {
            return Err(format!(
                "{what} answered {status} with a body the document refuses: {problems:?}\nbody: {response}"
            ));
        }
        Ok(())
    }

    /// The problems of a webhook body under the document's `webhooks`.
    pub fn webhook_violations(&self, body: &Value) -> Vec<String> {
        let Some(kind) = body["type"].as_str() else {
            return vec![format!("no type in {body}")];
        };
        let Some(schema) = self.document["webhooks"][kind]
            .pointer("/post/requestBody/content/application~1json/schema")
            .map(|s| self.resolve(s))
        else {
            return vec![format!("the document has no webhook {kind:?}")];
        };
        self.violations(&format!("webhook {kind}"), schema, body)
    }
}

/// The checker itself: it accepts the wire as the SPEC shows it and refuses what
/// departs from the document, so a drift cannot pass unseen.
mod checks {
    use super::contract;
    use serde_json::json;

    fn customer() -> serde_json::Value {
        json!({
            "customer_id": "CUSTOMER-1", "vendor_customer_id": "crm-42", "account_id": "AG-1",
            "first_name": "Ada", "last_name": "Lovelace", "email": ["ada@example.com"],
            "phone": ["+13065550100"], "address": "1 Main St", "city": "Saskatoon",
            "state": "SK", "country": "CA", "tags": ["vip"],
            "permission_to_contact": "2026-11-29T10:00:00Z", "origins": ["MP-1"],
            "version": 3, "created": "2026-11-29T10:00:00Z", "updated": "2026-11-29T10:00:00Z",
        })
    }

    #[test]
    fn the_walk_through_bodies_validate() {
        let c = contract();
        for email in [
            json!("ada@example.com"),
            json!(["ada@example.com", "a@b.example"]),
        ] {
            let body = json!({"account_id": "AG-0190f2a4-5b6c-7d8e-9f01-23456789abcd",
                "first_name": "Ada", "email": email,
                "phone": "306 555 0100", "permission_to_contact": true});
            let r = c.check_exchange(
                "POST",
                "/v1/customers",
                Some(&body),
                201,
                Some("application/json"),
                &customer(),
            );
            assert_eq!(r, Ok(()));
        }
    }

    #[test]
    fn a_response_unlike_its_schema_is_refused() {
        let mut bad = customer();
        bad["version"] = json!("3");
        bad["created"] = json!("yesterday");
        let r = contract().check_exchange(
            "GET",
            "/v1/customers/CUSTOMER-1",
            None,
            200,
            Some("application/json"),
            &bad,
        );
        let err = r.unwrap_err();
        assert!(
            err.contains("/version") && err.contains("/created"),
            "{err}"
        );
    }

    #[test]
    fn an_undocumented_status_is_refused() {
        let r = contract().check_exchange(
            "GET",
            "/v1/customers/CUSTOMER-1",
            None,
            418,
            Some("application/json"),
            &json!({}),
        );
        assert!(r.unwrap_err().contains("does not list"));
    }

    #[test]
    fn an_accepted_body_the_document_refuses_is_reported() {
        let body = json!({"account_id": "AG-1", "first_name": "Ada", "nickname": "A"});
        let r = contract().check_exchange(
            "POST",
            "/v1/customers",
            Some(&body),
            201,
            Some("application/json"),
            &customer(),
        );
        assert!(r.unwrap_err().contains("nickname"));
        // Refused, the same body proves nothing.
        let problem = json!({"type": "urn:customer-list:problem:validation_failed",
            "title": "Invalid input", "status": 400, "detail": "1 invalid field",
            "code": "validation_failed", "errors": [{"field": "nickname", "message": "unknown field"}]});
        let r = contract().check_exchange(
            "POST",
            "/v1/customers",
            Some(&body),
            400,
            Some("application/problem+json"),
            &problem,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn webhook_bodies_are_held_to_their_type() {
        let mut data = customer();
        let map = data.as_object_mut().unwrap();
        map.remove("customer_id");
        map.insert("contact_id".into(), json!("CUSTOMER-1"));
        map.insert("origin".into(), json!("MP-1"));
        map.insert("permission_to_contact".into(), json!(true));
        let body =
            json!({"type": "customer.updated", "timestamp": "2026-11-29T10:00:00Z", "data": data});
        assert_eq!(contract().webhook_violations(&body), Vec::<String>::new());
        let mut bad = body.clone();
        bad["data"]["permission_to_contact"] = json!("2026-11-29T10:00:00Z");
        assert!(!contract().webhook_violations(&bad).is_empty());
        let mut unknown = body;
        unknown["type"] = json!("customer.renamed");
        assert!(!contract().webhook_violations(&unknown).is_empty());
    }
}
