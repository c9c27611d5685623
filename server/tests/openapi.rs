mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                }
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let h = harness().await;
    let reply = h.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);

    let expected = [
        ("/health", "get"),
        ("/v1/auth/code", "post"),
        ("/v1/auth/sign-in", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/sign-out", "post"),
        ("/v1/me/profile", "get"),
        ("/v1/me/profile", "patch"),
        ("/v1/me/profile/contact/confirm", "post"),
        ("/v1/me/picture", "put"),
        ("/v1/me/picture", "get"),
        ("/v1/me/picture", "delete"),
        ("/v1/me/device-key", "post"),
        ("/v1/me/devices", "get"),
        ("/v1/me/devices/{device_id}", "delete"),
        ("/v1/me/doors", "get"),
        ("/v1/me/revocations", "get"),
        ("/v1/me/access-events", "post"),
        ("/v1/me/access-log", "get"),
        ("/v1/me/data", "get"),
        ("/v1/me/export", "get"),
        ("/v1/me/consents", "get"),
        ("/v1/me/consents/{purpose}", "put"),
        ("/v1/me/deletion-code", "post"),
        ("/v1/me/delete", "post"),
        ("/v1/deletion-receipts/{request_id}", "get"),
        // The HTML deletion page for people without the app.
        ("/delete-account", "get"),
        ("/delete-account/request", "post"),
        ("/delete-account/confirm", "post"),
        ("/v1/dev/outbox/{identifier}", "get"),
        ("/v1/dev/grants", "post"),
        // Guest invitations, and the page their links open.
        ("/v1/me/invitations", "post"),
        ("/v1/me/invitations", "get"),
        ("/v1/me/invitations/{id}", "delete"),
        ("/v1/me/guests/{id}", "delete"),
        ("/v1/invitations/{token}", "get"),
        ("/v1/invitations/accept", "post"),
        ("/v1/guests", "post"),
        ("/i/{token}", "get"),
        // The building's administration.
        ("/v1/admin/sites", "get"),
        ("/v1/admin/sites", "post"),
        ("/v1/admin/sites/{site_id}", "get"),
        ("/v1/admin/sites/{site_id}", "patch"),
        ("/v1/admin/sites/{site_id}/units", "get"),
        ("/v1/admin/sites/{site_id}/units", "post"),
        ("/v1/admin/sites/{site_id}/units/{unit_id}", "delete"),
        ("/v1/admin/sites/{site_id}/doors", "get"),
        ("/v1/admin/sites/{site_id}/doors", "post"),
        ("/v1/admin/sites/{site_id}/doors/{door_id}", "patch"),
        ("/v1/admin/sites/{site_id}/doors/{door_id}", "delete"),
        ("/v1/admin/sites/{site_id}/doors/{door_id}/lock", "post"),
        ("/v1/admin/sites/{site_id}/doors/{door_id}/lock", "get"),
        ("/v1/admin/sites/{site_id}/doors/{door_id}/lock", "delete"),
        ("/v1/admin/sites/{site_id}/units/{unit_id}/residents", "get"),
        ("/v1/admin/sites/{site_id}/units/{unit_id}/residents", "post"),
        ("/v1/admin/sites/{site_id}/units/{unit_id}/residents/{user_id}", "delete"),
        ("/v1/admin/sites/{site_id}/grants", "get"),
        ("/v1/admin/sites/{site_id}/grants", "post"),
        ("/v1/admin/sites/{site_id}/grants/{grant_id}", "delete"),
        ("/v1/admin/sites/{site_id}/roles", "get"),
        ("/v1/admin/sites/{site_id}/roles", "post"),
        ("/v1/admin/sites/{site_id}/roles/{user_id}", "delete"),
        ("/v1/admin/sites/{site_id}/security-events", "get"),
        ("/v1/admin/security-events", "get"),
        // Partner keys, and the partner API they open.
        ("/v1/admin/sites/{site_id}/partner-keys", "get"),
        ("/v1/admin/sites/{site_id}/partner-keys", "post"),
        ("/v1/admin/sites/{site_id}/partner-keys/{key_id}", "delete"),
        ("/v1/partner/people", "get"),
        ("/v1/partner/access-log", "get"),
    ];
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(op["responses"].is_object(), "{method} {path} has no responses");
    }
    let documented: usize =
        doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(documented, expected.len(), "undocumented extras or missing routes");

    // Request bodies and bearer security where they belong.
    assert!(doc["paths"]["/v1/auth/sign-in"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/v1/me/profile"]["patch"]["requestBody"].is_object());
    assert!(doc["paths"]["/v1/me/device-key"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/v1/me/access-events"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/v1/dev/grants"]["post"]["requestBody"].is_object());
    for (path, method) in [
        ("/v1/me/profile/contact/confirm", "post"),
        ("/v1/me/device-key", "post"),
        ("/v1/me/devices", "get"),
        ("/v1/me/devices/{device_id}", "delete"),
        ("/v1/me/doors", "get"),
        ("/v1/me/revocations", "get"),
        ("/v1/me/access-events", "post"),
        ("/v1/me/access-log", "get"),
        ("/v1/me/data", "get"),
        ("/v1/me/export", "get"),
        ("/v1/me/consents", "get"),
        ("/v1/me/consents/{purpose}", "put"),
        ("/v1/me/deletion-code", "post"),
        ("/v1/me/delete", "post"),
    ] {
        assert!(doc["paths"][path][method]["security"][0]["bearer"].is_array(), "{method} {path} is not marked bearer");
    }
    assert_eq!(
        doc["paths"]["/v1/me/doors"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/MyDoors"
    );
    assert!(doc["paths"]["/v1/me/picture"]["put"]["requestBody"]["content"]["image/png"].is_object());
    // The partner API takes a partner key, not a user's token, and is tagged for partners.
    assert_eq!(doc["components"]["securitySchemes"]["partner_key"]["scheme"], "bearer");
    for path in ["/v1/partner/people", "/v1/partner/access-log"] {
        let op = &doc["paths"][path]["get"];
        assert!(op["security"][0]["partner_key"].is_array(), "{path} is not marked partner_key");
        assert!(op["security"][0]["bearer"].is_null(), "{path} takes no user token");
        assert_eq!(op["tags"][0], "partner", "{path}");
    }
    assert!(doc["paths"]["/v1/deletion-receipts/{request_id}"]["get"]["security"].is_null());
    assert_eq!(
        doc["paths"]["/v1/me/export"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PortaExport"
    );
    assert!(doc["paths"]["/v1/me/delete"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/v1/me/consents/{purpose}"]["put"]["requestBody"].is_object());
    assert!(doc["paths"]["/delete-account/confirm"]["post"]["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]
        .is_object());
    assert!(doc["paths"]["/delete-account"]["get"]["responses"]["200"]["content"]["text/html"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/v1/me/profile"]["get"]["security"][0]["bearer"].is_array());
    assert!(doc["paths"]["/v1/auth/code"]["post"]["security"].is_null());
    let error_ref =
        &doc["paths"]["/v1/auth/code"]["post"]["responses"]["429"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(error_ref, "#/components/schemas/ErrorBody");

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 10);
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external ref {r}"));
        assert!(pointer.starts_with("/components/"), "{r}");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

#[tokio::test]
async fn dev_outbox_is_undocumented_when_disabled() {
    let h = harness_with(|c| c.dev_outbox = false).await;
    let doc = h.get("/openapi.json").await.body;
    assert!(doc["paths"]["/v1/dev/outbox/{identifier}"].is_null());
    assert!(doc["paths"]["/v1/dev/locks"].is_null());
    assert!(doc["paths"]["/v1/dev/grants"].is_null());
    assert!(doc["paths"]["/v1/me/doors"].is_object());
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let h = harness().await;
    let reply = h.get("/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");
    let reply = h.get("/v1/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");
    let reply = h.call(Method::DELETE, "/health", None, None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.code(), "method_not_allowed");
}

/// Signs `identifier` in; returns the access token.
async fn signed_in(h: &Harness, identifier: &str) -> String {
    token(&h.sign_in(identifier).await, "access_token")
}

/// Asserts the documented error shape: JSON `{code, message}` with the expected code.
fn assert_error_shape(what: &str, status: StatusCode, content_type: &str, body: &[u8], code: &str) {
    assert!(content_type.starts_with("application/json"), "{what}: {status} answered {content_type:?}");
    let body: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("{what}: body is not JSON"));
    assert_eq!(body["code"], code, "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
}

#[tokio::test]
async fn framework_rejections_answer_in_the_documented_error_shape() {
    let h = harness().await;
    let access = signed_in(&h, "shape@example.com").await;
    let url = h.server.url();
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (status, headers, content_type, resp.bytes().await.expect("body"))
    };
    let c = &h.client;

    // Path segments that are not UTF-8: axum's own path rejection.
    let (status, _, ct, body) = send(c.delete(format!("{url}/v1/me/devices/%FF")).bearer_auth(&access)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape("device id that is not UTF-8", status, &ct, &body, "invalid_request");
    let consent = json!({ "granted": true });
    let (status, _, ct, body) =
        send(c.put(format!("{url}/v1/me/consents/%FF")).bearer_auth(&access).json(&consent)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape("consent purpose that is not UTF-8", status, &ct, &body, "invalid_request");
    let (status, _, ct, body) = send(c.get(format!("{url}/v1/deletion-receipts/%FF%FE"))).await;
    assert!(status.is_client_error(), "{status}");
    assert_error_shape("receipt with a non-UTF-8 id", status, &ct, &body, "invalid_request");

    // Bodies over the limit are 413, in our shape, on every JSON route.
    let big = json!({ "identifier": "x".repeat(100 * 1024) });
    let (status, _, ct, body) = send(c.post(format!("{url}/v1/auth/code")).json(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_shape("oversized JSON body", status, &ct, &body, "payload_too_large");
    let events: Vec<Value> = (0..3000).map(|_| json!({ "audit_record": "A".repeat(136) })).collect();
    let (status, _, ct, body) =
        send(c.post(format!("{url}/v1/me/access-events")).bearer_auth(&access).json(&json!({ "events": events })))
            .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_shape("oversized access-event batch", status, &ct, &body, "payload_too_large");

    // JSON syntax and content-type rejections.
    let (status, _, ct, body) =
        send(c.post(format!("{url}/v1/auth/code")).header("content-type", "application/json").body("{\"identifier\":"))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape("truncated JSON", status, &ct, &body, "invalid_request");
    let (status, _, ct, body) = send(c.post(format!("{url}/v1/auth/code")).body("identifier=a@b.c")).await;
    assert!(status.is_client_error(), "{status}");
    assert_error_shape("JSON body without a JSON content type", status, &ct, &body, "invalid_request");

    // Unknown routes and wrong methods; 405 keeps its Allow header.
    let (status, _, ct, body) = send(c.get(format!("{url}/v1/no-such-route"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape("unknown route", status, &ct, &body, "not_found");
    let (status, headers, ct, body) = send(c.request(Method::PATCH, format!("{url}/v1/me/doors"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_shape("wrong method", status, &ct, &body, "method_not_allowed");
    assert!(headers.get("allow").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("GET")), "{headers:?}");
}

/// Adds `"unexpected_field": true` to the object at `pointer` inside `body`.
fn with_extra_field(mut body: Value, pointer: &str) -> Value {
    body.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .expect("object")
        .insert("unexpected_field".into(), true.into());
    body
}

#[tokio::test]
async fn every_request_body_refuses_unknown_fields() {
    // An operator, so the admin operations get as far as reading their bodies.
    let h = harness_with(|c| c.bootstrap_operators = vec!["fields@example.com".into()]).await;
    let tokens = h.sign_in("fields@example.com").await;
    let access = token(&tokens, "access_token");
    let doc = h.get("/openapi.json").await.body;
    let site = h.post_auth("/v1/admin/sites", &access, json!({ "name": "Fields" })).await.body["id"].clone();
    let site = site.as_str().unwrap().to_owned();
    let unit = h
        .post_auth(&format!("/v1/admin/sites/{site}/units"), &access, json!({ "name": "U", "kind": "office" }))
        .await
        .body["id"]
        .clone();
    let unit = unit.as_str().unwrap().to_owned();
    let door = h.post_auth(&format!("/v1/admin/sites/{site}/doors"), &access, json!({ "name": "D" })).await.body
        ["door_id"]
        .to_string();
    let windows = json!({ "windows": [{ "days": 1, "start_minute": 0, "end_minute": 60 }] });
    // A real lock's provisioning request, so the plain body is accepted.
    let lock_request = porta_server::authority::b64(
        porta_protocol::ProvisioningRequest::sign(
            &porta_protocol::SigningKey::from_bytes(&[7; 32]),
            &mut rand::rngs::OsRng,
        )
        .to_bytes(),
    );

    // A well-typed body per operation; each is sent once as is and once per object in it
    // (nested ones too) with one field too many.
    let request_id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let mut json_bodies: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        ("post", "/v1/auth/code", json!({ "identifier": "fields@example.com" }), vec![""]),
        ("post", "/v1/auth/sign-in", json!({ "identifier": "fields@example.com", "code": "000000" }), vec![""]),
        ("post", "/v1/auth/refresh", json!({ "refresh_token": "00" }), vec![""]),
        ("patch", "/v1/me/profile", json!({ "name": "Ada" }), vec![""]),
        ("post", "/v1/me/device-key", json!({ "public_key": b64([1u8; 32]), "signature": b64([1u8; 64]) }), vec![""]),
        ("post", "/v1/me/access-events", json!({ "events": [{ "audit_record": "AAAA" }] }), vec!["", "/events/0"]),
        ("put", "/v1/me/consents/{purpose}", json!({ "granted": false }), vec![""]),
        ("post", "/v1/me/profile/contact/confirm", json!({ "code": "000000" }), vec![""]),
        ("post", "/v1/me/delete", json!({ "code": "000000", "request_id": request_id }), vec![""]),
        (
            "post",
            "/v1/me/invitations",
            json!({ "doors": [1], "not_before": 0, "not_after": 60, "label": "x",
                    "schedule": { "windows": [{ "days": 1, "start_minute": 0, "end_minute": 60 }] } }),
            vec!["", "/schedule", "/schedule/windows/0"],
        ),
        ("post", "/v1/invitations/accept", json!({ "code": "0000" }), vec![""]),
        (
            "post",
            "/v1/guests",
            json!({ "code": "0000", "public_key": b64([1u8; 32]), "signature": b64([1u8; 64]), "time": 0 }),
            vec![""],
        ),
        (
            "post",
            "/v1/dev/grants",
            json!({ "identifier": "fields@example.com", "doors": [1],
                    "schedule": { "utc_offset_minutes": 0,
                                  "windows": [{ "days": 1, "start_minute": 0, "end_minute": 60 }] } }),
            vec!["", "/schedule", "/schedule/windows/0"],
        ),
    ];
    json_bodies.extend([
        ("post", "/v1/admin/sites", json!({ "name": "S" }), vec![""]),
        ("patch", "/v1/admin/sites/{site_id}", json!({ "name": "S" }), vec![""]),
        ("post", "/v1/admin/sites/{site_id}/units", json!({ "name": "U2", "kind": "office" }), vec![""]),
        ("post", "/v1/admin/sites/{site_id}/doors", json!({ "name": "D2" }), vec![""]),
        ("patch", "/v1/admin/sites/{site_id}/doors/{door_id}", json!({ "name": "D3" }), vec![""]),
        ("post", "/v1/admin/sites/{site_id}/doors/{door_id}/lock", json!({ "request": lock_request }), vec![""]),
        (
            "post",
            "/v1/admin/sites/{site_id}/units/{unit_id}/residents",
            json!({ "identifier": "r@example.com" }),
            vec![""],
        ),
        (
            "post",
            "/v1/admin/sites/{site_id}/grants",
            json!({ "unit_id": unit, "doors": [door.parse::<u32>().unwrap()], "schedule": windows }),
            vec!["", "/schedule", "/schedule/windows/0"],
        ),
        ("post", "/v1/admin/sites/{site_id}/roles", json!({ "identifier": "a@example.com" }), vec![""]),
        ("post", "/v1/admin/sites/{site_id}/partner-keys", json!({ "label": "Partner" }), vec![""]),
    ]);
    let forms: Vec<(&str, String)> = vec![
        ("/delete-account/request", "identifier=fields%40example.com".into()),
        ("/delete-account/confirm", format!("identifier=fields%40example.com&code=000000&request_id={request_id}")),
    ];

    // The walk covers every operation with a request body (the picture's is raw bytes).
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else { continue };
            if content.contains_key("application/json") || content.contains_key("application/x-www-form-urlencoded") {
                documented.push((method.clone(), path.clone()));
                // The document says so too.
                let schema = content.values().next().unwrap()["schema"]["$ref"].as_str().expect("schema ref");
                let name = schema.rsplit('/').next().unwrap();
                assert_eq!(doc["components"]["schemas"][name]["additionalProperties"], false, "{name}");
            }
        }
    }
    let mut walked: Vec<(String, String)> = json_bodies
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .chain(forms.iter().map(|(p, _)| ("post".to_string(), p.to_string())))
        .collect();
    documented.sort();
    walked.sort();
    assert_eq!(walked, documented, "every request-body operation is walked");

    for (method, path, body, objects) in json_bodies {
        let method: Method = method.to_uppercase().parse().unwrap();
        let path = path
            .replace("{purpose}", "marketing")
            .replace("{site_id}", &site)
            .replace("{unit_id}", &unit)
            .replace("{door_id}", &door);
        let plain = h.call(method.clone(), &path, Some(&access), Some(body.clone())).await;
        assert_ne!(
            plain.code(),
            "invalid_request",
            "{method} {path}: the plain body must be well-typed: {:?}",
            plain.body
        );
        for pointer in objects {
            let reply =
                h.call(method.clone(), &path, Some(&access), Some(with_extra_field(body.clone(), pointer))).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{method} {path} (extra field at {pointer:?}): {:?}",
                reply.body
            );
            assert_eq!(reply.code(), "invalid_request", "{method} {path}");
            let message = reply.body["message"].as_str().unwrap_or_default();
            assert!(message.contains("unknown field `unexpected_field`"), "{method} {path}: {message}");
        }
    }
    for (path, form) in forms {
        let post = |body: String| {
            h.client
                .post(format!("{}{path}", h.server.url()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let plain = post(form.clone()).await.unwrap();
        assert_ne!(plain.status(), StatusCode::BAD_REQUEST, "{path}: the plain form must be well-formed");
        let reply = post(format!("{form}&unexpected_field=1")).await.unwrap();
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{path} with an extra field");
        assert!(reply.text().await.unwrap().contains("malformed"), "{path}: the page says why");
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[tokio::test]
async fn data_categories_match_their_declared_schema() {
    let h = harness().await;
    let access = signed_in(&h, "categories@example.com").await;
    let doc = h.get("/openapi.json").await.body;
    let declared = &doc["components"]["schemas"]["DataCategory"]["properties"]["items"];
    let allowed: Option<Vec<&str>> = match &declared["type"] {
        Value::Null => None,
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        other => panic!("type {other}"),
    };
    let data = h.get_auth("/v1/me/data", &access).await.body;
    let export = h.get_auth("/v1/me/export", &access).await.body;
    let sent = data["categories"]
        .as_array()
        .unwrap()
        .iter()
        .chain(export["categories"].as_object().unwrap().values())
        .map(|c| (c["category"].as_str().unwrap().to_owned(), json_type(&c["items"])));
    let mut kinds = Vec::new();
    for (category, kind) in sent {
        if let Some(allowed) = &allowed {
            // "integer" is a "number" too, but items are never bare numbers.
            assert!(allowed.contains(&kind), "{category}: items is {kind}, the document allows {allowed:?}");
        }
        kinds.push(kind);
    }
    // This account really exercises the shapes that broke the schema.
    assert!(kinds.contains(&"null") && kinds.contains(&"array") && kinds.contains(&"object"), "{kinds:?}");
}

#[tokio::test]
async fn identifiers_uuids_base64_and_images_have_formats() {
    let h = harness().await;
    let doc = h.get("/openapi.json").await.body;
    let schemas = &doc["components"]["schemas"];
    for (schema, field, format) in [
        ("EnrollRequest", "public_key", "byte"),
        ("EnrollRequest", "signature", "byte"),
        ("AccessEventUpload", "audit_record", "byte"),
        ("DeleteRequest", "request_id", "uuid"),
        ("DeletionPageConfirm", "request_id", "uuid"),
    ] {
        assert_eq!(schemas[schema]["properties"][field]["format"], format, "{schema}.{field}");
    }
    let param = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("{method} {path}: no parameter {name}"))["schema"]
            .clone()
    };
    assert_eq!(param("/v1/deletion-receipts/{request_id}", "get", "request_id")["format"], "uuid");
    assert_eq!(param("/v1/me/devices/{device_id}", "delete", "device_id")["format"], "uuid");
    assert_eq!(param("/v1/me/consents/{purpose}", "put", "purpose")["pattern"], "^marketing$");

    // One email-or-phone rule for every identifier the API takes.
    let identifier = schemas["CodeRequest"]["properties"]["identifier"]["pattern"].as_str().expect("pattern");
    for schema in ["SignInRequest", "DevGrantRequest", "DeletionPageRequest", "DeletionPageConfirm"] {
        assert_eq!(schemas[schema]["properties"]["identifier"]["pattern"], identifier, "{schema}");
    }
    assert_eq!(param("/v1/dev/outbox/{identifier}", "get", "identifier")["pattern"], identifier);
    for code in [&schemas["SignInRequest"]["properties"]["code"], &schemas["DeleteRequest"]["properties"]["code"]] {
        assert_eq!(code["pattern"], "^[0-9]{6}$");
    }

    // Pictures are bytes, not a JSON array of numbers.
    for (method, content) in [
        ("put", &doc["paths"]["/v1/me/picture"]["put"]["requestBody"]["content"]),
        ("get", &doc["paths"]["/v1/me/picture"]["get"]["responses"]["200"]["content"]),
    ] {
        for media in ["image/png", "image/jpeg"] {
            let schema = &content[media]["schema"];
            assert_eq!(schema["type"], "string", "{method} picture {media}: {schema}");
            assert_eq!(schema["format"], "binary", "{method} picture {media}: {schema}");
        }
    }
}

#[tokio::test]
async fn identifier_pattern_is_what_the_server_accepts() {
    let h = harness_with(|c| c.limits.code_requests_per_ip = 1000).await;
    let doc = h.get("/openapi.json").await.body;
    let pattern = doc["components"]["schemas"]["CodeRequest"]["properties"]["identifier"]["pattern"].as_str().unwrap();
    let pattern = regex::Regex::new(pattern).expect("the pattern compiles");
    for candidate in [
        "ada@example.com",
        "Ada.Lovelace+porta@mail.example.co.uk",
        "o'brien@x-y.example",
        "<script>alert(1)</script>@example.com",
        "+4712345678",
        "+47 123 45 678",
        "+1 (555) 010-9999",
        "+123456789012345",
        "ada@example",
        "ada@f.0.0.0*",
        "adá@example.com",
        "\"a b\"@example.com",
        "a@b@c.com",
        "ada@.com",
        "4712345678",
        "+4712",
        "+1234567890123456",
        "+47abc45678",
        "",
    ] {
        let reply = h.request_code(candidate).await;
        let accepted = reply.status == StatusCode::ACCEPTED;
        assert!(accepted || reply.code() == "invalid_identifier", "{candidate:?}: {:?}", reply.body);
        assert_eq!(pattern.is_match(candidate), accepted, "{candidate:?}: document and server disagree");
    }
}

#[tokio::test]
async fn request_objects_must_be_objects_not_arrays() {
    let h = harness().await;
    let access = signed_in(&h, "arrays@example.com").await;
    // serde reads a struct from an array of its fields in order; the document says objects.
    let reply = h.call(Method::PATCH, "/v1/me/profile", Some(&access), Some(json!(["Ada"]))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.code(), "invalid_request");
    let window = json!({ "days": 1, "start_minute": 0, "end_minute": 60 });
    for schedule in [json!([0, [window.clone()]]), json!({ "utc_offset_minutes": 0, "windows": [[1, 0, 60]] })] {
        let body = json!({ "identifier": "arrays@example.com", "doors": [1], "schedule": schedule });
        let reply = h.post("/v1/dev/grants", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{schedule}: {:?}", reply.body);
        assert_eq!(reply.code(), "invalid_request", "{schedule}");
    }
    let reply = h.post_auth("/v1/me/access-events", &access, json!({ "events": [["AAAA"]] })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request", "{:?}", reply.body);
}
