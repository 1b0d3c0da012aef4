//! `GET /v1/customers`: one account's live customers, keyset-paged, searched, sorted and
//! filtered.

use super::super::accounts::{parse_page_size, DEFAULT_PAGE_SIZE};
use super::Hub;
use crate::domain::cursor::KeyCursor;
use crate::domain::customer::{Customer, CustomerScope, CustomerStatus, Tag};
use crate::domain::tenancy::{Principal, ANY_KEY};
use crate::domain::time::{to_fixed_text, Timestamp};
use crate::domain::{AccountId, CustomerId, ProductId};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::input::{id_text, storable};
use crate::service::customers::input::vendor_id;
use crate::storage::{CustomerListQuery, SortKey, StoredCustomer};
use std::collections::HashMap;

/// The list's query parameters, as given.
pub struct CustomerListParams(pub HashMap<String, String>);

pub struct CustomerPage {
    pub customers: Vec<StoredCustomer>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
    pub total_results: i64,
}

const SORTS: [&str; 6] = [
    "created",
    "-created",
    "last_name",
    "-last_name",
    "first_name",
    "-first_name",
];

fn parse_sort(raw: &str) -> Result<(SortKey, bool), String> {
    let (descending, name) = match raw.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, raw),
    };
    let key = match name {
        "created" => SortKey::Created,
        "last_name" => SortKey::LastName,
        "first_name" => SortKey::FirstName,
        _ => return Err(format!("must be one of: {}", SORTS.join(", "))),
    };
    Ok((key, descending))
}

fn parse_time(raw: &str) -> Result<Timestamp, String> {
    raw.parse::<Timestamp>()
        .map_err(|_| "must be an RFC 3339 date-time such as 2026-11-29T10:00:00Z".into())
}

/// `q` as a `LIKE` pattern over the search text (lower-cased names, emails, phone
/// digits). A query that looks like a phone number is reduced to its digits, so
/// `(306) 555-0100` finds `+13065550100`.
pub fn search_pattern(q: &str) -> Option<String> {
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return None;
    }
    let phone_like = q.chars().any(|c| c.is_ascii_digit())
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let needle: String = if phone_like {
        q.chars().filter(char::is_ascii_digit).collect()
    } else {
        q
    };
    let mut escaped = String::with_capacity(needle.len() + 2);
    escaped.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    Some(escaped)
}

impl CustomerListParams {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl Hub {
    pub async fn list_customers(
        &self,
        who: &Principal,
        params: CustomerListParams,
    ) -> ApiResult<CustomerPage> {
        self.list_records(who, params, CustomerStatus::Live).await
    }

    /// `GET /v1/conflicts`: pending conflict records, paged like the customer list.
    pub async fn list_conflicts(
        &self,
        who: &Principal,
        params: CustomerListParams,
    ) -> ApiResult<CustomerPage> {
        self.list_records(who, params, CustomerStatus::Conflict)
            .await
    }

    /// The storage query of a listing's parameters, checked (every bad one named), for
    /// an account the caller reaches.
    pub(super) async fn list_query(
        &self,
        who: &Principal,
        params: &CustomerListParams,
        status: CustomerStatus,
    ) -> ApiResult<ListRequest> {
        who.require(ANY_KEY)?;
        let mut errors = Vec::new();
        let mut check = |name: &str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError::new(name, message));
            }
        };
        let account = match (params.get("account_id"), who) {
            (Some(raw), _) => {
                let parsed = id_text::<AccountId>(raw);
                let account = parsed.as_ref().ok().cloned();
                check("account_id", parsed.map(drop));
                account
            }
            (None, Principal::Account(me)) => Some(me.clone()),
            // Which key may omit it is the key's scope, not the request's form: 403.
            (None, _) => {
                return Err(ApiError::forbidden_because(
                    "only an account key lists without account_id",
                ))
            }
        };
        let mut page_size = DEFAULT_PAGE_SIZE;
        if let Some(raw) = params.get("page_size") {
            check("page_size", parse_page_size(raw).map(|n| page_size = n));
        }
        let sort_name = params.get("sort").unwrap_or("created");
        let mut sort = (SortKey::Created, false);
        check("sort", parse_sort(sort_name).map(|s| sort = s));
        let mut cursor = None;
        if let Some(raw) = params.get("cursor") {
            check(
                "cursor",
                KeyCursor::decode(raw, sort_name).map(|c| cursor = Some(c)),
            );
        }
        let mut times: [Option<Timestamp>; 3] = [None; 3];
        for (slot, name) in ["created_after", "created_before", "updated_since"]
            .iter()
            .enumerate()
        {
            if let Some(raw) = params.get(name) {
                check(name, parse_time(raw).map(|t| times[slot] = Some(t)));
            }
        }
        if let Some(q) = params.get("q") {
            check(
                "q",
                if q.chars().count() > 200 {
                    Err("must be at most 200 characters".into())
                } else {
                    Ok(())
                },
            );
        }
        let mut tag = None;
        if let Some(raw) = params.get("tag") {
            check(
                "tag",
                Tag::parse(raw).map(|t| tag = Some(t.as_str().to_owned())),
            );
        }
        let mut origin = None;
        if let Some(raw) = params.get("origin") {
            check(
                "origin",
                id_text::<ProductId>(raw).map(|p| origin = Some(p.to_string())),
            );
        }
        let mut vendor_customer_id = None;
        if let Some(raw) = params.get("vendor_customer_id") {
            check(
                "vendor_customer_id",
                vendor_id(raw).map(|v| vendor_customer_id = Some(v)),
            );
        }
        let mut after = None;
        if let Some(c) = &cursor {
            // The cursor's parts go into the query: they must be what this API wrote.
            let key_ok = match sort.0 {
                SortKey::Created => c.key.parse::<Timestamp>().is_ok(),
                _ => storable(&c.key).is_ok(),
            };
            match CustomerId::parse(&c.id) {
                Some(id) if key_ok => after = Some((c.key.clone(), id)),
                _ => check("cursor", Err("is not a cursor returned by this API".into())),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let Some(account) = account else {
            return Err(ApiError::invalid_field("account_id", "is required"));
        };
        let exists = self.store.get_account(&account).await?.is_some();
        let scope = CustomerScope::Account(account);
        if !exists || !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("account"));
        }
        let viewer: Option<ProductId> = match who {
            Principal::Product(id) => Some(id.clone()),
            _ => None,
        };
        let query = CustomerListQuery {
            scope: scope.key(),
            status,
            viewer,
            sort: sort.0,
            descending: sort.1,
            known_total: cursor.as_ref().and_then(|c| c.total),
            after,
            limit: page_size + 1,
            search: params.get("q").and_then(search_pattern),
            created_after: times[0],
            created_before: times[1],
            updated_since: times[2],
            tag,
            origin,
            vendor_customer_id,
        };
        Ok(ListRequest {
            query,
            sort_name: sort_name.to_owned(),
            page_size,
        })
    }

    async fn list_records(
        &self,
        who: &Principal,
        params: CustomerListParams,
        status: CustomerStatus,
    ) -> ApiResult<CustomerPage> {
        let ListRequest {
            query,
            sort_name,
            page_size,
        } = self.list_query(who, &params, status).await?;
        let sort = query.sort;
        let (mut customers, total_results) = self.store.list_customers(&query).await?;
        let has_more = customers.len() as i64 > page_size;
        customers.truncate(page_size as usize);
        let next_cursor = match customers.last() {
            Some(last) if has_more => {
                let c = &last.customer;
                Some(
                    KeyCursor {
                        sort: sort_name,
                        key: sort_key(sort, c),
                        id: c.customer_id.to_string(),
                        total: Some(total_results),
                    }
                    .encode(),
                )
            }
            _ => None,
        };
        Ok(CustomerPage {
            customers,
            next_cursor,
            has_more,
            total_results,
        })
    }
}

/// A checked listing: the storage query, the sort as named, the page size.
pub(super) struct ListRequest {
    pub(super) query: CustomerListQuery,
    pub(super) sort_name: String,
    pub(super) page_size: i64,
}

/// The key a listing sorted by `sort` continues after `customer` from.
pub(super) fn sort_key(sort: SortKey, customer: &Customer) -> String {
    match sort {
        SortKey::Created => to_fixed_text(&customer.created),
        SortKey::LastName => sort_text(customer.fields.last_name.as_ref().map(|n| n.as_str())),
        SortKey::FirstName => sort_text(customer.fields.first_name.as_ref().map(|n| n.as_str())),
    }
}

/// The stored sort key of a name (see the `*_sort` columns).
fn sort_text(name: Option<&str>) -> String {
    name.map(str::to_lowercase).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_escape_wildcards_and_read_phones_as_digits() {
        assert_eq!(search_pattern("(306) 555-0100").unwrap(), "%3065550100%");
        assert_eq!(search_pattern("Ada").unwrap(), "%ada%");
        assert_eq!(search_pattern("50%_off\\").unwrap(), "%50\\%\\_off\\\\%");
        assert_eq!(search_pattern("  "), None);
        assert_eq!(search_pattern("ada@ex").unwrap(), "%ada@ex%");
    }
}
