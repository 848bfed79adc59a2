//! A small SMTP server inside the test process: Sesame's mailer (lettre)
//! holds a real SMTP conversation with it, and tests read the messages (and
//! the links in them) it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    /// Headers and body as sent, quoted-printable undone.
    pub data: String,
}

impl Received {
    pub fn subject(&self) -> String {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string()
    }

    /// The first link in the message whose path is `path`.
    pub fn link(&self, path: &str) -> Option<String> {
        self.data
            .split_whitespace()
            .find(|w| w.starts_with("http") && url::Url::parse(w).is_ok_and(|u| u.path() == path))
            .map(str::to_string)
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = conversation(sock, store).await;
                });
            }
        });
        SmtpSink { port, received }
    }

    /// Points `c`'s mailer at this sink.
    pub fn configure(&self, c: &mut sesame::config::Config) {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = self.port;
        c.smtp.tls = sesame::config::SmtpTls::None;
        c.smtp.from = "Sesame <no-reply@sesame.test>".into();
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Messages to `to` so far.
    pub fn to(&self, to: &str) -> Vec<Received> {
        self.all().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to))).collect()
    }

    /// Waits (up to 5 s) for the `n`th message (1-based) to `to`.
    pub async fn nth(&self, to: &str, n: usize) -> Received {
        for _ in 0..100 {
            if let Some(m) = self.to(to).into_iter().nth(n - 1) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message #{n} to {to}; got {:?}", self.all());
    }
}

async fn conversation(sock: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(b"250-sink.test\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            w.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO") {
            let addr = line.split_once(':').map(|x| x.1).unwrap_or("").trim().trim_matches(['<', '>']).to_string();
            to.push(addr);
            w.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            let qp = data.to_ascii_lowercase().contains("content-transfer-encoding: quoted-printable");
            let data = if qp { unquote(&data) } else { data };
            store.lock().unwrap().push(Received { to: to.clone(), data });
            w.write_all(b"250 queued\r\n").await?;
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and anything else.
            w.write_all(b"250 OK\r\n").await?;
        }
    }
    Ok(())
}

/// Undoes quoted-printable (soft line breaks and =XX), which lettre may use
/// for long lines.
fn unquote(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
