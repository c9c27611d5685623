mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

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
        ("/v1/dev/locks", "get"),
        ("/v1/dev/grants", "post"),
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
