//! Sesame: a self-hosted OpenID Connect identity provider.
//!
//! The layering rules are in README's Architecture section and checked by
//! `tests/layering.rs`; the map of the modules is docs/architecture.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod accounts;
pub mod app;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod clients;
pub mod config;
pub mod console;
pub mod crypto;
pub mod domain;
pub mod emails;
pub mod embedded;
pub mod error;
pub mod federation;
pub mod frontchannel;
pub mod health;
pub mod http;
pub mod import;
pub mod issuer;
pub mod limits;
pub mod logging;
pub mod login;
pub mod logouts;
pub mod mail;
pub mod manage;
pub mod management;
pub mod mfa;
pub mod oidc;
pub mod outbound;
pub mod pending;
pub mod proof;
pub mod selfservice;
pub mod session;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod text;
