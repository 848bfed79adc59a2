//! Sesame: a self-hosted OpenID Connect identity provider.
//!
//! Layering, top to bottom: `cli` → `app` → protocol areas (`oidc`, `health`)
//! and the login box (`login`), which do not import each other and meet in
//! `pending` → `error`, `session`, `http`, `crypto`, `clients` → `storage` →
//! `domain`. `config` is read by all and imports none of them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod accounts;
pub mod app;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod emails;
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
pub mod mail;
pub mod management;
pub mod oidc;
pub mod outbound;
pub mod pending;
pub mod proof;
pub mod selfservice;
pub mod session;
pub mod startup;
pub mod state;
pub mod storage;
pub mod text;
