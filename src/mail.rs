//! Outgoing mail: SMTP through lettre when `[smtp] host` is set, otherwise
//! the message (links included) is written to the log, so a fresh install
//! works without a mail server. Sending never holds up a request: each mail
//! is handed to a task, and the answer a page gives is the same whether a mail
//! went out or not.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpTls};

/// One plain-text message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
pub struct Mailer(Arc<Transport>);

enum Transport {
    Log,
    Smtp { smtp: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox },
}

impl Mailer {
    pub fn new(config: &Config) -> anyhow::Result<Mailer> {
        let c = &config.smtp;
        if c.host.is_empty() {
            return Ok(Mailer(Arc::new(Transport::Log)));
        }
        let builder = match c.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
        };
        let mut builder = builder.port(c.port).timeout(Some(Duration::from_secs(c.timeout_secs)));
        if !c.username.is_empty() {
            let password = c.password()?.unwrap_or_default();
            builder = builder.credentials(Credentials::new(c.username.clone(), password));
        }
        let from: Mailbox = c.from.parse()?;
        Ok(Mailer(Arc::new(Transport::Smtp { smtp: builder.build(), from })))
    }

    /// Sends `mail` in the background; failures are logged, never returned.
    pub fn send(&self, mail: Mail) {
        let me = self.clone();
        tokio::spawn(async move { me.deliver(mail).await });
    }

    /// Sends `mail` and waits for the outcome (the CLI, tests).
    pub async fn deliver(&self, mail: Mail) -> bool {
        match &*self.0 {
            Transport::Log => {
                tracing::info!(target: "mail", to = %mail.to, subject = %mail.subject, body = %mail.body, "mail (no [smtp] host configured: written to the log)");
                crate::telemetry::mail("logged");
                true
            }
            Transport::Smtp { smtp, from } => {
                let to: Mailbox = match mail.to.parse() {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(target: "mail", error = %e, "mail not sent: bad recipient");
                        crate::telemetry::mail("failed");
                        return false;
                    }
                };
                let msg = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject.clone())
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body);
                let sent = match msg {
                    Ok(m) => smtp.send(m).await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match sent {
                    Ok(()) => {
                        tracing::debug!(target: "mail", subject = %mail.subject, "mail sent");
                        crate::telemetry::mail("sent");
                        true
                    }
                    Err(e) => {
                        tracing::warn!(target: "mail", error = %e, subject = %mail.subject, "mail not sent");
                        crate::telemetry::mail("failed");
                        false
                    }
                }
            }
        }
    }
}
