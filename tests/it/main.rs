//! One integration-test binary (each file under tests/ would link separately).
//! Every backend-dependent test runs on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod access;
mod audit;
mod authorize;
mod backup;
mod cancellation;
mod cli;
mod config;
mod console;
mod cors;
mod discovery;
mod dpop;
mod embedded;
mod federation;
mod flow;
mod hardening;
mod hostile_input;
mod import;
mod integrity;
mod keys;
mod logout;
mod management;
mod metrics;
mod mfa;
mod outage;
mod readme;
mod refresh;
mod replicas;
mod selfservice;
mod server;
mod session_mgmt;
mod throttling;
mod token;
mod traces;
mod upgrade;
