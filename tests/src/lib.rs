//! Test harness for Greenlight: the real app on port 0 with a fresh SQLite file (`app`), fake
//! platform servers whose unread traffic fails teardown (`fakes`), requests signed exactly as
//! Slack, GitHub and Discord sign them (`signing`, `inbound`), CI's events (`ci`), shared
//! config pieces and setups (`config`, `gated`, `approvals`), databases several replicas share
//! (`database`), and the shared fixtures.

pub mod app;
pub mod approvals;
pub mod bench;
pub mod browser;
pub mod ci;
pub mod clock;
pub mod config;
pub mod database;
mod drive;
pub mod fakes;
pub mod fixtures;
pub mod fuzz;
pub mod gated;
pub mod inbound;
mod records;
pub mod shop;
pub mod signing;

pub use app::{
    spawn_app, spawn_app_on, spawn_app_on_with_clock, spawn_app_with, spawn_app_with_clock,
    spawn_app_with_limits, TestApp,
};
