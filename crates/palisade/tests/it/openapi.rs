//! The OpenAPI document as a contract a client generator or a fuzzer can rely on: it is a valid
//! OpenAPI 3.1 document, and every answer a route gives to a malformed id, a missing credential,
//! a wrong content type or a malformed or oversized body is a status the document lists for that
//! operation, with the error body.

use crate::support::raw;
use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

both!(
    openapi_document_is_valid_openapi_3_1,
    every_route_answers_bad_input_only_with_documented_statuses,
    declared_enums_and_ranges_are_what_the_server_accepts,
);

/// The official JSON Schema of OpenAPI 3.1 documents (see `tests/data/README.md`).
const OAS_3_1_SCHEMA: &str = include_str!("../data/openapi-3.1-schema.json");

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Query parameters a route cannot answer without (anything else must be optional).
const REQUIRED_QUERY_PARAMS: &[(&str, &str)] = &[
    ("/api/v1/audit-logs/export", "format"),
    ("/api/v1/contacts/export", "format"),
    // Meta's handshake is refused without them.
    ("/webhooks/whatsapp/{connection_id}", "hub.mode"),
    ("/webhooks/whatsapp/{connection_id}", "hub.verify_token"),
    ("/webhooks/whatsapp/{connection_id}", "hub.challenge"),
];

async fn served_document(app: &TestApp) -> Value {
    let r = raw(app, Method::GET, "/api/v1/openapi.json", &[], None).await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
    r.body
}

/// Every operation of the document: (method, path template, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                out.push((m.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn params<'a>(op: &'a Value, location: &str) -> Vec<&'a Value> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["in"] == location).collect())
        .unwrap_or_default()
}

/// The `{name}`s of a path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Whether the operation can be called without a credential (no security, or an empty
/// alternative).
fn requires_credential(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| {
        !s.is_empty()
            && s.iter()
                .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
    })
}

fn is_error_body(response: &Value) -> bool {
    response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

async fn openapi_document_is_valid_openapi_3_1(db: Db) {
    let app = spawn_app(db).await;
    let doc = served_document(&app).await;

    // 1. The official OpenAPI 3.1 schema (draft 2020-12).
    let schema: Value = serde_json::from_str(OAS_3_1_SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid OpenAPI 3.1 document:\n{}",
        errors.join("\n")
    );

    // 2. What the schema cannot express.
    let mut problems: Vec<String> = Vec::new();
    let mut op_ids: BTreeMap<String, String> = BTreeMap::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{} {path}", method.to_uppercase());
        match op["operationId"].as_str() {
            Some(id) => {
                if let Some(prev) = op_ids.insert(id.to_owned(), what.clone()) {
                    problems.push(format!("{what}: operationId {id} is also {prev}'s"));
                }
            }
            None => problems.push(format!("{what}: no operationId")),
        }
        // Path parameters: exactly the template's, required, and ids are UUIDs.
        let declared: BTreeSet<String> = params(&op, "path")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        if declared != template_params(&path) {
            problems.push(format!(
                "{what}: path parameters {declared:?} are not the template's {:?}",
                template_params(&path)
            ));
        }
        for p in params(&op, "path") {
            if p["required"] != true {
                problems.push(format!(
                    "{what}: path parameter {} is not required",
                    p["name"]
                ));
            }
            if p["schema"]["type"] != "string" || p["schema"]["format"] != "uuid" {
                problems.push(format!(
                    "{what}: path parameter {} is not declared format: uuid ({})",
                    p["name"], p["schema"]
                ));
            }
        }
        // Query parameters: optional unless the route refuses a request without them.
        for p in params(&op, "query") {
            let name = p["name"].as_str().unwrap_or_default();
            let must = REQUIRED_QUERY_PARAMS.contains(&(path.as_str(), name));
            if (p["required"] == true) != must {
                problems.push(format!(
                    "{what}: query parameter {name} has required: {} (expected {must})",
                    p["required"]
                ));
            }
        }
        // Responses: every error has the error body; every 429 says when to retry; what the
        // request path can produce is listed.
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        for (status, resp) in &responses {
            let is_error = status.starts_with('4') || status.starts_with('5');
            if is_error && !is_error_body(resp) && !(path == "/readyz" && status == "503") {
                problems.push(format!("{what}: {status} is not documented with ErrorBody"));
            }
            if status == "429" && resp["headers"]["Retry-After"].is_null() {
                problems.push(format!("{what}: 429 without a Retry-After header"));
            }
        }
        let mut must_list: Vec<&str> = Vec::new();
        let api = path.starts_with("/api/") && path != "/api/v1/openapi.json";
        if api {
            must_list.push("429");
        }
        if requires_credential(&op) {
            must_list.extend(["401", "403"]);
        }
        if !template_params(&path).is_empty() {
            must_list.push("400");
            if api {
                must_list.push("404");
            }
        }
        if api && !op["requestBody"].is_null() {
            must_list.extend(["400", "413", "422"]);
            if op["requestBody"]["required"] == true {
                must_list.push("415");
            }
        }
        for s in must_list {
            if !responses.contains_key(s) {
                problems.push(format!("{what}: {s} is not documented"));
            }
        }
    }
    // Every reference resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
        if doc["components"]["schemas"].get(name).is_none() {
            problems.push(format!("unresolved $ref {r}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One request of the probe.
struct Probe {
    what: &'static str,
    path_value: &'static str,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
}

const MAX_BODY_BYTES: usize = 4096;

fn probes(op: &Value) -> Vec<Probe> {
    let mut out = vec![
        Probe {
            what: "malformed id, no body",
            path_value: "not-a-uuid",
            content_type: None,
            body: None,
        },
        Probe {
            what: "malformed id, text/plain body",
            path_value: "not-a-uuid",
            content_type: Some("text/plain"),
            body: Some(b"{}".to_vec()),
        },
        Probe {
            what: "unknown id, text/plain body",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: Some("text/plain"),
            body: Some(b"{}".to_vec()),
        },
        Probe {
            what: "unknown id, no body",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: None,
            body: None,
        },
    ];
    if !op["requestBody"].is_null() {
        out.push(Probe {
            what: "unknown id, malformed JSON",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: Some("application/json"),
            body: Some(b"{\"a\":".to_vec()),
        });
        out.push(Probe {
            what: "unknown id, JSON null",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: Some("application/json"),
            body: Some(b"null".to_vec()),
        });
        out.push(Probe {
            what: "unknown id, JSON of the wrong shape",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: Some("application/json"),
            body: Some(b"[1, 2]".to_vec()),
        });
        out.push(Probe {
            what: "an array instead of an object",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: Some("application/json"),
            body: Some(b"[null, null]".to_vec()),
        });
        let mut big = b"{\"x\":\"".to_vec();
        big.resize(MAX_BODY_BYTES + 16, b'a');
        big.extend_from_slice(b"\"}");
        out.push(Probe {
            what: "unknown id, oversized JSON",
            path_value: "0190f6a4-0000-7000-8000-000000000000",
            content_type: Some("application/json"),
            body: Some(big),
        });
    }
    out
}

fn concrete(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        out.push_str(value);
        rest = after.split_once('}').map_or("", |(_, r)| r);
    }
    out.push_str(rest);
    out
}

/// Checks one answer against the operation's documented responses.
fn check(problems: &mut Vec<String>, what: &str, op: &Value, r: &Resp) {
    let status = r.status.as_u16();
    let documented = &op["responses"];
    if r.status.is_server_error() {
        problems.push(format!("{what}: {status} {}", r.body));
        return;
    }
    if documented.get(status.to_string()).is_none() && documented.get("default").is_none() {
        problems.push(format!(
            "{what}: {status} `{}` is not documented (documented: {:?})",
            r.code(),
            documented.as_object().map(|o| o.keys().collect::<Vec<_>>())
        ));
        return;
    }
    if r.status.is_client_error() && r.code().is_empty() {
        problems.push(format!("{what}: {status} has no error body: {}", r.body));
    }
}

async fn every_route_answers_bad_input_only_with_documented_statuses(db: Db) {
    let app = spawn_app_with(db, |raw| raw.max_body_bytes = MAX_BODY_BYTES).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let doc = served_document(&app).await;
    let mut ops = operations(&doc);
    // Signing out ends the admin's credential: probe those last.
    ops.sort_by_key(|(_, path, _)| path.starts_with("/api/v1/auth/logout"));
    let bearer = format!("Bearer {}", owner.access_token);
    let mut problems = Vec::new();
    let mut sent = 0;
    for (method, path, op) in &ops {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        for credential in [None, Some(bearer.as_str())] {
            for probe in probes(op) {
                let url = concrete(path, probe.path_value);
                let mut headers: Vec<(&str, &str)> = Vec::new();
                if let Some(c) = credential {
                    headers.push(("authorization", c));
                }
                if let Some(ct) = probe.content_type {
                    headers.push(("content-type", ct));
                }
                let r = raw(&app, m.clone(), &url, &headers, probe.body).await;
                sent += 1;
                let who = if credential.is_some() {
                    "admin"
                } else {
                    "anonymous"
                };
                let what = format!("{} {path} ({who}, {})", method.to_uppercase(), probe.what);
                check(&mut problems, &what, op, &r);
                // A body the document admits is never refused as malformed.
                let admits_null = op["requestBody"]["content"]["application/json"]["schema"]
                    ["oneOf"]
                    .as_array()
                    .is_some_and(|alts| alts.iter().any(|a| a["type"] == "null"));
                // Every documented body is an object (or null where optional); serde would read
                // a struct from an array, so one that slipped through would succeed.
                if probe.what == "an array instead of an object" && r.status.is_success() {
                    problems.push(format!("{what}: an array was accepted as the body"));
                }
                if probe.what == "unknown id, JSON null"
                    && admits_null
                    && r.code() == "invalid_body"
                {
                    problems.push(format!(
                        "{what}: the document admits null, the route refuses it"
                    ));
                }
            }
        }
    }
    assert!(
        sent > 300,
        "the document has too few operations: {sent} requests"
    );
    assert!(
        problems.is_empty(),
        "{} undocumented answers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The operation `method path` of the document.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

/// The schema of query parameter `name` of an operation.
fn query_param<'a>(op: &'a Value, name: &str) -> &'a Value {
    params(op, "query")
        .into_iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("no query parameter {name}"))
}

/// The schema of property `field` of an operation's JSON body.
fn body_field<'a>(doc: &'a Value, op: &'a Value, field: &str) -> &'a Value {
    let mut schema = &op["requestBody"]["content"]["application/json"]["schema"];
    if let Some(alts) = schema["oneOf"].as_array() {
        schema = alts.iter().find(|a| a["type"] != "null").unwrap();
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        schema = &doc["components"]["schemas"][name];
    }
    let f = &schema["properties"][field];
    assert!(f.is_object(), "no body field {field} in {schema}");
    f
}

/// Every string of every `enum` in a schema (through `oneOf`, `items`, …); `null` left out.
fn enum_values(schema: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    if k == "enum" {
                        out.extend(
                            x.as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|e| e.as_str().map(str::to_owned)),
                        );
                    } else {
                        walk(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut out);
    assert!(!out.is_empty(), "no enum in {schema}");
    out
}

/// A numeric keyword (`minimum`, `maximum`) of a schema, wherever it sits.
fn bound(schema: &Value, keyword: &str) -> i64 {
    fn find(v: &Value, keyword: &str) -> Option<i64> {
        match v {
            Value::Object(o) => o
                .get(keyword)
                .and_then(Value::as_i64)
                .or_else(|| o.values().find_map(|x| find(x, keyword))),
            Value::Array(a) => a.iter().find_map(|x| find(x, keyword)),
            _ => None,
        }
    }
    find(schema, keyword).unwrap_or_else(|| panic!("no {keyword} in {schema}"))
}

/// The document is no looser than the server: every value a declared enum or range admits is
/// accepted, and the first value outside it is refused with a 4xx (not a 500). Read from the
/// served document, so a declaration that drifts from the server fails here.
async fn declared_enums_and_ranges_are_what_the_server_accepts(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = owner.access_token.as_str();
    let doc = served_document(&app).await;
    let refused = |r: &Resp, what: &str| {
        assert!(
            r.status.is_client_error(),
            "{what}: {} {}",
            r.status,
            r.body
        );
    };
    let accepted = |r: &Resp, what: &str| {
        assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
    };

    // Export formats.
    for path in ["/api/v1/contacts/export", "/api/v1/audit-logs/export"] {
        let formats = enum_values(query_param(operation(&doc, "get", path), "format"));
        assert_eq!(formats, ["csv", "jsonl"], "{path}");
        for f in &formats {
            accepted(&app.get(&format!("{path}?format={f}"), t).await, path);
        }
        refused(&app.get(&format!("{path}?format=xml"), t).await, path);
    }

    // `limit` ranges the handlers enforce.
    for path in ["/api/v1/audit-logs", "/api/v1/notifications"] {
        let limit = query_param(operation(&doc, "get", path), "limit");
        let (min, max) = (bound(limit, "minimum"), bound(limit, "maximum"));
        assert!(min == 1 && max >= 100, "{path}: {min}..={max}");
        accepted(&app.get(&format!("{path}?limit={min}"), t).await, path);
        accepted(&app.get(&format!("{path}?limit={max}"), t).await, path);
        refused(
            &app.get(&format!("{path}?limit={}", min - 1), t).await,
            path,
        );
        refused(
            &app.get(&format!("{path}?limit={}", max + 1), t).await,
            path,
        );
    }

    // Conversation statuses (the list's filter and the change).
    let list = operation(&doc, "get", "/api/v1/conversations");
    let statuses = enum_values(query_param(list, "status"));
    assert_eq!(statuses, ["open", "pending", "resolved"]);
    let patch = operation(&doc, "patch", "/api/v1/conversations/{id}");
    assert_eq!(enum_values(body_field(&doc, patch, "status")), statuses);
    for s in &statuses {
        accepted(
            &app.get(&format!("/api/v1/conversations?status={s}"), t)
                .await,
            s,
        );
    }
    refused(
        &app.get("/api/v1/conversations?status=closed", t).await,
        "closed",
    );

    // The tenant's password policy.
    let op = operation(&doc, "patch", "/api/v1/tenant");
    let policies = enum_values(body_field(&doc, op, "password_policy"));
    assert_eq!(policies, ["modern", "compliance"]);
    for p in policies.iter().rev() {
        accepted(
            &app.patch("/api/v1/tenant", t, json!({"password_policy": p}))
                .await,
            p,
        );
    }
    refused(
        &app.patch("/api/v1/tenant", t, json!({"password_policy": "lax"}))
            .await,
        "lax",
    );

    // Roles.
    let op = operation(&doc, "post", "/api/v1/users");
    let roles = enum_values(body_field(&doc, op, "role"));
    assert_eq!(roles, ["admin", "agent"]);
    for r in &roles {
        let body = json!({"email": format!("{r}@acme.example"), "name": "Someone", "role": r});
        accepted(&app.post("/api/v1/users", Some(t), body).await, r);
    }
    let body = json!({"email": "root@acme.example", "name": "Root", "role": "super_admin"});
    refused(
        &app.post("/api/v1/users", Some(t), body).await,
        "super_admin",
    );

    // API key scopes: every scope and group the server knows, and no other.
    let op = operation(&doc, "post", "/api/v1/api-keys");
    let scopes = enum_values(body_field(&doc, op, "scopes"));
    let mut known: Vec<String> = palisade_domain::Scope::all()
        .map(|s| s.as_str().to_owned())
        .collect();
    known.sort();
    let mut declared = scopes.clone();
    declared.sort();
    assert_eq!(declared, known);
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(t),
            json!({"name": "all", "scopes": scopes}),
        )
        .await;
    accepted(&r, "every declared scope");
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(t),
            json!({"name": "bad", "scopes": ["contacts:own"]}),
        )
        .await;
    refused(&r, "contacts:own");

    // Webhook signature algorithms and events.
    let op = operation(&doc, "post", "/api/v1/webhooks");
    let algorithms = enum_values(body_field(&doc, op, "signature_algorithm"));
    assert_eq!(algorithms, ["hmac_sha256", "hmac-sha256", "ed25519"]);
    let events = enum_values(body_field(&doc, op, "events"));
    for (i, a) in algorithms.iter().enumerate() {
        let body = json!({"url": format!("https://hooks{i}.example/x"), "events": events, "signature_algorithm": a});
        accepted(&app.post("/api/v1/webhooks", Some(t), body).await, a);
    }
    let body =
        json!({"url": "https://hooks.example/x", "events": ["*"], "signature_algorithm": "rsa"});
    refused(&app.post("/api/v1/webhooks", Some(t), body).await, "rsa");
    let body = json!({"url": "https://hooks.example/x", "events": ["conversation.*"]});
    refused(
        &app.post("/api/v1/webhooks", Some(t), body).await,
        "conversation.*",
    );

    // Contacts: the declared E.164 pattern's extremes are accepted, one digit more is not.
    let op = operation(&doc, "post", "/api/v1/contacts");
    assert_eq!(
        body_field(&doc, op, "phone")["pattern"],
        r"^\+[1-9][0-9]{7,14}$"
    );
    for phone in ["+12345678", "+123456789012345"] {
        accepted(
            &app.post("/api/v1/contacts", Some(t), json!({"phone": phone}))
                .await,
            phone,
        );
    }
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+1234567890123456"}),
        )
        .await;
    refused(&r, "16 digits");
    let tags: Vec<String> = (0..50).map(|i| format!("tag {i}")).collect();
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+447700900123", "tags": tags}),
        )
        .await;
    accepted(&r, "50 tags");
    let too_many: Vec<String> = (0..51).map(|i| format!("tag {i}")).collect();
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+447700900124", "tags": too_many}),
        )
        .await;
    refused(&r, "51 tags");

    // A connection's update needs at least one field (and may have all three).
    let update = &doc["components"]["schemas"]["UpdateConnectionRequest"];
    assert_eq!(update["minProperties"], 1, "{update}");
    assert!(update["maxProperties"].is_null(), "{update}");
    // A message's variants are closed, like the server's `deny_unknown_fields`.
    let send = &doc["components"]["schemas"]["SendMessageRequest"]["oneOf"];
    let variants = send.as_array().expect("SendMessageRequest is a oneOf");
    assert!(variants.len() >= 8, "{send}");
    for v in variants {
        assert_eq!(v["additionalProperties"], false, "{v}");
    }
}
