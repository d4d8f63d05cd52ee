//! A small SMTP server on loopback for tests: it speaks enough SMTP for lettre (greeting,
//! EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT), keeps what it receives, and can
//! refuse the next messages with a chosen code (451: try later; 550: never).
//!
//! ```text
//! let sink = SmtpSink::start().await;
//! let app = spawn_app_with(db, |c| c.smtp_url = Some(sink.url().into())).await;
//! sink.refuse_next(1, 451);
//! let mails = sink.wait_for(1).await;
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (MAIL FROM).
    pub from: String,
    /// The envelope recipients (RCPT TO).
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing undone.
    pub data: String,
}

impl Received {
    fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("a parsable mail")
    }

    /// A header's raw value, trimmed (`"Message-ID"`, `"From"`, …).
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().header_raw(name).map(|v| v.trim().to_owned())
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        let m = self.parsed();
        let text = m.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
        text
    }

    /// The HTML part.
    pub fn html(&self) -> String {
        let m = self.parsed();
        let html = m.body_html(0).map(|c| c.into_owned()).unwrap_or_default();
        html
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Codes to answer to the next messages' data, in order.
    refusals: VecDeque<u16>,
    /// Connections accepted so far.
    connections: usize,
}

/// The sink; stops when dropped.
pub struct SmtpSink {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                s.lock().unwrap().connections += 1;
                tokio::spawn(serve(conn, s.clone()));
            }
        });
        SmtpSink { port, state, task }
    }

    /// `smtp://127.0.0.1:<port>` (plain SMTP, no TLS, no authentication).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers `code` (e.g. 451 or 550) instead of 250 to the next `n` messages.
    pub fn refuse_next(&self, n: usize, code: u16) {
        let mut st = self.state.lock().unwrap();
        st.refusals.extend(std::iter::repeat_n(code, n));
    }

    /// What was accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// How many messages were accepted so far (cheaper than `received().len()`).
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Waits up to ten seconds until at least `n` messages were accepted; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            if self.count() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the SMTP sink got {} mail(s), not {n}, within 10 s",
            self.received().len()
        );
    }
}

fn address(arg: &str) -> String {
    let a = arg.split_once(':').map_or(arg, |(_, a)| a).trim();
    let a = a.split_whitespace().next().unwrap_or_default();
    a.trim_start_matches('<').trim_end_matches('>').to_owned()
}

async fn serve(conn: TcpStream, state: Arc<Mutex<State>>) {
    // Answers are small writes: without this, Nagle's algorithm and the client's delayed ACKs
    // add tens of milliseconds to a round trip.
    let _ = conn.set_nodelay(true);
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read);
    let reply = |text: &'static str| text.as_bytes().to_vec();
    if write
        .write_all(&reply("220 sink.test ESMTP ready\r\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end();
        let verb = cmd
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer: Vec<u8> = match verb.as_str() {
            "EHLO" => reply("250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"),
            "HELO" => reply("250 sink.test\r\n"),
            "MAIL" => {
                from = address(cmd);
                to.clear();
                reply("250 2.1.0 OK\r\n")
            }
            "RCPT" => {
                to.push(address(cmd));
                reply("250 2.1.5 OK\r\n")
            }
            "DATA" => {
                if write
                    .write_all(&reply("354 End data with <CR><LF>.<CR><LF>\r\n"))
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let refusal = {
                    let mut st = state.lock().unwrap();
                    let r = st.refusals.pop_front();
                    if r.is_none() {
                        st.received.push(Received {
                            from: from.clone(),
                            to: std::mem::take(&mut to),
                            data,
                        });
                    }
                    r
                };
                match refusal {
                    None => reply("250 2.0.0 Ok: queued as SINK\r\n"),
                    Some(code) if code < 500 => {
                        format!("{code} 4.3.0 Try again later\r\n").into_bytes()
                    }
                    Some(code) => format!("{code} 5.1.1 Mailbox unavailable\r\n").into_bytes(),
                }
            }
            "RSET" => {
                from.clear();
                to.clear();
                reply("250 2.0.0 OK\r\n")
            }
            "NOOP" => reply("250 2.0.0 OK\r\n"),
            "QUIT" => {
                let _ = write.write_all(&reply("221 2.0.0 Bye\r\n")).await;
                return;
            }
            _ => reply("502 5.5.2 Command not recognized\r\n"),
        };
        if write.write_all(&answer).await.is_err() {
            return;
        }
    }
}
