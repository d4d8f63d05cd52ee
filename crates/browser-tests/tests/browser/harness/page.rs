//! Headless Chromium and a page API that acts as a person does.
//!
//! [`Browser::launch`] starts Debian's Chromium with a fresh profile (its own cookies and
//! storage); [`Browser::new_page`] opens a tab bound to a [`Server`]. [`Page::open`] does both for
//! the common case of one person in one browser. Elements are found with a [`Locator`]: by label
//! ([`label`]), role and accessible name ([`role`]), visible text ([`text`]) or, last resort, CSS
//! ([`css`]). Clicks and keys are real input events (a covered or disabled button cannot be
//! clicked), text goes in as typed text.
//!
//! From the moment a page opens, every CSP violation, uncaught exception, `console.error` and
//! error-level console entry (not network errors: a page may answer a 4xx on purpose) is
//! recorded. [`Page::assert_clean`] fails the test if any was; dropping a page that recorded
//! one fails it too, so a test cannot forget.

use super::paths;
use super::server::Server;
use chromiumoxide::cdp::browser_protocol::audits::{self, EventIssueAdded, InspectorIssueCode};
use chromiumoxide::cdp::browser_protocol::browser::{
    SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, InsertTextParams,
};
use chromiumoxide::cdp::browser_protocol::log::{
    self, EventEntryAdded, LogEntryLevel, LogEntrySource,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, CaptureScreenshotParams,
};
use chromiumoxide::cdp::browser_protocol::web_authn::{
    self, AddVirtualAuthenticatorParams, AuthenticatorProtocol, AuthenticatorTransport,
    Ctap2Version, GetCredentialsParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::layout::Point;
use chromiumoxide::BrowserConfig;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`Page::wait_for`] and friends wait by default.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often [`Page::click`] tries again when the element moved under the mouse.
const CLICK_TRIES: usize = 5;

/// Installed on the element `el` just before the mouse is pressed on it: the press, release and
/// click of that one click must land on `el` (or its label); one that does not is stopped in
/// the capture phase, so the page never sees it, and named in `window.__palisadeStray`.
const CATCH_STRAY_CLICKS: &str = r#"
    window.__palisadeCatchOff?.();
    delete window.__palisadeStray;
    const on = (t) => t instanceof Node && (t === el || el.contains(t) ||
        (el.labels && Array.from(el.labels).some((l) => l === t || l.contains(t))));
    const kinds = ['pointerdown', 'mousedown', 'pointerup', 'mouseup', 'click'];
    const check = (e) => {
        if (window.__palisadeStray !== undefined || !on(e.target)) {
            if (window.__palisadeStray === undefined) window.__palisadeStray = lib.describe(e.target);
            e.preventDefault();
            e.stopImmediatePropagation();
        }
        if (e.type === 'click') window.__palisadeCatchOff();
    };
    kinds.forEach((k) => window.addEventListener(k, check, true));
    window.__palisadeCatchOff = () => {
        kinds.forEach((k) => window.removeEventListener(k, check, true));
        delete window.__palisadeCatchOff;
    };
    return true;
"#;

/// After the click: what a stray press landed on (or null), and the catcher is taken down
/// either way (a click the browser never sent must not leave it catching the next one).
const STRAY_CLICK: &str = "(() => { const s = window.__palisadeStray ?? null; \
    window.__palisadeCatchOff?.(); delete window.__palisadeStray; return s; })()";

/// The two screenshot sizes: desktop and a phone.
pub const SCREEN_SIZES: [(u32, u32); 2] = [(1440, 900), (390, 844)];

/// The narrowest width the console must be usable at (the issue: 360 px).
pub const NARROWEST: u32 = 360;

const FIND_JS: &str = include_str!("find.js");

/// How a person finds an element on the page.
#[derive(Debug, Clone)]
pub enum Locator {
    /// A form control by its label (`<label>`, `aria-label`, `aria-labelledby`), exact text.
    Label(String),
    /// An element by its ARIA role (explicit or implicit) and, when given, exact accessible name.
    Role(String, Option<String>),
    /// The innermost visible element whose rendered text contains this.
    Text(String),
    /// A CSS selector: for what a person cannot name (prefer the others).
    Css(String),
}

/// A form control by its label.
pub fn label(s: &str) -> Locator {
    Locator::Label(s.to_owned())
}

/// An element by role and accessible name, e.g. `role("button", "Sign in")`.
pub fn role(role: &str, name: &str) -> Locator {
    Locator::Role(role.to_owned(), Some(name.to_owned()))
}

/// An element by role alone, e.g. `any_role("alert")`.
pub fn any_role(role: &str) -> Locator {
    Locator::Role(role.to_owned(), None)
}

/// The innermost visible element containing this text.
pub fn text(s: &str) -> Locator {
    Locator::Text(s.to_owned())
}

/// A CSS selector.
pub fn css(s: &str) -> Locator {
    Locator::Css(s.to_owned())
}

impl Locator {
    /// JavaScript that finds the element into `el` (null when absent).
    fn js(&self) -> String {
        let (kind, a, b) = match self {
            Locator::Label(a) => ("label", a.as_str(), None),
            Locator::Role(r, n) => ("role", r.as_str(), n.as_deref()),
            Locator::Text(a) => ("text", a.as_str(), None),
            Locator::Css(a) => ("css", a.as_str(), None),
        };
        format!(
            "const lib = {FIND_JS}; const el = lib.find({}, {}, {});",
            json!(kind),
            json!(a),
            json!(b)
        )
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Label(a) => write!(f, "the field labelled {a:?}"),
            Locator::Role(r, Some(n)) => write!(f, "{r} {n:?}"),
            Locator::Role(r, None) => write!(f, "a {r}"),
            Locator::Text(a) => write!(f, "the text {a:?}"),
            Locator::Css(a) => write!(f, "css {a:?}"),
        }
    }
}

/// A headless Chromium with its own profile. Dropping it kills the browser.
pub struct Browser {
    inner: Arc<BrowserProcess>,
}

struct BrowserProcess {
    browser: chromiumoxide::Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        // The browser process itself is killed when `browser` drops (kill_on_drop).
        self.handler.abort();
    }
}

impl Browser {
    /// Starts `/usr/bin/chromium` (or `CHROMIUM`) headless with a fresh profile directory.
    pub async fn launch() -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("palisade-chromium-")
            .tempdir()
            .expect("a temporary profile directory");
        let (w, h) = SCREEN_SIZES[0];
        let config = BrowserConfig::builder()
            .chrome_executable(paths::chromium())
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(w, h)
            .viewport(Viewport {
                width: w,
                height: h,
                device_scale_factor: Some(1.0),
                emulating_mobile: false,
                is_landscape: true,
                has_touch: false,
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .build()
            .expect("a Chromium configuration");
        let (browser, mut handler) = chromiumoxide::Browser::launch(config)
            .await
            .expect("Chromium starts (apt-get install -y chromium chromium-driver)");
        // The connection's event loop: it must be polled for anything to happen. A message the
        // driver cannot parse is not fatal.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Browser {
            inner: Arc::new(BrowserProcess {
                browser,
                handler,
                _profile: profile,
            }),
        }
    }

    /// A new tab on `server` (relative paths in [`Page::goto`] are the server's), recording
    /// problems from the start. It starts on `about:blank`.
    pub async fn new_page(&self, server: &Server) -> Page {
        self.new_page_at(&server.base_url).await
    }

    /// A new tab whose relative paths are under `base_url` (another server than Palisade's,
    /// e.g. the harness's self-test).
    pub async fn new_page_at(&self, base_url: &str) -> Page {
        let page = self
            .inner
            .browser
            .new_page("about:blank")
            .await
            .expect("a new tab");
        let problems = Arc::new(Mutex::new(Vec::new()));
        let mut listeners = Vec::new();

        let mut entries = page
            .event_listener::<EventEntryAdded>()
            .await
            .expect("listen to Log.entryAdded");
        let p = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = entries.next().await {
                let e = &e.entry;
                if e.level == LogEntryLevel::Error && e.source != LogEntrySource::Network {
                    record(
                        &p,
                        format!(
                            "console {:?} error: {} ({}:{})",
                            e.source,
                            e.text,
                            e.url.as_deref().unwrap_or("?"),
                            e.line_number.unwrap_or(0)
                        ),
                    );
                }
            }
        }));

        let mut exceptions = page
            .event_listener::<EventExceptionThrown>()
            .await
            .expect("listen to Runtime.exceptionThrown");
        let p = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = exceptions.next().await {
                let d = &e.exception_details;
                let description = d
                    .exception
                    .as_ref()
                    .and_then(|x| x.description.clone())
                    .unwrap_or_default();
                record(
                    &p,
                    format!(
                        "uncaught exception: {} {description} ({}:{})",
                        d.text,
                        d.url.as_deref().unwrap_or("?"),
                        d.line_number + 1
                    ),
                );
            }
        }));

        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .expect("listen to Runtime.consoleAPICalled");
        let p = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = console.next().await {
                if matches!(
                    e.r#type,
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
                ) {
                    let args: Vec<String> = e
                        .args
                        .iter()
                        .map(|a| {
                            a.value
                                .as_ref()
                                .map(|v| v.to_string())
                                .or_else(|| a.description.clone())
                                .unwrap_or_default()
                        })
                        .collect();
                    record(&p, format!("console.{:?}: {}", e.r#type, args.join(" ")));
                }
            }
        }));

        let mut issues = page
            .event_listener::<EventIssueAdded>()
            .await
            .expect("listen to Audits.issueAdded");
        let p = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = issues.next().await {
                if e.issue.code == InspectorIssueCode::ContentSecurityPolicyIssue {
                    let d = e
                        .issue
                        .details
                        .content_security_policy_issue_details
                        .as_ref();
                    record(
                        &p,
                        format!(
                            "CSP violation: {} blocked {} ({:?}) at {}",
                            d.map_or("?", |d| d.violated_directive.as_str()),
                            d.and_then(|d| d.blocked_url.as_deref())
                                .unwrap_or("inline code"),
                            d.map(|d| &d.content_security_policy_violation_type),
                            d.and_then(|d| d.source_code_location.as_ref()).map_or(
                                "?".to_owned(),
                                |l| format!("{}:{}", l.url, l.line_number + 1)
                            ),
                        ),
                    );
                }
            }
        }));

        page.execute(log::EnableParams::default())
            .await
            .expect("Log.enable");
        page.execute(audits::EnableParams::default())
            .await
            .expect("Audits.enable");
        page.enable_runtime().await.expect("Runtime.enable");

        Page {
            page,
            base_url: base_url.to_owned(),
            problems,
            listeners,
            _browser: self.inner.clone(),
        }
    }
}

fn record(problems: &Mutex<Vec<String>>, problem: String) {
    if let Ok(mut p) = problems.lock() {
        p.push(problem);
    }
}

/// One tab. Methods panic with a message naming what was looked for and where the page was:
/// a browser test reads as a list of steps, each of which must work.
pub struct Page {
    page: chromiumoxide::Page,
    base_url: String,
    problems: Arc<Mutex<Vec<String>>>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
    _browser: Arc<BrowserProcess>,
}

impl Page {
    /// A fresh browser (own profile, own cookies) with one tab on `server`.
    pub async fn open(server: &Server) -> Page {
        Browser::launch().await.new_page(server).await
    }

    /// Navigates to `path` (relative to the server, e.g. `/login`, or an absolute URL) and waits
    /// for the load event.
    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        };
        self.page
            .goto(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The page's URL.
    pub async fn current_url(&self) -> String {
        self.eval("location.href")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's path and query (`/inbox?status=open`).
    pub async fn current_path(&self) -> String {
        self.eval("location.pathname + location.search")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Evaluates a JavaScript expression (promises are awaited) and returns its JSON value.
    /// Runs through DevTools, so the page's CSP does not apply to it; use it to inspect, not to
    /// act (act with clicks and keys, as a person does).
    pub async fn eval(&self, js: &str) -> Value {
        self.try_eval(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {js:.80}: {e}"))
    }

    pub(crate) async fn try_eval(&self, js: &str) -> Result<Value, String> {
        let params = EvaluateParams::builder()
            .expression(js)
            .return_by_value(true)
            .await_promise(true)
            .build()
            .map_err(|e| e.to_string())?;
        let r = self.page.execute(params).await.map_err(|e| e.to_string())?;
        if let Some(ex) = &r.result.exception_details {
            let description = ex
                .exception
                .as_ref()
                .and_then(|x| x.description.clone())
                .unwrap_or_default();
            return Err(format!("{} {description}", ex.text));
        }
        Ok(r.result.result.value.clone().unwrap_or(Value::Null))
    }

    /// Runs `body` (JavaScript using `el`, `lib`) on the element `what`, if present; the value
    /// is `null` when the element is absent.
    async fn with_element(&self, what: &Locator, body: &str) -> Result<Value, String> {
        self.try_eval(&format!(
            "(() => {{ {} if (!el) return null; {body} }})()",
            what.js()
        ))
        .await
    }

    /// Whether `what` is on the page and visible now.
    pub async fn is_visible(&self, what: &Locator) -> bool {
        self.with_element(what, "return true;")
            .await
            .is_ok_and(|v| v == Value::Bool(true))
    }

    /// Waits until `what` is visible (up to [`WAIT`]).
    pub async fn wait_for(&self, what: &Locator) {
        self.wait_for_within(what, WAIT).await
    }

    /// Waits until `what` is visible, up to `timeout`.
    pub async fn wait_for_within(&self, what: &Locator, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.is_visible(what).await {
            if Instant::now() > deadline {
                panic!(
                    "{what} did not appear within {timeout:?} on {}\n{}",
                    self.current_url().await,
                    self.text_excerpt().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `what` is gone (absent or hidden), up to [`WAIT`]. While the page is between
    /// two documents (a reload) nothing can be looked up: that is not "gone", so it waits for
    /// the next document to answer.
    pub async fn wait_gone(&self, what: &Locator) {
        let deadline = Instant::now() + WAIT;
        while self
            .with_element(what, "return true;")
            .await
            .map_or(true, |v| v == Value::Bool(true))
        {
            if Instant::now() > deadline {
                panic!(
                    "{what} still visible after {WAIT:?} on {}\n{}",
                    self.current_url().await,
                    self.text_excerpt().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the path (with query) is `path` (up to [`WAIT`]), e.g. after a form submits.
    pub async fn wait_for_path(&self, path: &str) {
        if let Err(now) = self
            .poll_for("location.pathname + location.search", path)
            .await
        {
            panic!(
                "the page did not reach {path} within {WAIT:?}: it is at {now:?}\n{}",
                self.text_excerpt().await
            );
        }
    }

    /// Evaluates `js` until its value is the string `want` (up to [`WAIT`]); else the last
    /// answer.
    async fn poll_for(&self, js: &str, want: &str) -> Result<(), Result<Value, String>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.try_eval(js).await;
            if now.as_ref().ok().and_then(Value::as_str) == Some(want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(now);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many requests this document has made to `path` (its own requests: scripts, styles,
    /// `fetch` calls; counted from the Resource Timing entries, so a reload starts again at 0).
    /// For checking that a form is sent once.
    pub async fn requests_to(&self, path: &str) -> usize {
        let n = self
            .eval(&format!(
                "performance.getEntriesByType('resource') \
                 .filter((e) => new URL(e.name).pathname === {}).length",
                json!(path)
            ))
            .await;
        n.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_default()
    }

    /// The visible text of the page.
    pub async fn body_text(&self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn text_excerpt(&self) -> String {
        let t = self
            .try_eval("document.body ? document.body.innerText : ''")
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!("page text: {:.1500}", t)
    }

    /// Waits until the document has loaded, its module scripts included (`readyState` is
    /// `complete`), up to [`WAIT`]. A page's behaviour (`data-api` forms, confirmation
    /// dialogs) is attached by those scripts: a click while a page is still loading (just after
    /// a form reloaded it) would meet a plain form.
    pub async fn wait_loaded(&self) {
        if let Err(state) = self.poll_for("document.readyState", "complete").await {
            panic!(
                "{} did not finish loading within {WAIT:?} ({state:?})",
                self.current_url().await
            );
        }
    }

    /// Waits for `what` on a loaded page, then fails unless it can be acted on; returns its
    /// centre.
    async fn actionable(&self, what: &Locator) -> Point {
        self.wait_for(what).await;
        self.wait_loaded().await;
        let v = self
            .with_element(
                what,
                r#"
                if (el.disabled || el.getAttribute('aria-disabled') === 'true') return {disabled: true};
                el.scrollIntoView({block: 'center', inline: 'center'});
                const r = el.getBoundingClientRect();
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const top = document.elementFromPoint(x, y);
                const hit = top && (top === el || el.contains(top) ||
                    (el.labels && Array.from(el.labels).some((l) => l === top || l.contains(top))));
                return {x, y, covered: hit ? null : (top ? lib.describe(top) : 'nothing')};
                "#,
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if v["disabled"] == Value::Bool(true) {
            panic!("{what} is disabled on {}", self.current_url().await);
        }
        if let Some(by) = v["covered"].as_str() {
            panic!("{what} is covered by {by} on {}", self.current_url().await);
        }
        Point {
            x: v["x"].as_f64().unwrap_or_default(),
            y: v["y"].as_f64().unwrap_or_default(),
        }
    }

    /// Clicks `what` with the mouse (waits for it to appear first).
    ///
    /// The element's place is measured, then the mouse is pressed there: between the two the
    /// page may move it (a live part swapped in, a scroll). As Playwright does, a catcher on the
    /// window checks that the press, release and click land on `what`; one that lands
    /// elsewhere is stopped before the page sees it and the click is tried again at the new
    /// place (a person would click where the button now is), up to [`CLICK_TRIES`] times.
    pub async fn click(&self, what: &Locator) {
        let mut missed = String::new();
        for _ in 0..CLICK_TRIES {
            let at = self.actionable(what).await;
            self.with_element(what, CATCH_STRAY_CLICKS)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            self.page
                .click(at)
                .await
                .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
            // After a click that navigated, the new document has no catcher: the click landed.
            match self.try_eval(STRAY_CLICK).await {
                Ok(Value::String(by)) => {
                    eprintln!("clicking {what}: the press landed on {by}; trying again");
                    missed = by;
                }
                _ => return,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "clicking {what}: {CLICK_TRIES} times the element moved before the mouse reached it \
             (the last press landed on {missed}) on {}",
            self.current_url().await
        );
    }

    /// Clicks `what`, a control that loads a new document (a form's submit button, a link), and
    /// waits until the new document has replaced this one and loaded. Needed where the new page
    /// holds the same fields as the old one: waiting for a field would find it on the old page,
    /// and what is typed there is lost when the new one arrives.
    pub async fn click_and_wait_reload(&self, what: &Locator) {
        self.eval("window.__palisadeOldDocument = true").await;
        self.click(what).await;
        if let Err(state) = self
            .poll_for(
                "window.__palisadeOldDocument === true ? 'old' : document.readyState",
                "complete",
            )
            .await
        {
            panic!(
                "clicking {what} did not load a new page within {WAIT:?} ({state:?}) on {}",
                self.current_url().await
            );
        }
    }

    /// Replaces the value of the field `what` with `value`, typed as text (a `<select>`: focused
    /// and the option with that visible text picked, as a person's pick focuses it).
    pub async fn fill(&self, what: &Locator, value: &str) {
        self.actionable(what).await;
        let kind = self
            .with_element(
                what,
                &format!(
                    r#"
                    if (el.tagName === 'SELECT') {{
                        const o = Array.from(el.options).find((o) => o.text.trim() === {v});
                        if (!o) return 'no option';
                        el.focus();
                        el.value = o.value;
                        el.dispatchEvent(new Event('input', {{bubbles: true}}));
                        el.dispatchEvent(new Event('change', {{bubbles: true}}));
                        return 'select';
                    }}
                    el.focus();
                    if (typeof el.select === 'function') el.select();
                    else document.execCommand('selectAll');
                    return 'text';
                    "#,
                    v = json!(value)
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        match kind.as_str() {
            Some("select") => {}
            Some("no option") => panic!("{what} has no option {value:?}"),
            _ if value.is_empty() => self.press("Delete").await,
            _ => self.type_text(value).await,
        }
    }

    /// Chooses the file at `path` in the file input `what`, as a person picks it in the file
    /// dialog (DevTools `DOM.setFileInputFiles`; the page sees a real `File`).
    pub async fn set_file(&self, what: &Locator, path: &std::path::Path) {
        self.actionable(what).await;
        self.with_element(
            what,
            "el.setAttribute('data-harness-file', ''); return true;",
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let el = self
            .page
            .find_element("[data-harness-file]")
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let params = SetFileInputFilesParams::builder()
            .files(vec![path.display().to_string()])
            .backend_node_id(el.backend_node_id)
            .build()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        self.page
            .execute(params)
            .await
            .unwrap_or_else(|e| panic!("choosing {} in {what}: {e}", path.display()));
        self.with_element(
            what,
            "el.removeAttribute('data-harness-file'); return true;",
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    /// Lets this tab save the files it downloads into `dir` (headless Chromium refuses
    /// downloads unless told where they go).
    pub async fn allow_downloads(&self, dir: &std::path::Path) {
        let params = SetDownloadBehaviorParams::builder()
            .behavior(SetDownloadBehaviorBehavior::Allow)
            .download_path(dir.display().to_string())
            .build()
            .unwrap_or_else(|e| panic!("download behaviour: {e}"));
        self.page
            .execute(params)
            .await
            .unwrap_or_else(|e| panic!("allowing downloads: {e}"));
    }

    /// Types `text` into the focused element (as an input method would: one input event).
    pub async fn type_text(&self, text: &str) {
        self.page
            .execute(InsertTextParams::new(text))
            .await
            .unwrap_or_else(|e| panic!("typing {text:?}: {e}"));
    }

    /// Presses a key on the focused element: `Tab`, `Enter`, `Escape`, `ArrowDown`, ` `, `a`…,
    /// optionally with modifiers: `Shift+Tab`, `Control+Enter`.
    pub async fn press(&self, keys: &str) {
        let mut parts: Vec<&str> = keys.split('+').collect();
        // "+" itself, or a modifier combination ending in it.
        let key = match parts.pop() {
            Some("") => "+",
            Some(k) => k,
            None => keys,
        };
        let mut modifiers = 0;
        for m in parts.iter().filter(|m| !m.is_empty()) {
            modifiers |= match *m {
                "Alt" => 1,
                "Control" | "Ctrl" => 2,
                "Meta" => 4,
                "Shift" => 8,
                other => panic!("unknown modifier {other:?} in {keys:?}"),
            };
        }
        let def = chromiumoxide::keys::get_key_definition(key)
            .unwrap_or_else(|| panic!("unknown key {key:?}"));
        let text = def
            .text
            .or((def.key.len() == 1).then_some(def.key))
            .filter(|_| modifiers & 0b0111 == 0);
        let mut down = DispatchKeyEventParams::builder()
            .key(def.key)
            .code(def.code)
            .windows_virtual_key_code(def.key_code)
            .native_virtual_key_code(def.key_code)
            .modifiers(modifiers);
        let up = down.clone().r#type(DispatchKeyEventType::KeyUp);
        down = match text {
            Some(t) => down.r#type(DispatchKeyEventType::KeyDown).text(t),
            None => down.r#type(DispatchKeyEventType::RawKeyDown),
        };
        for event in [down, up] {
            self.page
                .execute(
                    event
                        .build()
                        .unwrap_or_else(|e| panic!("key {keys:?}: {e}")),
                )
                .await
                .unwrap_or_else(|e| panic!("pressing {keys:?}: {e}"));
        }
    }

    /// The focused element as `role "accessible name"` (e.g. `button "Sign in"`, `textbox
    /// "Email"`; the tag name when it has no role), for keyboard-only tests.
    pub async fn focused(&self) -> String {
        self.eval(&format!(
            "(() => {{ const lib = {FIND_JS}; const el = document.activeElement; \
             return el && el !== document.body ? lib.describe(el) : 'body'; }})()"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Presses Tab until the focused element, as [`Page::focused`] describes it, starts with
    /// `wanted` (`textbox "Email"`, `link "Carla Mendes`): how a keyboard user reaches a
    /// control. Fails after 100 presses, naming the elements passed.
    pub async fn tab_to(&self, wanted: &str) {
        self.move_focus_to("Tab", wanted).await
    }

    /// [`Page::tab_to`] backwards (Shift+Tab).
    pub async fn shift_tab_to(&self, wanted: &str) {
        self.move_focus_to("Shift+Tab", wanted).await
    }

    async fn move_focus_to(&self, key: &str, wanted: &str) {
        self.wait_loaded().await;
        let mut passed = Vec::new();
        for _ in 0..100 {
            self.press(key).await;
            let now = self.focused().await;
            if now.starts_with(wanted) {
                return;
            }
            passed.push(now);
        }
        panic!(
            "{key} never reached {wanted} on {}; it passed:\n  {}",
            self.current_url().await,
            passed.join("\n  ")
        );
    }

    /// Saves the page at both [`SCREEN_SIZES`] as
    /// `target/browser-screenshots/<name>-<w>x<h>.png`, then returns to the desktop size.
    pub async fn screenshot(&self, name: &str) {
        let dir = paths::screenshot_dir();
        std::fs::create_dir_all(&dir).expect("target/browser-screenshots");
        for (w, h) in SCREEN_SIZES {
            self.set_size(w, h).await;
            let png = self
                .page
                .execute(
                    CaptureScreenshotParams::builder()
                        .format(CaptureScreenshotFormat::Png)
                        .build(),
                )
                .await
                .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
            let bytes = base64_decode(AsRef::<str>::as_ref(&png.result.data));
            // Written aside and renamed: the SQLite and PostgreSQL runs of a test save the same
            // names at the same time.
            let path = dir.join(format!("{name}-{w}x{h}.png"));
            let part = dir.join(format!(
                "{name}-{w}x{h}.{}.part",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::write(&part, bytes)
                .and_then(|()| std::fs::rename(&part, &path))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        // Every page worth a screenshot is also usable on the narrowest phone.
        self.assert_fits(NARROWEST).await;
        let (w, h) = SCREEN_SIZES[0];
        self.set_size(w, h).await;
    }

    /// At `width` CSS pixels the document does not scroll sideways (wide tables scroll inside
    /// their own frame, which is allowed). Leaves the page at that width.
    pub async fn assert_fits(&self, width: u32) {
        self.set_size(width, 740).await;
        let scroll_width = self
            .eval("document.documentElement.scrollWidth")
            .await
            .as_u64()
            .unwrap_or(u64::MAX);
        let path = self.current_path().await;
        assert!(
            scroll_width <= u64::from(width),
            "{path} is {scroll_width} px wide at {width} px"
        );
    }

    /// Emulates a viewport of `width`×`height` CSS pixels (a phone below 600 px: mobile
    /// viewport rules and touch-sized scrollbars), and lets the page lay out again.
    pub async fn set_size(&self, width: u32, height: u32) {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                width,
                height,
                1.0,
                width < 600,
            ))
            .await
            .unwrap_or_else(|e| panic!("resizing to {width}x{height}: {e}"));
        let _ = self
            .try_eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            .await;
    }

    /// Runs axe-core on the page and fails on any serious or critical violation. axe is
    /// injected through DevTools (the page's CSP does not apply), from `target/axe/axe.min.js`
    /// (`scripts/fetch-axe.sh` fetches it; CI runs it).
    pub async fn assert_accessible(&self) {
        let violations = self.accessibility_violations().await;
        if !violations.is_empty() {
            panic!(
                "axe-core: serious or critical accessibility violations on {}:\n{}",
                self.current_url().await,
                violations.join("\n")
            );
        }
    }

    /// axe-core's serious and critical violations, one line each with the first few nodes.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        if self.eval("typeof axe === 'undefined'").await == Value::Bool(true) {
            let path = paths::axe_js();
            let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}. Fetch axe-core first: scripts/fetch-axe.sh (what .ci/run does)",
                    path.display()
                )
            });
            self.eval(&format!("{source}\n;true")).await;
        }
        let found = self
            .eval(
                r#"axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations
                    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.helpUrl})\n` + v.nodes.slice(0, 5)
                        .map((n) => `    ${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ')}`)
                        .join('\n')))"#,
            )
            .await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// From the next document on, the page's websockets fail to connect (their handshake goes
    /// to a path with no socket, as behind a network that drops them) until
    /// [`Page::release_websockets`]; the page's own retries then get through. DevTools' request
    /// blocking does not apply to websockets, hence a wrapper around `WebSocket` installed
    /// before the page's scripts run.
    pub async fn hold_websockets(&self) {
        self.page
            .execute(AddScriptToEvaluateOnNewDocumentParams::new(
                r#"(() => {
                  const Real = window.WebSocket;
                  window.WebSocket = new Proxy(Real, { construct(target, args) {
                    if (!window.__palisadeSocketsReleased) {
                      const u = new URL(args[0], location.href);
                      u.pathname = "/__held_websocket";
                      args = [u.toString(), ...args.slice(1)];
                    }
                    return Reflect.construct(target, args);
                  } });
                })()"#,
            ))
            .await
            .expect("Page.addScriptToEvaluateOnNewDocument");
    }

    /// Lets the websockets of the current document connect (see [`Page::hold_websockets`]).
    pub async fn release_websockets(&self) {
        self.eval("window.__palisadeSocketsReleased = true").await;
    }

    /// Adds Chromium's virtual WebAuthn authenticator to this tab (CTAP2, built in, resident
    /// keys, user verification that always succeeds, presence simulated): passkey prompts then
    /// complete by themselves. Returns its id for [`Page::passkeys`].
    pub async fn add_virtual_authenticator(&self) -> String {
        self.page
            .execute(web_authn::EnableParams::default())
            .await
            .expect("WebAuthn.enable");
        let options = VirtualAuthenticatorOptions::builder()
            .protocol(AuthenticatorProtocol::Ctap2)
            .ctap2_version(Ctap2Version::Ctap21)
            .transport(AuthenticatorTransport::Internal)
            .has_resident_key(true)
            .has_user_verification(true)
            .is_user_verified(true)
            .automatic_presence_simulation(true)
            .build()
            .expect("authenticator options");
        let r = self
            .page
            .execute(AddVirtualAuthenticatorParams::new(options))
            .await
            .expect("WebAuthn.addVirtualAuthenticator");
        r.result.authenticator_id.inner().clone()
    }

    /// How many credentials (passkeys) the virtual authenticator `id` holds.
    pub async fn passkeys(&self, authenticator: &str) -> usize {
        self.page
            .execute(GetCredentialsParams::new(authenticator.to_owned()))
            .await
            .expect("WebAuthn.getCredentials")
            .result
            .credentials
            .len()
    }

    /// Fails the test if a CSP violation, uncaught exception or console error was recorded
    /// since the page opened (after letting in-flight reports arrive).
    pub async fn assert_clean(&self) {
        let problems = self.settled_problems().await;
        if !problems.is_empty() {
            panic!(
                "the page reported problems (last URL {}):\n  {}",
                self.current_url().await,
                problems.join("\n  ")
            );
        }
    }

    /// Takes the problems recorded so far (after letting in-flight reports arrive) and forgets
    /// them: for tests that expect one.
    pub async fn take_problems(&self) -> Vec<String> {
        let problems = self.settled_problems().await;
        if let Ok(mut p) = self.problems.lock() {
            p.clear();
        }
        problems
    }

    async fn settled_problems(&self) -> Vec<String> {
        // A round trip through the page, then a moment for the listener tasks.
        let _ = self.try_eval("1").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The DevTools page, for anything this API lacks (add it here if others will need it).
    pub fn raw(&self) -> &chromiumoxide::Page {
        &self.page
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        let problems = self.problems.lock().map(|p| p.clone()).unwrap_or_default();
        if !problems.is_empty() && !std::thread::panicking() {
            panic!(
                "the page reported problems nobody checked:\n  {}",
                problems.join("\n  ")
            );
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("a base64 screenshot")
}
