//! The storage conformance suite: the same expectations of the `Store` trait, run against
//! both backends.

use crate::on_both_backends;
use crate::support::{Backend, TestDb};
use chrono::Duration;
use customer_list::domain::tenancy::{ApiKey, Principal};
use customer_list::domain::tenants::{
    Account, Activation, DedupePolicy, DisplayName, Partner, Product, Region, SyncMode,
    WebhookHealth, WebhookStatus,
};
use customer_list::domain::{time, AccountId, KeyId, PartnerId, ProductId};
use customer_list::storage::{connect, AccountPage, DynStore, StoreError};

async fn store(backend: Backend) -> (TestDb, DynStore) {
    let db = TestDb::new(backend).await;
    let store = connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

fn partner() -> Partner {
    Partner {
        partner_id: PartnerId::generate(),
        name: DisplayName::parse("Reseller").unwrap(),
        created: time::now(),
    }
}

fn account(partner: &PartnerId, created: time::Timestamp) -> Account {
    Account {
        account_id: AccountId::generate(),
        partner_id: partner.clone(),
        name: DisplayName::parse("Salon").unwrap(),
        default_region: Region::parse("CA").unwrap(),
        dedupe_policy: DedupePolicy::Email,
        created,
        updated: created,
    }
}

fn product(partner: Option<&PartnerId>) -> Product {
    let now = time::now();
    Product {
        product_id: ProductId::generate(),
        partner_id: partner.cloned(),
        name: DisplayName::parse("Booking").unwrap(),
        webhook_url: None,
        webhook_secret: "whsec_test".into(),
        webhook_status: WebhookStatus::Enabled,
        webhook_disabled_reason: None,
        webhook_health: WebhookHealth::Healthy,
        failing_since: None,
        created: now,
        updated: now,
    }
}

fn key(principal: Principal) -> ApiKey {
    ApiKey {
        key_id: KeyId::generate(),
        principal,
        created: time::now(),
        revoked: None,
    }
}

on_both_backends!(
    migrations_are_idempotent_and_ready,
    records_round_trip_exactly,
    accounts_page_in_creation_order,
    activations_upsert_and_delete,
    keys_authenticate_until_revoked,
    unique_violations_are_conflicts,
    idempotency_keys_expire_and_abandoned_claims_are_taken_over,
    webhooks_failing_for_five_days_are_disabled,
);

async fn migrations_are_idempotent_and_ready(backend: Backend) {
    let (_db, store) = store(backend).await;
    store.migrate().await.expect("second migrate is a no-op");
    assert!(store.check_ready().await.unwrap());
    assert_eq!(
        store.backend(),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
}

async fn records_round_trip_exactly(backend: Backend) {
    let (_db, store) = store(backend).await;
    let p = partner();
    store.insert_partner(&p).await.unwrap();
    assert_eq!(
        store.get_partner(&p.partner_id).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        store.get_partner(&PartnerId::generate()).await.unwrap(),
        None
    );

    let a = account(&p.partner_id, time::now());
    store.insert_account(&a).await.unwrap();
    assert_eq!(
        store.get_account(&a.account_id).await.unwrap(),
        Some(a.clone())
    );

    let mut m = product(Some(&p.partner_id));
    let first_key = key(Principal::Product(m.product_id.clone()));
    store
        .insert_product(&m, &first_key, "digest-product")
        .await
        .unwrap();
    assert_eq!(
        store.get_product(&m.product_id).await.unwrap(),
        Some(m.clone())
    );
    let found = store
        .find_active_key("digest-product")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.principal, Principal::Product(m.product_id.clone()));

    m.name = DisplayName::parse("Renamed").unwrap();
    m.webhook_url =
        Some(customer_list::domain::tenants::WebhookUrl::parse("https://example.com/h").unwrap());
    m.updated = time::now();
    store.update_product(&m).await.unwrap();
    assert_eq!(store.get_product(&m.product_id).await.unwrap(), Some(m));
}

async fn accounts_page_in_creation_order(backend: Backend) {
    let (_db, store) = store(backend).await;
    let (p1, p2) = (partner(), partner());
    store.insert_partner(&p1).await.unwrap();
    store.insert_partner(&p2).await.unwrap();
    let start = time::now();
    let mut mine = Vec::new();
    // Same timestamps on purpose: ties are broken by id.
    for i in 0..7 {
        let at = start + Duration::seconds(i / 2);
        let a = account(&p1.partner_id, at);
        store.insert_account(&a).await.unwrap();
        store
            .insert_account(&account(&p2.partner_id, at))
            .await
            .unwrap();
        mine.push(a);
    }
    mine.sort_by(|a, b| (a.created, &a.account_id).cmp(&(b.created, &b.account_id)));

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = AccountPage {
            partner: Some(p1.partner_id.clone()),
            after: after.clone(),
            limit: 3,
        };
        let rows = store.list_accounts(&page).await.unwrap();
        if rows.is_empty() {
            break;
        }
        after = rows.last().map(|a| (a.created, a.account_id.clone()));
        seen.extend(rows);
    }
    assert_eq!(seen, mine);
    let all = AccountPage {
        partner: None,
        after: None,
        limit: 100,
    };
    assert_eq!(store.list_accounts(&all).await.unwrap().len(), 14);
}

async fn activations_upsert_and_delete(backend: Backend) {
    let (_db, store) = store(backend).await;
    let p = partner();
    store.insert_partner(&p).await.unwrap();
    let a = account(&p.partner_id, time::now());
    store.insert_account(&a).await.unwrap();
    let m = product(None);
    store
        .insert_product(&m, &key(Principal::Product(m.product_id.clone())), "d1")
        .await
        .unwrap();

    let first = time::now();
    let activation = Activation {
        account_id: a.account_id.clone(),
        product_id: m.product_id.clone(),
        sync: SyncMode::TwoWay,
        created: first,
        updated: first,
    };
    let stored = store.upsert_activation(&activation, None).await.unwrap();
    assert_eq!(stored, activation);

    let later = first + Duration::seconds(5);
    let changed = Activation {
        sync: SyncMode::OneWay,
        created: later,
        updated: later,
        ..activation.clone()
    };
    let stored = store.upsert_activation(&changed, None).await.unwrap();
    assert_eq!(stored.sync, SyncMode::OneWay);
    assert_eq!(
        stored.created, first,
        "re-activation keeps the original creation time"
    );
    assert_eq!(stored.updated, later);

    assert_eq!(
        store.list_activations(&a.account_id).await.unwrap(),
        vec![stored.clone()]
    );
    assert_eq!(
        store
            .get_activation(&a.account_id, &m.product_id)
            .await
            .unwrap(),
        Some(stored)
    );
    assert!(store
        .delete_activation(&a.account_id, &m.product_id)
        .await
        .unwrap());
    assert!(!store
        .delete_activation(&a.account_id, &m.product_id)
        .await
        .unwrap());
    assert!(store
        .list_activations(&a.account_id)
        .await
        .unwrap()
        .is_empty());
}

async fn keys_authenticate_until_revoked(backend: Backend) {
    let (_db, store) = store(backend).await;
    assert!(!store.has_active_admin_key().await.unwrap());
    let p = partner();
    store.insert_partner(&p).await.unwrap();
    let k = key(Principal::Partner(p.partner_id.clone()));
    store.insert_key(&k, "digest-1").await.unwrap();
    assert_eq!(
        store.find_active_key("digest-1").await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(store.find_active_key("digest-2").await.unwrap(), None);

    assert!(store.revoke_key(&k.key_id, time::now()).await.unwrap());
    assert!(
        !store.revoke_key(&k.key_id, time::now()).await.unwrap(),
        "revoking twice"
    );
    assert_eq!(store.find_active_key("digest-1").await.unwrap(), None);
    assert!(store
        .get_key(&k.key_id)
        .await
        .unwrap()
        .unwrap()
        .revoked
        .is_some());

    // The configured admin key replaces its digest and clears a revocation.
    let id = KeyId::from_string("KEY-bootstrap-admin");
    store
        .put_admin_key(&id, "admin-a", time::now())
        .await
        .unwrap();
    assert!(store.has_active_admin_key().await.unwrap());
    store.revoke_key(&id, time::now()).await.unwrap();
    store
        .put_admin_key(&id, "admin-b", time::now())
        .await
        .unwrap();
    assert_eq!(store.find_active_key("admin-a").await.unwrap(), None);
    let admin = store.find_active_key("admin-b").await.unwrap().unwrap();
    assert_eq!(admin.principal, Principal::Admin);
}

async fn unique_violations_are_conflicts(backend: Backend) {
    let (_db, store) = store(backend).await;
    let p = partner();
    store.insert_partner(&p).await.unwrap();
    let err = store.insert_partner(&p).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let k = key(Principal::Partner(p.partner_id.clone()));
    store.insert_key(&k, "same-digest").await.unwrap();
    let other = key(Principal::Partner(p.partner_id.clone()));
    let err = store.insert_key(&other, "same-digest").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn idempotency_keys_expire_and_abandoned_claims_are_taken_over(backend: Backend) {
    use customer_list::storage::{IdempotencyClaim, IdempotencyState};
    let (_db, store) = store(backend).await;
    let t0 = time::now();
    let long_ago = t0 - Duration::hours(48);
    let begin = |at: time::Timestamp, hash: &'static str| {
        let store = store.clone();
        async move {
            store
                .idempotency_begin(IdempotencyClaim {
                    principal: "p",
                    key: "k",
                    request_hash: hash,
                    now: at,
                    expired_before: at - Duration::hours(24),
                    abandoned_before: at - Duration::seconds(60),
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(begin(t0, "h1").await, IdempotencyState::Started);
    assert_eq!(
        begin(t0, "h1").await,
        IdempotencyState::InProgress {
            request_hash: "h1".into()
        }
    );
    // Unfinished for over a minute: its server died; the key is taken over.
    assert_eq!(
        begin(t0 + Duration::seconds(61), "h2").await,
        IdempotencyState::Started
    );
    let response = serde_json::json!({"body": "{}"});
    store
        .idempotency_finish("p", "k", 201, &response)
        .await
        .unwrap();
    assert_eq!(
        begin(t0 + Duration::seconds(62), "h2").await,
        IdempotencyState::Completed {
            request_hash: "h2".into(),
            status: 201,
            response: response.clone()
        }
    );
    // After 24 hours the key is forgotten.
    assert_eq!(
        begin(t0 + Duration::hours(25), "h3").await,
        IdempotencyState::Started
    );
    store.idempotency_release("p", "k").await.unwrap();
    assert_eq!(begin(t0, "h4").await, IdempotencyState::Started);
    assert_eq!(store.idempotency_purge(long_ago).await.unwrap(), 0);
    assert_eq!(
        store
            .idempotency_purge(t0 + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
}

async fn webhooks_failing_for_five_days_are_disabled(backend: Backend) {
    use customer_list::domain::customer::{Customer, CustomerFields, CustomerScope, PersonName};
    use customer_list::domain::{wire, CustomerId, EventId};
    use customer_list::storage::{AttemptRecord, AttemptResult, NewCustomer, NewEvent};
    let (_db, store) = store(backend).await;
    // A product with a webhook, activated two-way, and one customer event: one delivery.
    let p = partner();
    store.insert_partner(&p).await.unwrap();
    let a = account(&p.partner_id, time::now());
    store.insert_account(&a).await.unwrap();
    let mut m = product(None);
    m.webhook_url =
        Some(customer_list::domain::tenants::WebhookUrl::parse("http://127.0.0.1:9/h").unwrap());
    store
        .insert_product(&m, &key(Principal::Product(m.product_id.clone())), "d")
        .await
        .unwrap();
    let t0 = time::now();
    let activation = Activation {
        account_id: a.account_id.clone(),
        product_id: m.product_id.clone(),
        sync: SyncMode::TwoWay,
        created: t0,
        updated: t0,
    };
    store.upsert_activation(&activation, None).await.unwrap();
    let fields = CustomerFields {
        first_name: PersonName::parse("Ada").unwrap(),
        ..Default::default()
    };
    let customer = Customer::new(
        CustomerId::generate(),
        CustomerScope::Account(a.account_id.clone()),
        fields,
        false,
        None,
        t0,
    );
    let event = NewEvent {
        event_id: EventId::generate(),
        account_id: a.account_id.clone(),
        customer_id: customer.customer_id.clone(),
        kind: wire::CUSTOMER_CREATED,
        version: 1,
        origin: None,
        data: wire::event_data(&customer, None),
        created: t0,
    };
    let row = NewCustomer {
        customer,
        identifiers: Vec::new(),
        association: None,
        event: Some(event),
        consent: None,
    };
    store.insert_customers(&[row]).await.unwrap();
    let claimed = store
        .claim_deliveries(
            t0 + Duration::seconds(1),
            t0 + Duration::seconds(60),
            10,
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "the event queued one delivery");
    let delivery_id = claimed[0].delivery_id.clone();
    let mut attempt = 0;
    let mut record = |at: time::Timestamp, result: AttemptResult| {
        attempt += 1;
        AttemptRecord {
            snapshot: false,
            probe: false,
            delivery_id: delivery_id.clone(),
            product_id: m.product_id.clone(),
            attempt,
            at,
            response_code: Some(500),
            latency_ms: 3,
            response_body: None,
            error: None,
            result,
            disable_if_failing_since: at - Duration::days(5),
        }
    };
    let status = |store: DynStore| {
        let id = m.product_id.clone();
        async move { store.get_product(&id).await.unwrap().unwrap() }
    };
    let retry = AttemptResult::Retry(t0);
    store
        .record_attempt(&record(t0, retry.clone()))
        .await
        .unwrap();
    store
        .record_attempt(&record(t0 + Duration::days(4), retry.clone()))
        .await
        .unwrap();
    assert_eq!(
        status(store.clone()).await.webhook_status,
        WebhookStatus::Enabled,
        "four days of failure"
    );
    store
        .record_attempt(&record(
            t0 + Duration::days(5) + Duration::seconds(1),
            retry.clone(),
        ))
        .await
        .unwrap();
    let disabled = status(store.clone()).await;
    assert_eq!(disabled.webhook_status, WebhookStatus::Disabled);
    assert!(disabled.webhook_disabled_reason.unwrap().contains("5 days"));
    // A success in between resets the clock.
    store
        .set_webhook_status(&m.product_id, true, None, t0)
        .await
        .unwrap();
    store
        .record_attempt(&record(t0, retry.clone()))
        .await
        .unwrap();
    store
        .record_attempt(&record(t0 + Duration::days(3), AttemptResult::Delivered))
        .await
        .unwrap();
    store
        .record_attempt(&record(t0 + Duration::days(6), retry))
        .await
        .unwrap();
    assert_eq!(
        status(store.clone()).await.webhook_status,
        WebhookStatus::Enabled
    );
}
