//! Test harness: the simulator on port 0 plus a tiny axum webhook receiver on port 0.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use palisade_wa_sim::{build, SimConfig};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::oneshot;

pub const V: &str = "v23.0";

/// How the receiver answers Meta's verification GET.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Challenge {
    Echo,
    Wrong,
    JsonQuoted,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub struct ReceiverState {
    pub verify_token: Mutex<String>,
    pub challenge: Mutex<Challenge>,
    /// Answer this many POSTs with 500 before answering 200.
    pub fail_next: Mutex<usize>,
    pub posts: Mutex<Vec<Received>>,
    pub gets: Mutex<Vec<HashMap<String, String>>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<ReceiverState>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    pub fn posts(&self) -> Vec<Received> {
        self.state.posts.lock().unwrap().clone()
    }

    /// POSTs answered 200.
    pub fn ok_posts(&self) -> Vec<Received> {
        self.posts()
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }

    /// Every `changes[].value` of every POST answered 200, in arrival order.
    pub fn values(&self) -> Vec<Value> {
        self.ok_posts()
            .iter()
            .flat_map(|r| {
                let v = r.json();
                v["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|e| e["changes"].as_array().unwrap().clone())
                    .map(|c| c["value"].clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every `statuses[]` item received (200 answers only).
    pub fn statuses(&self) -> Vec<Value> {
        self.values()
            .iter()
            .filter_map(|v| v["statuses"].as_array().cloned())
            .flatten()
            .collect()
    }

    pub async fn wait_posts(&self, n: usize) -> Vec<Received> {
        wait_for(|| {
            let p = self.ok_posts();
            (p.len() >= n).then_some(p)
        })
        .await
    }

    pub async fn wait_statuses(&self, wamid: &str, n: usize) -> Vec<Value> {
        wait_for(|| {
            let s: Vec<Value> = self
                .statuses()
                .into_iter()
                .filter(|s| s["id"] == wamid)
                .collect();
            (s.len() >= n).then_some(s)
        })
        .await
    }
}

/// Polls `f` every 10 ms for up to 5 s.
pub async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}

async fn verify(
    State(st): State<Arc<ReceiverState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    st.gets.lock().unwrap().push(q.clone());
    let expected = st.verify_token.lock().unwrap().clone();
    if q.get("hub.mode").map(String::as_str) != Some("subscribe")
        || q.get("hub.verify_token") != Some(&expected)
    {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    let challenge = q.get("hub.challenge").cloned().unwrap_or_default();
    match *st.challenge.lock().unwrap() {
        Challenge::Echo => challenge.into_response(),
        Challenge::Wrong => "12345".into_response(),
        Challenge::JsonQuoted => axum::Json(challenge).into_response(),
    }
}

async fn receive(
    State(st): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = {
        let mut fail = st.fail_next.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    };
    st.posts.lock().unwrap().push(Received {
        headers,
        body,
        answered: status.as_u16(),
    });
    status
}

pub async fn receiver(verify_token: &str) -> Receiver {
    let state = Arc::new(ReceiverState {
        verify_token: Mutex::new(verify_token.to_owned()),
        challenge: Mutex::new(Challenge::Echo),
        fail_next: Mutex::new(0),
        posts: Mutex::new(Vec::new()),
        gets: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/webhook", get(verify).post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Receiver {
        addr,
        state,
        _stop: tx,
    }
}

#[derive(Clone, Debug)]
pub struct Phone {
    pub id: String,
    pub waba_id: String,
    pub token: String,
    pub secret: String,
    pub display: String,
}

pub struct Env {
    pub base: String,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

pub async fn start(config: SimConfig) -> Env {
    let sim = build(config).await.unwrap();
    let base = sim.base_url();
    assert_eq!(base, format!("http://{}", sim.local_addr()));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(sim.run_until(async move {
        let _ = rx.await;
    }));
    Env {
        base,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        _stop: tx,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.control(reqwest::Method::POST, path, body).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn phone(&self) -> Phone {
        let (status, v) = self.post("/_sim/phone-numbers", json!({})).await;
        assert_eq!(status, 201, "{v}");
        Phone {
            id: v["phone_number_id"].as_str().unwrap().to_owned(),
            waba_id: v["waba_id"].as_str().unwrap().to_owned(),
            token: v["access_token"].as_str().unwrap().to_owned(),
            secret: v["app_secret"].as_str().unwrap().to_owned(),
            display: v["display_phone_number"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn subscribe(
        &self,
        phone: &Phone,
        receiver: &Receiver,
        verify_token: &str,
    ) -> (u16, Value) {
        self.post(
            &format!("/_sim/phone-numbers/{}/subscribe", phone.id),
            json!({"callback_url": receiver.url(), "verify_token": verify_token}),
        )
        .await
    }

    /// A phone number subscribed to a fresh receiver.
    pub async fn subscribed_phone(&self) -> (Phone, Receiver) {
        let receiver = receiver("vt").await;
        let phone = self.phone().await;
        let (status, v) = self.subscribe(&phone, &receiver, "vt").await;
        assert_eq!(status, 200, "{v}");
        (phone, receiver)
    }

    pub async fn config(&self, patch: Value) -> Value {
        let (status, v) = self.post("/_sim/config", patch).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    pub async fn inbound(&self, phone: &Phone, from: &str, text: &str) -> String {
        let (status, v) = self
            .post(
                "/_sim/inbound",
                json!({"phone_number_id": phone.id, "from": from, "profile_name": "Sheena Nelson",
                       "type": "text", "text": {"body": text}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["wamid"].as_str().unwrap().to_owned()
    }

    /// `POST /{V}/{phone}/messages` with the phone's token.
    pub async fn send(&self, phone: &Phone, body: Value) -> (u16, Value) {
        self.send_as(phone, Some(&phone.token), body).await
    }

    pub async fn send_as(&self, phone: &Phone, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(&format!("/{V}/{}/messages", phone.id)))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn graph_get(&self, phone: &Phone, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn outbound(&self, phone: &Phone) -> Vec<Value> {
        self.get_json(&format!("/_sim/phone-numbers/{}/outbound", phone.id))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn deliveries(&self) -> Vec<Value> {
        self.get_json("/_sim/deliveries")
            .await
            .as_array()
            .unwrap()
            .clone()
    }
}

pub fn text(to: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
           "type": "text", "text": {"body": body}})
}

/// Asserts a Graph error envelope (reference §2.4) and returns the code.
pub fn assert_graph_error(status: u16, body: &Value, http: u16, code: u64) {
    assert_eq!(status, http, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert!(e["type"].as_str().is_some(), "{body}");
    assert!(e["message"].as_str().is_some(), "{body}");
    assert!(e["fbtrace_id"].as_str().is_some(), "{body}");
    assert!(e.get("error_subcode").is_none(), "{body}");
    if code != 190 && code != 100 || e["error_data"].is_object() {
        assert_eq!(e["error_data"]["messaging_product"], "whatsapp", "{body}");
        assert!(e["error_data"]["details"].as_str().is_some(), "{body}");
    }
    if code != 190 {
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("(#{code}) ")),
            "{body}"
        );
    }
}

/// Independent check of `X-Hub-Signature-256`.
pub fn verify_signature(secret: &str, received: &Received) -> bool {
    let header = received
        .headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&received.body);
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac.verify_slice(&sig).is_ok()
}
